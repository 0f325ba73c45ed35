import type { Loss, Targets } from "./loss.ts";
import type { Optimizer } from "./optimizer.ts";
import { RandomState } from "./random.ts";
import type { Sequential } from "./sequential.ts";
import { accuracy, checkSampleCounts, takeRows, takeTargets } from "./targets.ts";
import { type Tensor, type TensorLike, toTensor } from "./tensor.ts";

/** What one epoch of `fit` measured. */
export interface EpochLogs {
  /** Mean data loss over the epoch's samples. */
  loss: number;
  /** Mean regularization penalty over the epoch's steps. */
  regularizationLoss: number;
  /** Fraction classified right during the epoch (classification targets only). */
  accuracy?: number;
}

/** Options of `Sequential.fit`. */
export interface FitOptions {
  /** The loss to minimize. */
  loss: Loss;
  /** The optimizer that applies the gradients. */
  optimizer: Optimizer;
  /** Passes over the data. */
  epochs: number;
  /** Samples per step; the whole data set (full batch, as the book trains) when omitted. */
  batchSize?: number;
  /** Reshuffle the samples every epoch when mini-batching; true when omitted. */
  shuffle?: boolean;
  /**
   * Seed of the shuffling: epoch e uses `new RandomState(seed + e).permutation(samples)`, so
   * each epoch's order depends only on the seed and the epoch number; 0 when omitted.
   */
  seed?: number;
  /** Number of the first epoch (to resume a run: epochs `initialEpoch … epochs−1` are run); 0. */
  initialEpoch?: number;
  /** Called after every epoch with its index (0-based) and logs. */
  onEpoch?: (epoch: number, logs: EpochLogs) => void;
}

/** Per-epoch training figures returned by `fit`. */
export interface History {
  /** Mean data loss per epoch. */
  loss: number[];
  /** Mean regularization penalty per epoch. */
  regularizationLoss: number[];
  /** Accuracy per epoch (empty when the targets are not classes). */
  accuracy: number[];
}

// Accuracy is defined for class indices or for one-hot rows as wide as the outputs.
function isClassification(outputs: Tensor, y: Targets): boolean {
  if (outputs.rank !== 2 || outputs.shape[1] < 2) return false;
  if (!("shape" in y)) return true;
  return y.rank === 1 || (y.rank === 2 && y.shape[1] === outputs.shape[1]);
}

function checkPositiveInteger(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`Sequential.fit: ${name} must be a positive integer, got ${value}`);
  }
}

/** Trains `model` on `x`, `y`; see {@linkcode FitOptions}. */
export function fit(model: Sequential, x: TensorLike, y: Targets, options: FitOptions): History {
  const inputs = toTensor(x, model.dtype);
  checkSampleCounts(inputs, y, "Sequential.fit");
  const samples = inputs.shape[0];
  checkPositiveInteger(options.epochs, "epochs");
  const batchSize = options.batchSize ?? samples;
  checkPositiveInteger(batchSize, "batchSize");
  const shuffle = (options.shuffle ?? true) && batchSize < samples;
  const seed = options.seed ?? 0;
  const initialEpoch = options.initialEpoch ?? 0;
  if (!Number.isSafeInteger(initialEpoch) || initialEpoch < 0) {
    throw new RangeError(
      `Sequential.fit: initialEpoch must be an integer ≥ 0, got ${initialEpoch}`,
    );
  }
  const history: History = { loss: [], regularizationLoss: [], accuracy: [] };

  for (let epoch = initialEpoch; epoch < options.epochs; epoch++) {
    const order = shuffle ? new RandomState(seed + epoch).permutation(samples) : undefined;
    let lossSum = 0;
    let penaltySum = 0;
    let steps = 0;
    let correct = 0;
    let classification = true;
    for (let start = 0; start < samples; start += batchSize) {
      const count = Math.min(batchSize, samples - start);
      let xb = inputs;
      let yb = y;
      if (count < samples || order) {
        const rows = order ? order.subarray(start, start + count) : range(start, count);
        xb = takeRows(inputs, rows);
        yb = takeTargets(y, rows);
      }
      const { loss, regularizationLoss, outputs } = model.trainBatch(xb, yb, options);
      lossSum += loss * count;
      penaltySum += regularizationLoss;
      steps++;
      classification &&= isClassification(outputs, yb);
      if (classification) correct += accuracy(outputs, yb) * count;
    }
    const logs: EpochLogs = { loss: lossSum / samples, regularizationLoss: penaltySum / steps };
    history.loss.push(logs.loss);
    history.regularizationLoss.push(logs.regularizationLoss);
    if (classification) {
      logs.accuracy = correct / samples;
      history.accuracy.push(logs.accuracy);
    }
    options.onEpoch?.(epoch, logs);
  }
  return history;
}

function range(start: number, count: number): Int32Array {
  const rows = new Int32Array(count);
  for (let i = 0; i < count; i++) rows[i] = start + i;
  return rows;
}
