import type { RandomState } from "../core/random.ts";
import type { FloatArray } from "../core/tensor.ts";

/**
 * Fills a `[fanIn, fanOut]` weight matrix (row-major) with initial values drawn from
 * `random`.
 */
export type Initializer = (
  out: FloatArray,
  fanIn: number,
  fanOut: number,
  random: RandomState,
) => void;

function heNormal(out: FloatArray, fanIn: number, _fanOut: number, random: RandomState): void {
  const scale = Math.sqrt(2 / fanIn);
  for (let i = 0; i < out.length; i++) out[i] = random.randn() * scale;
}

function heUniform(out: FloatArray, fanIn: number, _fanOut: number, random: RandomState): void {
  uniform(out, Math.sqrt(6 / fanIn), random);
}

function glorotUniform(
  out: FloatArray,
  fanIn: number,
  fanOut: number,
  random: RandomState,
): void {
  uniform(out, Math.sqrt(6 / (fanIn + fanOut)), random);
}

function glorotNormal(out: FloatArray, fanIn: number, fanOut: number, random: RandomState): void {
  const scale = Math.sqrt(2 / (fanIn + fanOut));
  for (let i = 0; i < out.length; i++) out[i] = random.randn() * scale;
}

function uniform(out: FloatArray, limit: number, random: RandomState): void {
  for (let i = 0; i < out.length; i++) out[i] = (2 * random.random() - 1) * limit;
}

/**
 * The named weight initializers that layers accept as `init`, for a `[fanIn, fanOut]`
 * matrix (`fanIn` inputs per neuron, `fanOut` neurons):
 *
 * | name | draws | for |
 * | --- | --- | --- |
 * | `he`, `heNormal` | N(0, 1)·√(2 / fanIn) (the default) | ReLU networks (He et al. 2015) |
 * | `heUniform` | U(−a, a), a = √(6 / fanIn) | ReLU, same variance 2 / fanIn |
 * | `glorot`, `glorotUniform`, `xavier`, `xavierUniform` | U(−a, a), a = √(6 / (fanIn + fanOut)) | tanh, sigmoid (Glorot & Bengio 2010) |
 * | `glorotNormal`, `xavierNormal` | N(0, 1)·√(2 / (fanIn + fanOut)) | the same variance, normal (PyTorch's `xavier_normal_`) |
 * | `nnfs` | 0.01·N(0, 1) | the book's `Layer_Dense` (`0.01 * np.random.randn`) |
 *
 * Normal draws are NumPy's legacy `randn`, uniform ones `random_sample`, in row-major
 * order, computed in float64 and rounded once. Aliases are the same function.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initializers, RandomState } from "@chainrule/nn";
 *
 * const w = new Float64Array(6);
 * initializers.glorot(w, 2, 3, new RandomState(1));
 * assert.ok(w.every((v) => Math.abs(v) <= Math.sqrt(6 / 5)));
 * assert.equal(initializers.xavier, initializers.glorotUniform);
 * ```
 */
export const initializers: Record<string, Initializer> = {
  he: heNormal,
  heNormal,
  heUniform,
  glorot: glorotUniform,
  glorotUniform,
  glorotNormal,
  xavier: glorotUniform,
  xavierUniform: glorotUniform,
  xavierNormal: glorotNormal,
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
