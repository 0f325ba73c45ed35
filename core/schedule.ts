import type { JsonObject } from "./json.ts";

/**
 * A learning-rate schedule: the factor by which an optimizer multiplies its `learningRate`
 * at each update, so that the step size of update `step` (0-based) is
 * `learningRate · factor(step)`.
 *
 * Schedules are pure functions of the update count, which optimizers save with their
 * state, so a resumed run continues the schedule exactly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type LearningRateSchedule, SGD } from "@chainrule/nn";
 *
 * // A third-party schedule: halve the step size after 100 updates.
 * const halveLater: LearningRateSchedule = {
 *   kind: "HalveLater",
 *   factor: (step) => (step < 100 ? 1 : 0.5),
 *   config: () => ({}),
 *   toString: () => "HalveLater()",
 * };
 * const sgd = new SGD({ learningRate: 0.1, schedule: halveLater });
 * assert.equal(sgd.currentLearningRate, 0.1);
 * ```
 */
export interface LearningRateSchedule {
  /** The registry name of this plugin. */
  readonly kind: string;
  /** The multiplier of the learning rate at update `step` (0, 1, 2, …). */
  factor(step: number): number;
  /** The constructor arguments as JSON. */
  config(): JsonObject;
  /** A one-line summary. */
  toString(): string;
}

/** The options every built-in optimizer takes to vary its step size over time. */
export interface ScheduleOptions {
  /**
   * The book's inverse-time decay: the step size of update t is
   * `learningRate · (1 / (1 + decay·t))`; 0 (none) when omitted.
   */
  decay?: number;
  /** Any schedule (instead of `decay`). */
  schedule?: LearningRateSchedule;
}
