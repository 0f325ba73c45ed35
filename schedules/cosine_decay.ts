import type { JsonObject } from "../core/json.ts";
import type { LearningRateSchedule } from "../core/schedule.ts";
import { checkHyper } from "../core/_checks.ts";

/** Options of {@linkcode CosineDecay}. */
export interface CosineDecayOptions {
  /** Updates over which the factor falls from 1 to `minFactor` (a positive integer). */
  steps: number;
  /** The factor at and after `steps`, in [0, 1]; 0 when omitted. */
  minFactor?: number;
}

/**
 * Cosine annealing: the factor falls from 1 to `minFactor` along half a cosine over
 * `steps` updates and stays there, `factor(t) = m + (1 − m)·½(1 + cos(π·min(t, steps) / steps))`
 * (Keras's `CosineDecay` with `alpha = m`; PyTorch's `CosineAnnealingLR` for one period).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CosineDecay } from "@chainrule/nn";
 *
 * const schedule = new CosineDecay({ steps: 4 });
 * assert.deepEqual([0, 4, 9].map((t) => schedule.factor(t)), [1, 0, 0]);
 * assert.ok(Math.abs(schedule.factor(2) - 0.5) < 1e-15);
 * ```
 */
export class CosineDecay implements LearningRateSchedule {
  /** Registry name. */
  readonly kind = "CosineDecay";
  /** Updates over which the factor falls. */
  readonly steps: number;
  /** The final factor. */
  readonly minFactor: number;

  /**
   * Creates the schedule.
   *
   * @throws {RangeError} when `steps` is not a positive integer or `minFactor` not in [0, 1].
   */
  constructor(options: CosineDecayOptions) {
    const steps = options?.steps;
    if (!Number.isSafeInteger(steps) || steps <= 0) {
      throw new RangeError(`new CosineDecay: steps must be a positive integer, got ${steps}`);
    }
    this.steps = steps;
    this.minFactor = checkHyper("new CosineDecay", "minFactor", options.minFactor ?? 0, 0, 1);
  }

  /** Rebuilds the schedule from {@linkcode CosineDecay.config}. */
  static fromConfig(config: JsonObject): CosineDecay {
    return new CosineDecay(config as unknown as CosineDecayOptions);
  }

  /** `minFactor + (1 − minFactor)·½(1 + cos(π·min(step, steps) / steps))` */
  factor(step: number): number {
    const progress = Math.min(step, this.steps) / this.steps;
    return this.minFactor + (1 - this.minFactor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  }

  /** `{ steps, minFactor }` */
  config(): JsonObject {
    return { steps: this.steps, minFactor: this.minFactor };
  }

  /** `CosineDecay(steps=10000, minFactor=0)` */
  toString(): string {
    return `CosineDecay(steps=${this.steps}, minFactor=${this.minFactor})`;
  }
}
