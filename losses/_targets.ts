// How the losses read their targets: class indices or one-hot rows, values per output.
// Exported for plugin authors from the plugin entry.
import type { Targets } from "../core/loss.ts";
import { formatShape, Tensor } from "../core/tensor.ts";

/** Number of samples in `targets` (rows of a tensor, or entries of an index array). */
export function targetCount(targets: Targets): number {
  return targets instanceof Tensor ? (targets.shape[0] ?? 1) : targets.length;
}

/** Targets in one of the two forms classification losses accept. */
export type ClassTargets =
  | { kind: "indices"; indices: Int32Array } // [batch]
  | { kind: "rows"; rows: Tensor }; // [batch, classes] one-hot or probabilities

/**
 * Normalizes classification targets for a batch of `batch` samples and `classes` classes.
 *
 * Pass the `indices` of an earlier result as `reuse` to have them overwritten rather than
 * allocated anew (a training loop's steady state).
 *
 * @throws {TypeError} when the sample count or shape disagrees with the outputs.
 * @throws {RangeError} when a class index is not an integer in [0, classes).
 */
export function classTargets(
  targets: Targets,
  batch: number,
  classes: number,
  where: string,
  reuse?: Int32Array,
): ClassTargets {
  const count = targetCount(targets);
  if (count !== batch) {
    throw new TypeError(
      `${where}: targets hold ${count} samples, outputs hold ${batch} (outputs shape ${
        formatShape([batch, classes])
      })`,
    );
  }
  if (targets instanceof Tensor && targets.rank === 2) {
    if (targets.shape[1] !== classes) {
      throw new TypeError(
        `${where}: the targets have ${targets.shape[1]} columns (one-hot rows, shape ${
          formatShape(targets.shape)
        }) and the model outputs ${classes} (outputs shape ${formatShape([batch, classes])})`,
      );
    }
    return { kind: "rows", rows: targets };
  }
  if (targets instanceof Tensor && targets.rank !== 1) {
    throw new TypeError(
      `${where}: targets must be class indices [batch] or one-hot rows [batch, classes], got shape ${
        formatShape(targets.shape)
      }`,
    );
  }
  const source = targets instanceof Tensor ? targets.data : targets;
  const indices = reuse?.length === batch ? reuse : new Int32Array(batch);
  for (let i = 0; i < batch; i++) {
    const label = source[i];
    if (typeof label !== "number") {
      throw new TypeError(
        `${where}: targets[${i}] is ${
          Array.isArray(label) ? `a row of ${(label as unknown[]).length}` : typeof label
        }, expected a class index; pass one-hot rows as a Tensor (Tensor.from(y))`,
      );
    }
    if (!Number.isInteger(label) || label < 0 || label >= classes) {
      throw new RangeError(
        `${where}: label ${label} at sample ${i} is out of range for ${classes} classes`,
      );
    }
    indices[i] = label;
  }
  return { kind: "indices", indices };
}

/**
 * Normalizes per-output targets (regression values, binary labels) for outputs
 * `[batch, outputs]`: a tensor of the outputs' shape, or, for a single output, one value per
 * sample (`[batch]` tensor or array).
 *
 * @returns the targets as a flat row-major array `[batch·outputs]`.
 * @throws {TypeError} naming `where`, the targets' shape and the expected one.
 */
export function valueTargets(
  targets: Targets,
  batch: number,
  outputs: number,
  where: string,
): ArrayLike<number> {
  const shape = targets instanceof Tensor ? targets.shape : [targets.length];
  const matches = shape[0] === batch &&
    (shape.length === 2 ? shape[1] === outputs : shape.length === 1 && outputs === 1);
  if (!matches) {
    const single = outputs === 1 ? ` or ${formatShape([batch])}` : "";
    throw new TypeError(
      `${where}: targets have shape ${formatShape(shape)}, expected ${
        formatShape([batch, outputs])
      }${single} like the outputs (outputs shape ${formatShape([batch, outputs])})`,
    );
  }
  return targets instanceof Tensor ? targets.data : targets;
}
