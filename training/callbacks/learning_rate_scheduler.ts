import { describe, describeKind } from "../../core/_describe.ts";
import type { Callback, TrainingState } from "../callback.ts";

/** A schedule: the learning rate of `epoch` given the rate in use before it. */
export type Schedule = (epoch: number, learningRate: number) => number;

/**
 * Sets the optimizer's `learningRate` at the start of every epoch to `schedule(epoch, lr)`.
 *
 * Works with any optimizer that has a writable numeric `learningRate` (SGD, Adam, …); an
 * optimizer's own decay still applies on top of the rate it sets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, LearningRateScheduler, Sequential, SGD, SoftmaxCrossEntropy } from "@chainrule/nn";
 *
 * const optimizer = new SGD({ learningRate: 1 });
 * const model = new Sequential([new Dense(2, 2, { seed: 1 })]);
 * model.fit([[0, 1], [1, 0]], [0, 1], {
 *   loss: new SoftmaxCrossEntropy(),
 *   optimizer,
 *   epochs: 4,
 *   callbacks: [new LearningRateScheduler((epoch, lr) => epoch === 0 ? lr : lr / 2)],
 * });
 * assert.equal(optimizer.learningRate, 0.125);
 * ```
 */
export class LearningRateScheduler implements Callback {
  /** The schedule. */
  readonly schedule: Schedule;

  /** Creates the callback. */
  constructor(schedule: Schedule) {
    if (typeof schedule !== "function") {
      throw new TypeError(
        `new LearningRateScheduler: schedule must be a function (epoch, learningRate) => number, got ${
          describeKind(schedule)
        }`,
      );
    }
    this.schedule = schedule;
  }

  /**
   * Writes the scheduled rate into the optimizer.
   *
   * @throws {TypeError} when the optimizer has no writable numeric `learningRate`.
   * @throws {RangeError} when the schedule returns a negative or non-finite rate.
   */
  onEpochBegin(epoch: number, state: TrainingState): void {
    const optimizer = state.optimizer as unknown as { learningRate?: unknown };
    const current = optimizer.learningRate;
    if (typeof current !== "number" || !isWritable(optimizer, "learningRate")) {
      throw new TypeError(
        `LearningRateScheduler: optimizer ${state.optimizer} has no writable numeric ` +
          `learningRate field to set (got ${describeKind(current)}); schedule it another way`,
      );
    }
    const next = this.schedule(epoch, current);
    if (typeof next !== "number" || !Number.isFinite(next) || next < 0) {
      throw new RangeError(
        `LearningRateScheduler: schedule returned ${
          describe(next)
        } for epoch ${epoch}; expected a finite number ≥ 0`,
      );
    }
    optimizer.learningRate = next;
  }

  /** `LearningRateScheduler()` */
  toString(): string {
    return "LearningRateScheduler()";
  }
}

// A data property that is writable, or an accessor with a setter, on the object or its prototypes.
function isWritable(target: object, key: string): boolean {
  for (let o: object | null = target; o; o = Object.getPrototypeOf(o)) {
    const descriptor = Object.getOwnPropertyDescriptor(o, key);
    if (descriptor) return descriptor.writable === true || descriptor.set !== undefined;
  }
  return Object.isExtensible(target);
}
