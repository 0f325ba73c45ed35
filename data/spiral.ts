import { describe } from "../core/_describe.ts";
import { type RandomOptions, RandomState } from "../core/random.ts";
import { allocate, type DType, Tensor } from "../core/tensor.ts";

/** Options of {@linkcode spiralData}. */
export interface SpiralOptions extends RandomOptions {
  /** Element type of the points; `"float32"` when omitted. */
  dtype?: DType;
}

/** A labelled 2-D classification data set. */
export interface Dataset {
  /** Points `[samples·classes, 2]`. */
  x: Tensor;
  /** Class index of each point `[samples·classes]`. */
  y: Int32Array;
}

// NumPy's linspace: i·step + start, with the last element exactly `stop`.
function linspace(start: number, stop: number, n: number): Float64Array {
  const out = new Float64Array(n);
  const step = (stop - start) / (n - 1);
  for (let i = 0; i < n; i++) out[i] = i * step + start;
  out[n - 1] = stop;
  return out;
}

/**
 * The book's spiral data set (`nnfs.datasets.spiral_data`): `classes` interleaved arms of
 * `samples` points each.
 *
 * With the default seed 0 it reproduces `np.random.seed(0); spiral_data(100, 3)` bit for
 * bit: class c's angles are `linspace(4c, 4(c+1), samples) + 0.2·randn`, its radii
 * `linspace(0, 1, samples)`, each point `[r·sin(2.5t), r·cos(2.5t)]`. Pass `random` to keep
 * drawing from the same generator afterwards (the book then draws the weights).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spiralData } from "@chainrule/nn";
 *
 * const { x, y } = spiralData(100, 3);
 * assert.deepEqual(x.shape, [300, 2]);
 * assert.equal(y[299], 2);
 * ```
 */
export function spiralData(samples = 100, classes = 3, options: SpiralOptions = {}): Dataset {
  for (const [name, value] of [["samples", samples], ["classes", classes]] as const) {
    if (!Number.isSafeInteger(value) || value < 2) {
      throw new RangeError(`spiralData: ${name} must be an integer ≥ 2, got ${describe(value)}`);
    }
  }
  const random = options.random ?? new RandomState(options.seed ?? 0);
  const x = allocate(options.dtype ?? "float32", samples * classes * 2); // [samples·classes, 2]
  const y = new Int32Array(samples * classes);
  const radius = linspace(0, 1, samples);
  const noise = new Float64Array(samples);
  for (let c = 0; c < classes; c++) {
    const angle = linspace(c * 4, (c + 1) * 4, samples);
    for (let i = 0; i < samples; i++) noise[i] = random.randn();
    for (let i = 0; i < samples; i++) {
      const t = (angle[i] + noise[i] * 0.2) * 2.5;
      const row = c * samples + i;
      x[row * 2] = radius[i] * Math.sin(t);
      x[row * 2 + 1] = radius[i] * Math.cos(t);
      y[row] = c;
    }
  }
  return { x: new Tensor(x, [samples * classes, 2]), y };
}
