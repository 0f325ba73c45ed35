import { checkHyper } from "../optimizers/sgd.ts";
import { InverseTimeDecay } from "../schedules/inverse_time_decay.ts";
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

/**
 * The schedule that `options` ask for: `schedule`, or {@linkcode InverseTimeDecay} for a
 * nonzero `decay`, or none.
 *
 * @throws {RangeError} naming `where` when `decay` is negative or both are given.
 * @throws {TypeError} when `schedule` has no `factor` method.
 */
export function resolveSchedule(
  where: string,
  options: ScheduleOptions,
): LearningRateSchedule | undefined {
  const decay = checkHyper(where, "decay", options.decay ?? 0);
  const schedule = options.schedule;
  if (schedule === undefined) return decay ? new InverseTimeDecay({ decay }) : undefined;
  if (typeof schedule?.factor !== "function") {
    throw new TypeError(
      `${where}: schedule must be a LearningRateSchedule (with factor(step)), got ${
        JSON.stringify(schedule)
      }; createOptimizer(kind, config) rebuilds one from its { kind, config }`,
    );
  }
  if (decay) {
    throw new RangeError(
      `${where}: pass decay (${decay}) or schedule (${schedule}), not both; ` +
        `decay is InverseTimeDecay({ decay })`,
    );
  }
  return schedule;
}

/**
 * The step size of update `step`: `learningRate · schedule.factor(step)`, or
 * `learningRate` without a schedule.
 */
export function scheduledRate(
  learningRate: number,
  schedule: LearningRateSchedule | undefined,
  step: number,
): number {
  return schedule ? learningRate * schedule.factor(step) : learningRate;
}

/**
 * `{ schedule: { kind, config } }` for an optimizer's config, or `{}` without one;
 * `createOptimizer` rebuilds the schedule from it through the registry.
 */
export function scheduleConfig(schedule: LearningRateSchedule | undefined): JsonObject {
  return schedule ? { schedule: { kind: schedule.kind, config: schedule.config() } } : {};
}
