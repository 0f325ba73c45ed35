import type { BatchLogs, Callback, TrainingState } from "../callback.ts";
import type { History } from "../history.ts";

/** Training stopped because a loss became NaN or infinite. */
export class NonFiniteLossError extends Error {
  /** The epoch (0-based) of the step. */
  readonly epoch: number;
  /** The batch (0-based, within the epoch) of the step. */
  readonly batch: number;
  /** The offending value. */
  readonly value: number;
  /** The epochs finished before it happened. */
  readonly history: History;

  /** Names the step and the value in the message, unless `message` is given. */
  constructor(
    epoch: number,
    batch: number,
    what: string,
    value: number,
    history: History,
    message?: string,
  ) {
    super(
      message ??
        `TerminateOnNaN: the ${what} became ${value} at epoch ${epoch}, batch ${batch}; ` +
          "training stopped (a lower learning rate or scaled inputs usually cure this)",
    );
    this.name = "NonFiniteLossError";
    this.epoch = epoch;
    this.batch = batch;
    this.value = value;
    this.history = history;
  }
}

/**
 * Stops training with a {@linkcode NonFiniteLossError} as soon as a batch's data loss or
 * regularization penalty is NaN or infinite, naming the epoch, the batch and the value.
 *
 * `fit` adds one by itself unless `terminateOnNaN: false`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, NonFiniteLossError, Sequential, SGD, SoftmaxCrossEntropy } from "@chainrule/nn";
 *
 * // A step size of 1e30 sends the float32 weights to infinity after one update.
 * const model = new Sequential([new Dense(1, 2, { seed: 1 })]);
 * assert.throws(
 *   () =>
 *     model.fit([[1e19], [1e19]], [0, 1], {
 *       loss: new SoftmaxCrossEntropy(),
 *       optimizer: new SGD({ learningRate: 1e30 }),
 *       epochs: 3,
 *     }),
 *   NonFiniteLossError,
 * );
 * ```
 */
export class TerminateOnNaN implements Callback {
  #epoch = 0;

  /** Remembers the epoch for the message. */
  onEpochBegin(epoch: number): void {
    this.#epoch = epoch;
  }

  /** Throws when the batch's loss or penalty is not finite. */
  onBatchEnd(batch: number, logs: BatchLogs, state: TrainingState): void {
    if (!Number.isFinite(logs.batchLoss)) {
      throw new NonFiniteLossError(this.#epoch, batch, "loss", logs.batchLoss, state.history);
    }
    if (!Number.isFinite(logs.batchRegularizationLoss)) {
      throw new NonFiniteLossError(
        this.#epoch,
        batch,
        "regularization loss",
        logs.batchRegularizationLoss,
        state.history,
      );
    }
  }

  /** `TerminateOnNaN()` */
  toString(): string {
    return "TerminateOnNaN()";
  }
}
