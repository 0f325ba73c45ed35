import { describe } from "../core/_describe.ts";
import type { JsonObject } from "../core/json.ts";
import type { LearningRateSchedule } from "../core/schedule.ts";
import { checkHyper } from "../core/_checks.ts";

/** Options of {@linkcode CosineDecay}. */
export interface CosineDecayOptions {
  /**
   * Updates over which the factor falls from 1 to `minFactor` (a positive integer), counted
   * from the end of the warmup.
   */
  steps: number;
  /** The factor at and after `steps`, in [0, 1]; 0 when omitted. */
  minFactor?: number;
  /**
   * Updates of linear warmup before the cosine (an integer ≥ 0): `factor(t) = (t + 1) / w`
   * for `t < w`, reaching 1 at the last warmup update, as nanoGPT's schedule; 0 (none)
   * when omitted.
   */
  warmupSteps?: number;
}

/**
 * Cosine annealing: the factor falls from 1 to `minFactor` along half a cosine over
 * `steps` updates and stays there, `factor(t) = m + (1 − m)·½(1 + cos(π·min(t, steps) / steps))`
 * (Keras's `CosineDecay` with `alpha = m`; PyTorch's `CosineAnnealingLR` for one period).
 *
 * With `warmupSteps` = w > 0, a linear warmup comes first: `factor(t) = (t + 1) / w` for
 * `t < w`, then the cosine counted from the end of the warmup, `cosine(t − w)`, so the
 * factor is 1 at updates w − 1 and w and reaches `minFactor` at update `w + steps`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CosineDecay } from "@chainrule/nn";
 *
 * const schedule = new CosineDecay({ steps: 4 });
 * assert.deepEqual([0, 4, 9].map((t) => schedule.factor(t)), [1, 0, 0]);
 * assert.ok(Math.abs(schedule.factor(2) - 0.5) < 1e-15);
 *
 * // Two warmup updates at 1/2 and 1, then the same cosine two updates later.
 * const warm = new CosineDecay({ steps: 4, warmupSteps: 2 });
 * assert.deepEqual([0, 1, 2, 6, 9].map((t) => warm.factor(t)), [0.5, 1, 1, 0, 0]);
 * assert.ok(Math.abs(warm.factor(4) - 0.5) < 1e-15);
 * assert.equal(`${warm}`, "CosineDecay(steps=4, minFactor=0, warmupSteps=2)");
 * ```
 */
export class CosineDecay implements LearningRateSchedule {
  /** Registry name. */
  readonly kind = "CosineDecay";
  /** Updates over which the factor falls, after the warmup. */
  readonly steps: number;
  /** The final factor. */
  readonly minFactor: number;
  /** Updates of linear warmup before the cosine (0: none). */
  readonly warmupSteps: number;

  /**
   * Creates the schedule.
   *
   * @throws {RangeError} when `steps` is not a positive integer, `minFactor` not in [0, 1],
   * or `warmupSteps` not an integer ≥ 0.
   */
  constructor(options: CosineDecayOptions) {
    const steps = options?.steps;
    if (!Number.isSafeInteger(steps) || steps <= 0) {
      throw new RangeError(
        `new CosineDecay: steps must be a positive integer, got ${describe(steps)}`,
      );
    }
    this.steps = steps;
    this.minFactor = checkHyper("new CosineDecay", "minFactor", options.minFactor ?? 0, 0, 1);
    const warmupSteps = options.warmupSteps ?? 0;
    if (!Number.isSafeInteger(warmupSteps) || warmupSteps < 0) {
      throw new RangeError(
        `new CosineDecay: warmupSteps must be an integer ≥ 0, got ${describe(warmupSteps)}`,
      );
    }
    this.warmupSteps = warmupSteps;
  }

  /** Rebuilds the schedule from {@linkcode CosineDecay.config}. */
  static fromConfig(config: JsonObject): CosineDecay {
    return new CosineDecay(config as unknown as CosineDecayOptions);
  }

  /**
   * `(step + 1) / warmupSteps` during the warmup, then
   * `minFactor + (1 − minFactor)·½(1 + cos(π·min(t, steps) / steps))` with
   * `t = step − warmupSteps`.
   */
  factor(step: number): number {
    const warmup = this.warmupSteps;
    if (step < warmup) return (step + 1) / warmup;
    const progress = Math.min(step - warmup, this.steps) / this.steps;
    return this.minFactor + (1 - this.minFactor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  }

  /** `{ steps, minFactor }`, with `warmupSteps` when it is not 0 */
  config(): JsonObject {
    const { steps, minFactor, warmupSteps } = this;
    return warmupSteps ? { steps, minFactor, warmupSteps } : { steps, minFactor };
  }

  /** `CosineDecay(steps=10000, minFactor=0)`, `CosineDecay(steps=10000, minFactor=0, warmupSteps=100)` */
  toString(): string {
    const warmup = this.warmupSteps ? `, warmupSteps=${this.warmupSteps}` : "";
    return `CosineDecay(steps=${this.steps}, minFactor=${this.minFactor}${warmup})`;
  }
}
