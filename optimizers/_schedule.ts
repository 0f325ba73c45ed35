// How the built-in optimizers turn their `decay`/`schedule` options into a step size, and
// back into config. Exported for plugin authors from the plugin entry.
import { describe } from "../core/_describe.ts";
import { checkHyper } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { LearningRateSchedule, ScheduleOptions } from "../core/schedule.ts";
import { InverseTimeDecay } from "../schedules/inverse_time_decay.ts";

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
        describe(schedule)
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
