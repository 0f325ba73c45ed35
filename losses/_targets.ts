// How the losses read their targets: class indices or one-hot rows, values per output.
// Exported for plugin authors from the plugin entry.
import { describe, describeKind } from "../core/_describe.ts";
import type { Targets } from "../core/loss.ts";
import { formatShape, Tensor } from "../core/tensor.ts";

/** Number of samples in `targets` (rows of a tensor, or entries of an index array). */
export function targetCount(targets: Targets): number {
  return targets instanceof Tensor ? (targets.shape[0] ?? 1) : targets.length;
}

/**
 * Targets in one of the two forms classification losses accept, flattened over the
 * positions of the outputs (`batch` for `[batch, classes]`, `batch·T` for
 * `[batch, T, classes]`).
 */
export type ClassTargets =
  | { kind: "indices"; indices: Int32Array } // [positions]
  | { kind: "rows"; rows: Tensor }; // [positions, classes] one-hot or probabilities

/** Options of {@linkcode classTargets} and {@linkcode classTargetsFor}. */
export interface ClassTargetsOptions {
  /**
   * A target value that marks a position to leave out (PyTorch's `ignore_index`): accepted
   * as an index whatever the class count, and kept as it is in `indices`.
   */
  ignoreIndex?: number;
  /** The `indices` of an earlier result, overwritten rather than allocated anew. */
  reuse?: Int32Array;
}

/**
 * Normalizes classification targets for a batch of `batch` samples and `classes` classes
 * (outputs `[batch, classes]`): class indices `[batch]` or one-hot rows `[batch, classes]`.
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
  reuse?: Int32Array | ClassTargetsOptions,
): ClassTargets {
  const options = reuse instanceof Int32Array ? { reuse } : reuse ?? {};
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
  const indices = readIndices(source, [batch], classes, where, options);
  return { kind: "indices", indices };
}

/**
 * Checks classification outputs `[batch, …, classes]` (rank ≥ 2, the classes last) and
 * returns `[positions, classes]`, `positions` being the product of every axis but the last.
 *
 * @throws {TypeError} naming `where` when `outputs` is not a tensor of rank ≥ 2.
 * @throws {RangeError} when it holds no element.
 */
export function classOutputs(outputs: Tensor, where: string): [number, number] {
  if (!(outputs instanceof Tensor)) {
    throw new TypeError(`${where}: outputs must be a Tensor, got ${describeKind(outputs)}`);
  }
  const shape = outputs.shape;
  if (shape.length < 2) {
    throw new TypeError(
      `${where}: outputs must be [batch, classes] or [batch, …, classes], got shape ${
        formatShape(shape)
      }`,
    );
  }
  if (outputs.size === 0) {
    throw new RangeError(`${where}: outputs is an empty batch (shape ${formatShape(shape)})`);
  }
  const classes = shape[shape.length - 1];
  return [outputs.size / classes, classes];
}

/**
 * Normalizes classification targets for `outputs` `[batch, …, classes]` of any rank ≥ 2,
 * the classes on the last axis: class indices shaped like the outputs without their last
 * axis (`[batch]` for `[batch, classes]`, `[batch, T]` for `[batch, T, classes]`), as a
 * tensor of integer values in any dtype or as a flat array of all the positions in
 * row-major order; or one-hot (or probability) rows shaped like the outputs. A rank-2
 * targets tensor is one-hot rows for rank-2 outputs and class indices for rank-3 outputs:
 * the outputs' rank decides.
 *
 * Rank-2 outputs go through {@linkcode classTargets}, with its messages.
 *
 * @returns indices `[positions]` or rows `[positions, classes]` (a view of the targets).
 * @throws {TypeError} when the targets' shape does not fit the outputs, naming both.
 * @throws {RangeError} when a class index is not an integer in [0, classes) (nor the
 * `ignoreIndex`), naming it and its position.
 */
export function classTargetsFor(
  outputs: Tensor,
  targets: Targets,
  where: string,
  options: ClassTargetsOptions = {},
): ClassTargets {
  const [positions, classes] = classOutputs(outputs, where);
  const shape = outputs.shape;
  if (shape.length === 2) return classTargets(targets, positions, classes, where, options);
  const lead = shape.slice(0, -1); // [batch, T, …]
  if (targets instanceof Tensor) {
    if (sameShape(targets.shape, shape)) {
      return { kind: "rows", rows: targets.reshape([positions, classes]) };
    }
    if (!sameShape(targets.shape, lead)) {
      throw new TypeError(
        `${where}: targets have shape ${formatShape(targets.shape)}, expected class indices ${
          formatShape(lead)
        } or one-hot rows ${formatShape(shape)} (outputs shape ${formatShape(shape)})`,
      );
    }
    return { kind: "indices", indices: readIndices(targets.data, lead, classes, where, options) };
  }
  if (Array.isArray(targets) && Array.isArray(targets[0])) {
    throw new TypeError(
      `${where}: targets are nested arrays; pass class indices ${
        formatShape(lead)
      } as a Tensor (Tensor.from(y)) or flattened (outputs shape ${formatShape(shape)})`,
    );
  }
  if (targets?.length !== positions) {
    const got = targets?.length === undefined ? typeof targets : `${targets.length}`;
    throw new TypeError(
      `${where}: targets hold ${got} class indices, outputs of shape ${
        formatShape(shape)
      } need ${positions} (${formatShape(lead)} flattened)`,
    );
  }
  return { kind: "indices", indices: readIndices(targets, lead, classes, where, options) };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let d = 0; d < a.length; d++) if (a[d] !== b[d]) return false;
  return true;
}

// "sample 12" for [batch]; "position [1, 3]" (sample, step) for [batch, T, …].
function describePosition(lead: readonly number[], index: number): string {
  if (lead.length === 1) return `sample ${index}`;
  const position: number[] = [];
  for (let d = lead.length - 1; d >= 0; d--) {
    position.unshift(index % lead[d]);
    index = Math.floor(index / lead[d]);
  }
  return `position ${formatShape(position)}`;
}

// The class indices of `source`, checked: integers in [0, classes), or the ignoreIndex.
function readIndices(
  source: ArrayLike<unknown>,
  lead: readonly number[],
  classes: number,
  where: string,
  options: ClassTargetsOptions,
): Int32Array {
  let count = 1;
  for (const dim of lead) count *= dim;
  const { ignoreIndex, reuse } = options;
  const indices = reuse?.length === count ? reuse : new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = source[i];
    if (typeof label !== "number") {
      throw new TypeError(
        `${where}: targets[${i}] is ${
          Array.isArray(label) ? `a row of ${(label as unknown[]).length}` : typeof label
        }, expected a class index; pass one-hot rows as a Tensor (Tensor.from(y))`,
      );
    }
    if (label === ignoreIndex) {
      indices[i] = label;
      continue;
    }
    if (!Number.isInteger(label) || label < 0 || label >= classes) {
      const integer = Number.isInteger(label) ? "" : " (not an integer class index)";
      throw new RangeError(
        `${where}: label ${label} at ${
          describePosition(lead, i)
        } is out of range for ${classes} classes${integer}`,
      );
    }
    indices[i] = label;
  }
  return indices;
}

/**
 * Checks a classification loss's or metric's `ignoreIndex` option: an integer that fits
 * 32 bits (PyTorch's default is −100), or undefined.
 *
 * @throws {RangeError} naming `where` and the value.
 */
export function checkIgnoreIndex(where: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) {
    throw new RangeError(
      `${where}: ignoreIndex must be an integer (a class index, or e.g. -100), got ${
        describe(value)
      }`,
    );
  }
  return value;
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
