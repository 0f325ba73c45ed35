import type { JsonObject } from "../core/json.ts";
import type { LearningRateSchedule } from "../core/schedule.ts";
import { checkHyper } from "../core/_checks.ts";

/** Options of {@linkcode ExponentialDecay}. */
export interface ExponentialDecayOptions {
  /** The factor per update, in [0, 1]. */
  gamma: number;
}

/**
 * Multiplies the learning rate by `gamma` at every update: `factor(step) = gamma^step`
 * (PyTorch's `ExponentialLR`, counted in updates).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExponentialDecay } from "@chainrule/nn";
 *
 * const schedule = new ExponentialDecay({ gamma: 0.5 });
 * assert.deepEqual([0, 1, 2].map((t) => schedule.factor(t)), [1, 0.5, 0.25]);
 * ```
 */
export class ExponentialDecay implements LearningRateSchedule {
  /** Registry name. */
  readonly kind = "ExponentialDecay";
  /** The factor per update. */
  readonly gamma: number;

  /**
   * Creates the schedule.
   *
   * @throws {RangeError} when `gamma` is not in [0, 1].
   */
  constructor(options: ExponentialDecayOptions) {
    this.gamma = checkHyper("new ExponentialDecay", "gamma", options?.gamma, 0, 1);
  }

  /** Rebuilds the schedule from {@linkcode ExponentialDecay.config}. */
  static fromConfig(config: JsonObject): ExponentialDecay {
    return new ExponentialDecay(config as unknown as ExponentialDecayOptions);
  }

  /** `gamma^step` */
  factor(step: number): number {
    return this.gamma ** step;
  }

  /** `{ gamma }` */
  config(): JsonObject {
    return { gamma: this.gamma };
  }

  /** `ExponentialDecay(gamma=0.999)` */
  toString(): string {
    return `ExponentialDecay(gamma=${this.gamma})`;
  }
}
