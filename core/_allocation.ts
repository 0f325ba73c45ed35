// The allocation limit: before a layer allocates its params, it adds up their bytes (values
// and gradients) and refuses past this limit with an error that names the layer, the shapes
// and the bytes, instead of the runtime's `Array buffer allocation failed` (or an
// allocation that runs the machine out of memory for a minute before it is killed).
import { checkAllocationBudget, type DType, formatShape } from "./tensor.ts";

/**
 * The most bytes one buffer may take in a 64-bit V8 whose sandbox is on (Chrome): 32 GiB.
 * The default limit where the runtime does not say how much memory the machine has.
 */
export const RUNTIME_BUFFER_BYTES: number = 2 ** 35;

let limit: number | undefined; // set by setAllocationLimit; undefined: the default

// The machine's memory where the runtime tells it without asking the user (Deno with
// `--allow-sys`), else undefined. Never prompts.
function machineMemory(): number | undefined {
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  try {
    const state = deno?.permissions?.querySync?.({ name: "sys", kind: "systemMemoryInfo" });
    if (state?.state !== "granted") return undefined;
    const total = deno.systemMemoryInfo().total;
    return Number.isSafeInteger(total) && total > 0 ? total : undefined;
  } catch {
    return undefined;
  }
}

let defaultLimit: number | undefined;

/**
 * The bytes one layer's params may take (values and gradients together) before its
 * constructor refuses them, and a convolution's outputs (with their gradient, in training)
 * before its forward refuses them; see {@linkcode setAllocationLimit}.
 *
 * By default it is what the runtime can give: the machine's total memory where the runtime
 * tells it (Deno with `--allow-sys`), capped at {@linkcode RUNTIME_BUFFER_BYTES} (32 GiB).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getAllocationLimit } from "@chainrule/nn";
 *
 * assert.ok(getAllocationLimit() > 0);
 * assert.ok(getAllocationLimit() <= 2 ** 35);
 * ```
 */
export function getAllocationLimit(): number {
  if (limit !== undefined) return limit;
  defaultLimit ??= Math.min(RUNTIME_BUFFER_BYTES, machineMemory() ?? RUNTIME_BUFFER_BYTES);
  return defaultLimit;
}

/**
 * Sets the most bytes one layer's params may take (values and gradients together), and a
 * convolution's outputs (with their gradient, in training);
 * `undefined` restores the default ({@linkcode getAllocationLimit}). A layer past it fails
 * in its constructor, before allocating anything, with a `RangeError` that names the layer,
 * the shapes and the bytes.
 *
 * @throws {RangeError} when `bytes` is not a positive safe integer (or undefined).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, getAllocationLimit, setAllocationLimit } from "@chainrule/nn";
 *
 * setAllocationLimit(1 << 20); // 1 MiB
 * assert.throws(() => new Dense(1024, 1024), /new Dense: the params need 8,396,800 bytes/);
 * setAllocationLimit(undefined);
 * assert.ok(getAllocationLimit() > 1 << 20);
 * ```
 */
export function setAllocationLimit(bytes: number | undefined): void {
  if (bytes !== undefined && (!Number.isSafeInteger(bytes) || bytes <= 0)) {
    const shown = typeof bytes === "string" ? `"${bytes}"` : String(bytes);
    throw new RangeError(
      `setAllocationLimit: bytes must be a positive integer (or undefined for the default), got ${shown}`,
    );
  }
  limit = bytes;
}

/** `1234567` → `"1,234,567"`, for byte counts in messages. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  return BigInt(Math.round(bytes)).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * Adds up the bytes of params of the given shapes (`copies` arrays each: 2 for a param's
 * value and gradient) and throws when they pass {@linkcode getAllocationLimit}. Layers call
 * it before allocating their params.
 *
 * @throws {RangeError} naming `where`, the shapes, the bytes and the limit.
 */
export function checkAllocation(
  where: string,
  dtype: DType,
  shapes: Readonly<Record<string, readonly number[]>>,
  copies = 2,
): void {
  const bytesPer = dtype === "float64" ? 8 : 4;
  let elements = 0;
  for (const shape of Object.values(shapes)) {
    let size = 1;
    for (const dim of shape) size *= dim;
    elements += size;
  }
  const bytes = elements * bytesPer * copies;
  // Inside a loader's budget (withAllocationBudget), a file's layer is refused by name too.
  checkAllocationBudget(
    `${where.replace(/^new /, "")}'s ${
      Object.entries(shapes).map(([name, shape]) => `${name} ${formatShape(shape)}`).join(", ")
    } (${dtype} values and gradients)`,
    bytes,
  );
  const max = getAllocationLimit();
  if (bytes <= max) return;
  const listed = Object.entries(shapes).map(([name, shape]) => `${name} ${formatShape(shape)}`);
  const what = copies === 2 ? `${dtype} values and gradients` : `${copies} ${dtype} copies`;
  throw new RangeError(
    `${where}: the params need ${formatBytes(bytes)} bytes (${
      listed.join(", ")
    }: ${what}), past the allocation limit of ${
      formatBytes(max)
    } bytes; build a smaller layer, or raise the limit with setAllocationLimit(bytes)`,
  );
}

/**
 * Refuses a pass's buffers past {@linkcode getAllocationLimit} before they are allocated:
 * `shapes` are what the pass allocates at once (a convolution's outputs, and in training as
 * much again for their gradient, which the next layer hands back).
 *
 * @throws {RangeError} naming `where`, the shapes, the bytes and the limit.
 */
export function checkPassAllocation(
  where: string,
  dtype: DType,
  shapes: Readonly<Record<string, readonly number[]>>,
  training: boolean,
): void {
  const bytesPer = dtype === "float64" ? 8 : 4;
  let elements = 0;
  for (const shape of Object.values(shapes)) elements += shape.reduce((a, b) => a * b, 1);
  const bytes = elements * bytesPer * (training ? 2 : 1);
  const max = getAllocationLimit();
  if (bytes <= max) return;
  const listed = Object.entries(shapes).map(([name, shape]) => `${name} ${formatShape(shape)}`);
  throw new RangeError(
    `${where}: the ${listed.join(", ")} need ${formatBytes(bytes)} bytes (${dtype}${
      training ? ", with their gradient in training" : ""
    }), past the allocation limit of ${
      formatBytes(max)
    } bytes; use a smaller batch, or raise the limit with setAllocationLimit(bytes)`,
  );
}
