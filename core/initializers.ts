import type { RandomState } from "./random.ts";

/**
 * Fills a `[fanIn, fanOut]` weight matrix (row-major) with initial values drawn from
 * `random`.
 */
export type Initializer = (
  out: Float32Array | Float64Array,
  fanIn: number,
  fanOut: number,
  random: RandomState,
) => void;

/**
 * The named weight initializers that layers accept as `init`.
 *
 * - `he`: N(0, 1)·√(2 / fanIn), for ReLU networks (the default).
 * - `glorot`: U(−a, a) with a = √(6 / (fanIn + fanOut)) (Glorot/Xavier uniform).
 * - `nnfs`: 0.01·N(0, 1), the book's `Layer_Dense` (`0.01 * np.random.randn`).
 *
 * Values are drawn in row-major order, computed in float64 and rounded once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initializers, RandomState } from "@chainrule/nn";
 *
 * const w = new Float64Array(6);
 * initializers.glorot(w, 2, 3, new RandomState(1));
 * assert.ok(w.every((v) => Math.abs(v) <= Math.sqrt(6 / 5)));
 * ```
 */
export const initializers: Record<string, Initializer> = {
  he(out, fanIn, _fanOut, random) {
    const scale = Math.sqrt(2 / fanIn);
    for (let i = 0; i < out.length; i++) out[i] = random.randn() * scale;
  },
  glorot(out, fanIn, fanOut, random) {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    for (let i = 0; i < out.length; i++) out[i] = (2 * random.random() - 1) * limit;
  },
  nnfs(out, _fanIn, _fanOut, random) {
    for (let i = 0; i < out.length; i++) out[i] = 0.01 * random.randn();
  },
};

/**
 * Looks an initializer up by name.
 *
 * @throws {RangeError} naming `where` and the known names when `name` is unknown.
 */
export function getInitializer(name: string, where: string): Initializer {
  const init = Object.hasOwn(initializers, name) ? initializers[name] : undefined;
  if (!init) {
    throw new RangeError(
      `${where}: unknown init "${name}", expected one of ${Object.keys(initializers).join(", ")}`,
    );
  }
  return init;
}
