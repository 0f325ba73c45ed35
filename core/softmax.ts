import { allocate, expectMatrix, type FloatArray, Tensor } from "./tensor.ts";

/**
 * Row-wise softmax of `x` [batch, classes] into `out`, subtracting each row's max first so
 * that large logits cannot overflow.
 */
export function softmaxRows(x: FloatArray, out: FloatArray, batch: number, classes: number): void {
  for (let i = 0; i < batch; i++) {
    const row = i * classes;
    let max = -Infinity;
    for (let j = 0; j < classes; j++) if (x[row + j] > max) max = x[row + j];
    let sum = 0;
    for (let j = 0; j < classes; j++) {
      const e = Math.exp(x[row + j] - max);
      out[row + j] = e;
      sum += e;
    }
    const inverse = 1 / sum;
    for (let j = 0; j < classes; j++) out[row + j] *= inverse;
  }
}

/**
 * Turns logits [batch, classes] into probabilities that sum to 1 in each row.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { softmax, Tensor } from "@chainrule/nn";
 *
 * const p = softmax(Tensor.from([[0, 0], [1000, 0]], { dtype: "float64" }));
 * assert.deepEqual(p.toArray(), [[0.5, 0.5], [1, 0]]);
 * ```
 */
export function softmax(logits: Tensor): Tensor {
  const [batch, classes] = expectMatrix(logits, "softmax", "logits");
  const out = allocate(logits.dtype, logits.size);
  softmaxRows(logits.data, out, batch, classes);
  return new Tensor(out, logits.shape);
}
