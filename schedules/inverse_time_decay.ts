import type { JsonObject } from "../core/json.ts";
import type { LearningRateSchedule } from "../core/schedule.ts";
import { checkHyper } from "../core/_checks.ts";

/** Options of {@linkcode InverseTimeDecay}. */
export interface InverseTimeDecayOptions {
  /** How fast the factor falls: `1 / (1 + decay·step)`. */
  decay: number;
}

/**
 * The book's learning-rate decay: `factor(step) = 1 / (1 + decay·step)`.
 *
 * An optimizer's `decay` option is this schedule, computed with the same arithmetic.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InverseTimeDecay } from "@chainrule/nn";
 *
 * const schedule = new InverseTimeDecay({ decay: 0.5 });
 * assert.deepEqual([0, 1, 2].map((t) => schedule.factor(t)), [1, 2 / 3, 0.5]);
 * ```
 */
export class InverseTimeDecay implements LearningRateSchedule {
  /** Registry name. */
  readonly kind = "InverseTimeDecay";
  /** How fast the factor falls. */
  readonly decay: number;

  /**
   * Creates the schedule.
   *
   * @throws {RangeError} when `decay` is not a finite number ≥ 0.
   */
  constructor(options: InverseTimeDecayOptions) {
    this.decay = checkHyper("new InverseTimeDecay", "decay", options?.decay);
  }

  /** Rebuilds the schedule from {@linkcode InverseTimeDecay.config}. */
  static fromConfig(config: JsonObject): InverseTimeDecay {
    return new InverseTimeDecay(config as unknown as InverseTimeDecayOptions);
  }

  /** `1 / (1 + decay·step)` */
  factor(step: number): number {
    return 1 / (1 + this.decay * step);
  }

  /** `{ decay }` */
  config(): JsonObject {
    return { decay: this.decay };
  }

  /** `InverseTimeDecay(decay=0.001)` */
  toString(): string {
    return `InverseTimeDecay(decay=${this.decay})`;
  }
}
