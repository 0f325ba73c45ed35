// Which backend the layers compute with: the built-ins by name, registered ones, the default.
import { describe } from "../core/_describe.ts";
import type { Backend } from "../core/backend.ts";
import { jsBackend } from "./js.ts";
import { naiveBackend } from "./naive.ts";
import { wasmBackend, wasmSupport } from "./wasm.ts";

const builtins: Record<string, () => Backend> = {
  naive: () => naiveBackend,
  js: () => jsBackend,
  wasm: () => {
    if (wasmSupport() === "none") {
      throw new RangeError(
        'setBackend: backend "wasm" needs WebAssembly SIMD, which this runtime lacks (use "js")',
      );
    }
    return wasmBackend;
  },
};
const registered = new Map<string, Backend>();
let active: Backend | undefined;

/**
 * Makes `backend` selectable by its name in {@linkcode setBackend} and
 * {@linkcode withBackend} (the built-ins `"naive"`, `"js"` and `"wasm"` always are).
 */
export function registerBackend(backend: Backend): void {
  registered.set(backend.name, backend);
}

function resolve(backend: Backend | string, where: string): Backend {
  if (typeof backend !== "string") {
    if (!backend || typeof backend.matmul !== "function") {
      throw new TypeError(
        `${where}: expected a Backend or a backend name, got ${describe(backend)}`,
      );
    }
    return backend;
  }
  const found = registered.get(backend) ??
    (Object.hasOwn(builtins, backend) ? builtins[backend]() : undefined);
  if (!found) {
    const known = [...Object.keys(builtins), ...registered.keys()].join(", ");
    throw new RangeError(`${where}: unknown backend "${backend}", expected one of ${known}`);
  }
  return found;
}

/**
 * The backend that layers compute with now: the one last set, else `wasm` where the
 * runtime has WebAssembly SIMD, else `js`.
 */
export function getBackend(): Backend {
  active ??= wasmSupport() === "none" ? jsBackend : wasmBackend;
  return active;
}

/**
 * Makes `backend` (an object, or a name: `"wasm"`, `"js"`, `"naive"` or a registered one)
 * the one every layer computes with.
 *
 * @throws {RangeError} for an unknown name, or `"wasm"` on a runtime without SIMD.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getBackend, setBackend } from "@chainrule/nn";
 *
 * const previous = getBackend();
 * setBackend("js");
 * assert.equal(getBackend().name, "js");
 * setBackend(previous);
 * ```
 */
export function setBackend(backend: Backend | string): void {
  active = resolve(backend, "setBackend");
}

/**
 * Runs `fn` with `backend` active and restores the previous backend afterwards, even when
 * `fn` throws: the way to give one model its own backend.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, Tensor, withBackend } from "@chainrule/nn";
 *
 * const dense = new Dense(2, 1, { weights: [[1], [2]] });
 * const out = withBackend("naive", () => dense.forward(Tensor.from([[3, 4]])));
 * assert.deepEqual(out.toArray(), [[11]]);
 * ```
 */
export function withBackend<T>(backend: Backend | string, fn: () => T): T {
  const previous = getBackend();
  active = resolve(backend, "withBackend");
  try {
    return fn();
  } finally {
    active = previous;
  }
}
