import { describe } from "../core/_describe.ts";
import type { JsonObject } from "../core/json.ts";
import type { LearningRateSchedule } from "../core/schedule.ts";
import { checkHyper } from "../core/_checks.ts";

/** Options of {@linkcode StepDecay}. */
export interface StepDecayOptions {
  /** Updates between two drops (a positive integer). */
  stepSize: number;
  /** The factor of each drop; 0.1 when omitted (PyTorch's `StepLR`). */
  gamma?: number;
}

/**
 * Drops the learning rate by `gamma` every `stepSize` updates:
 * `factor(step) = gamma^floor(step / stepSize)` (PyTorch's `StepLR`, counted in updates).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StepDecay } from "@chainrule/nn";
 *
 * const schedule = new StepDecay({ stepSize: 2, gamma: 0.5 });
 * assert.deepEqual([0, 1, 2, 3, 4].map((t) => schedule.factor(t)), [1, 1, 0.5, 0.5, 0.25]);
 * ```
 */
export class StepDecay implements LearningRateSchedule {
  /** Registry name. */
  readonly kind = "StepDecay";
  /** Updates between two drops. */
  readonly stepSize: number;
  /** The factor of each drop. */
  readonly gamma: number;

  /**
   * Creates the schedule.
   *
   * @throws {RangeError} when `stepSize` is not a positive integer or `gamma` not in [0, 1].
   */
  constructor(options: StepDecayOptions) {
    const stepSize = options?.stepSize;
    if (!Number.isSafeInteger(stepSize) || stepSize <= 0) {
      throw new RangeError(
        `new StepDecay: stepSize must be a positive integer, got ${describe(stepSize)}`,
      );
    }
    this.stepSize = stepSize;
    this.gamma = checkHyper("new StepDecay", "gamma", options.gamma ?? 0.1, 0, 1);
  }

  /** Rebuilds the schedule from {@linkcode StepDecay.config}. */
  static fromConfig(config: JsonObject): StepDecay {
    return new StepDecay(config as unknown as StepDecayOptions);
  }

  /** `gamma^floor(step / stepSize)` */
  factor(step: number): number {
    return this.gamma ** Math.floor(step / this.stepSize);
  }

  /** `{ stepSize, gamma }` */
  config(): JsonObject {
    return { stepSize: this.stepSize, gamma: this.gamma };
  }

  /** `StepDecay(stepSize=1000, gamma=0.1)` */
  toString(): string {
    return `StepDecay(stepSize=${this.stepSize}, gamma=${this.gamma})`;
  }
}
