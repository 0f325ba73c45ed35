// The safetensors writer: deterministic bytes, and files written atomically.
import { type FloatArray, Tensor } from "../core/tensor.ts";
import { describe, LITTLE_ENDIAN, swapBytes } from "./safetensors.ts";
import { writeFileAtomic } from "./write_file_atomic.ts";

/** Tensors to write, by name: a `Map` or a plain object. */
export type NamedTensors = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

const FORMAT_DTYPE = { float32: "F32", float64: "F64" } as const;

function bytesOf(data: FloatArray): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN) return bytes;
  const copy = bytes.slice();
  swapBytes(copy, data.BYTES_PER_ELEMENT);
  return copy;
}

/**
 * The pieces of a safetensors file, in order: the length and header, then each tensor's
 * bytes (views of the tensors, not copies). Joined they are {@linkcode encodeSafetensors}'s
 * output; the atomic file writer writes them one by one.
 */
export function encodeSafetensorsChunks(
  tensors: NamedTensors,
  metadata: Readonly<Record<string, string>> = {},
  where = "encodeSafetensors",
): Uint8Array[] {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  // Sorted by name, so the same tensors always give the same bytes.
  list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const fields: string[] = [];
  const keys = Object.keys(metadata ?? {}).sort();
  for (const key of keys) {
    if (typeof metadata[key] !== "string") {
      throw new TypeError(
        `${where}: metadata "${key}" must be a string, got ${describe(metadata[key])}`,
      );
    }
  }
  if (keys.length > 0) {
    const pairs = keys.map((key) => `${JSON.stringify(key)}:${JSON.stringify(metadata[key])}`);
    fields.push(`"__metadata__":{${pairs.join(",")}}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, tensor] of list) {
    if (name === "__metadata__") {
      throw new TypeError(`${where}: "__metadata__" is reserved and cannot name a tensor`);
    }
    if (!(tensor instanceof Tensor)) {
      throw new TypeError(`${where}: tensor "${name}" must be a Tensor, got ${describe(tensor)}`);
    }
    const data = bytesOf(tensor.data);
    const info = `{"dtype":"${FORMAT_DTYPE[tensor.dtype]}","shape":[${tensor.shape.join(",")}],` +
      `"data_offsets":[${offset},${offset + data.length}]}`;
    fields.push(`${JSON.stringify(name)}:${info}`);
    chunks.push(data);
    offset += data.length;
  }
  // Built by hand: a JavaScript object would move integer-like names to the front.
  const json = new TextEncoder().encode(`{${fields.join(",")}}`);
  const padded = Math.ceil(json.length / 8) * 8; // so the data starts 8-byte aligned
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return [head, ...chunks];
}

/**
 * Writes tensors (float32 as `F32`, float64 as `F64`) and metadata strings as safetensors
 * bytes. Deterministic: tensors ordered by name, metadata keys sorted, the header padded
 * with spaces to a multiple of 8 bytes.
 *
 * @throws {TypeError} when a value is not a Tensor, a metadata value is not a string, or a
 * tensor is named `"__metadata__"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeSafetensors, Tensor } from "@chainrule/nn";
 *
 * const bytes = encodeSafetensors({ b: Tensor.from([1]), a: Tensor.from([2]) });
 * const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
 * assert.equal(headerLength % 8, 0);
 * const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
 * assert.deepEqual(Object.keys(header), ["a", "b"]);
 * assert.deepEqual(header.a, { dtype: "F32", shape: [1], data_offsets: [0, 4] });
 * ```
 */
export function encodeSafetensors(
  tensors: NamedTensors,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  return joinChunks(encodeSafetensorsChunks(tensors, metadata));
}

/** Concatenates byte chunks into one array. */
export function joinChunks(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * Writes tensors and metadata as a safetensors file, atomically: a temporary file beside
 * `path` is written, flushed and renamed over it, so a failed save leaves the previous file
 * as it was. Needs `--allow-read --allow-write`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSafetensors, Tensor, writeSafetensors } from "@chainrule/nn";
 *
 * const path = `${await Deno.makeTempDir()}/w.safetensors`;
 * await writeSafetensors(path, { w: Tensor.from([1.5, -2], { dtype: "float64" }) });
 * assert.deepEqual([...(await readSafetensors(path)).tensors.get("w")!.data], [1.5, -2]);
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: NamedTensors,
  metadata: Readonly<Record<string, string>> = {},
): Promise<void> {
  const chunks = encodeSafetensorsChunks(tensors, metadata, "writeSafetensors");
  await writeFileAtomic(path, chunks);
}
