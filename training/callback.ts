import type { EpochLogs, History } from "./history.ts";
import type { Loss } from "../core/loss.ts";
import type { Optimizer } from "../core/optimizer.ts";
import type { Chain } from "../core/chain.ts";

/**
 * The running figures of an epoch after one batch: `loss`, `regularizationLoss` and the
 * metrics are means over the epoch so far; `batchLoss` is this batch's own mean data loss.
 */
export interface BatchLogs {
  /** Samples in this batch (the last one may be smaller). */
  size: number;
  /** This batch's mean data loss. */
  batchLoss: number;
  /** This batch's regularization penalty. */
  batchRegularizationLoss: number;
  /** Mean data loss over the epoch so far. */
  loss: number;
  /** Mean penalty over the epoch's steps so far. */
  regularizationLoss: number;
  /** Running metrics, by name. */
  [name: string]: number;
}

/** The run a callback is called from: what trains, and the switch that stops it. */
export interface TrainingState {
  /** The model being trained. */
  readonly model: Chain;
  /** Its optimizer. */
  readonly optimizer: Optimizer;
  /** Its loss. */
  readonly loss: Loss;
  /** The first epoch of this run (`initialEpoch`). */
  readonly initialEpoch: number;
  /** One past the last epoch (`epochs`). */
  readonly epochs: number;
  /** Training samples per epoch (after any validation split). */
  readonly samples: number;
  /** Samples per step. */
  readonly batchSize: number;
  /** Steps per epoch. */
  readonly steps: number;
  /** The figures of the epochs finished so far. */
  readonly history: History;
  /** Set it to true to stop after the current batch; the epoch is then logged and ended. */
  stopTraining: boolean;
}

/**
 * Hooks into `fit`: every method is optional. Callbacks run in the order given, after the
 * built-in NaN guard and before the progress output.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Adam, type Callback, Dense, Sequential, SoftmaxCrossEntropy } from "@chainrule/nn";
 *
 * // Stops as soon as the training accuracy reaches 100%.
 * const stopWhenPerfect: Callback = {
 *   onEpochEnd(_epoch, logs, state) {
 *     if (logs.accuracy === 1) state.stopTraining = true;
 *   },
 * };
 * const model = new Sequential([new Dense(2, 2, { seed: 1 })]);
 * const history = model.fit([[0, 1], [1, 0]], [0, 1], {
 *   loss: new SoftmaxCrossEntropy(),
 *   optimizer: new Adam({ learningRate: 0.1 }),
 *   epochs: 1000,
 *   callbacks: [stopWhenPerfect],
 * });
 * assert.ok(history.loss.length < 1000);
 * assert.equal(history.accuracy.at(-1), 1);
 * ```
 */
export interface Callback {
  /** Before the first epoch. */
  onTrainBegin?(state: TrainingState): void;
  /** Before each epoch. */
  onEpochBegin?(epoch: number, state: TrainingState): void;
  /** After each training step, with the running logs of the epoch. */
  onBatchEnd?(batch: number, logs: BatchLogs, state: TrainingState): void;
  /** After each epoch (and its validation), once its logs are in the history. */
  onEpochEnd?(epoch: number, logs: EpochLogs, state: TrainingState): void;
  /** After the last epoch, when training ended without an error. */
  onTrainEnd?(state: TrainingState): void;
}
