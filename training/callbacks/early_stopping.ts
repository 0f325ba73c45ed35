import { describe } from "../../core/_describe.ts";
import type { Callback, TrainingState } from "../callback.ts";
import type { EpochLogs } from "../history.ts";
import type { Chain } from "../../core/chain.ts";
import type { FloatArray } from "../../core/tensor.ts";

// What "the weights" of a model are: every parameter and every state tensor (buffers).
function modelState(model: Chain): FloatArray[] {
  return [
    ...model.params().map((param) => param.value.data),
    ...model.buffers().map((buffer) => buffer.value.data),
  ];
}

/** Options of {@linkcode EarlyStopping}. */
export interface EarlyStoppingOptions {
  /** The logged figure to watch; `"valLoss"` when omitted. */
  monitor?: string;
  /**
   * `"min"` (lower is better), `"max"`, or `"auto"` (the default): max for names that contain
   * "accuracy", min for the rest.
   */
  mode?: "min" | "max" | "auto";
  /** Epochs without improvement to wait before stopping; 0 when omitted. */
  patience?: number;
  /** Smallest change that counts as an improvement; 0 when omitted. */
  minDelta?: number;
  /**
   * Put back the parameters (and the layers' state, such as BatchNorm's running statistics)
   * of the best epoch when training ends; false when omitted.
   */
  restoreBestWeights?: boolean;
}

/**
 * Stops training when a monitored figure (by default the validation loss) has stopped
 * improving for `patience` epochs, and can restore the weights of the best epoch.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Adam, Dense, EarlyStopping, ReLU, Sequential, SoftmaxCrossEntropy, spiralData } from "@chainrule/nn";
 *
 * const model = new Sequential([new Dense(2, 32, { seed: 1 }), new ReLU(), new Dense(32, 3, { seed: 2 })]);
 * const stopper = new EarlyStopping({ patience: 5, restoreBestWeights: true });
 * model.fit(spiralData(50, 3).x, spiralData(50, 3).y, {
 *   loss: new SoftmaxCrossEntropy(),
 *   optimizer: new Adam({ learningRate: 0.05 }),
 *   epochs: 2000,
 *   validationData: spiralData(50, 3, { seed: 1 }),
 *   callbacks: [stopper],
 * });
 * assert.ok(stopper.stoppedEpoch !== undefined && stopper.stoppedEpoch < 1999);
 * ```
 */
export class EarlyStopping implements Callback {
  /** The watched figure. */
  readonly monitor: string;
  /** Whether lower or higher is better. */
  readonly mode: "min" | "max";
  /** Epochs without improvement tolerated. */
  readonly patience: number;
  /** Smallest improvement. */
  readonly minDelta: number;
  /** Whether the best weights come back at the end. */
  readonly restoreBestWeights: boolean;
  /** The best value seen in the current run. */
  best: number = NaN;
  /** The epoch of the best value (undefined before the first epoch). */
  bestEpoch?: number;
  /** The epoch after which training was stopped (undefined when it ran to the end). */
  stoppedEpoch?: number;
  #wait = 0;
  #bestWeights?: FloatArray[];

  /** Creates the callback. */
  constructor(options: EarlyStoppingOptions = {}) {
    this.monitor = options.monitor ?? "valLoss";
    const mode = options.mode ?? "auto";
    if (mode !== "min" && mode !== "max" && mode !== "auto") {
      throw new RangeError(
        `new EarlyStopping: mode must be "min", "max" or "auto", got ${describe(mode)}`,
      );
    }
    this.mode = mode === "auto" ? (/accuracy/i.test(this.monitor) ? "max" : "min") : mode;
    this.patience = options.patience ?? 0;
    if (!Number.isSafeInteger(this.patience) || this.patience < 0) {
      throw new RangeError(
        `new EarlyStopping: patience must be an integer ≥ 0, got ${describe(this.patience)}`,
      );
    }
    this.minDelta = Math.abs(options.minDelta ?? 0);
    if (!Number.isFinite(this.minDelta)) {
      throw new RangeError(
        `new EarlyStopping: minDelta must be finite, got ${describe(options.minDelta)}`,
      );
    }
    this.restoreBestWeights = options.restoreBestWeights ?? false;
  }

  /** Forgets any previous run. */
  onTrainBegin(): void {
    this.best = NaN;
    this.bestEpoch = undefined;
    this.stoppedEpoch = undefined;
    this.#wait = 0;
    this.#bestWeights = undefined;
  }

  /** Tracks the best value; stops once it has not improved for `patience` epochs. */
  onEpochEnd(epoch: number, logs: EpochLogs, state: TrainingState): void {
    const value = logs[this.monitor];
    if (value === undefined) {
      throw new RangeError(
        `EarlyStopping: monitor "${this.monitor}" is not among the epoch logs (${
          Object.keys(logs).join(", ")
        }); pass validationData or validationSplit to fit, or monitor one of those`,
      );
    }
    if (this.#improved(value)) {
      this.best = value;
      this.bestEpoch = epoch;
      this.#wait = 0;
      if (this.restoreBestWeights) {
        this.#bestWeights = modelState(state.model).map((data) => data.slice());
      }
      return;
    }
    this.#wait++;
    if (this.#wait >= Math.max(this.patience, 1)) {
      this.stoppedEpoch = epoch;
      state.stopTraining = true;
    }
  }

  /** Restores the best epoch's parameters and layer state when asked to. */
  onTrainEnd(state: TrainingState): void {
    const saved = this.#bestWeights;
    if (!saved) return;
    modelState(state.model).forEach((data, i) => data.set(saved[i]));
  }

  /** `EarlyStopping(monitor=valLoss, patience=5)` */
  toString(): string {
    return `EarlyStopping(monitor=${this.monitor}, patience=${this.patience})`;
  }

  #improved(value: number): boolean {
    if (Number.isNaN(value)) return false;
    if (Number.isNaN(this.best)) return true;
    return this.mode === "min"
      ? value < this.best - this.minDelta
      : value > this.best + this.minDelta;
  }
}
