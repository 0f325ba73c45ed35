// The registries of the plugins that ship with chainrule, and the functions users call to
// add their own: a saved model finds its layers, losses, optimizers and schedules by kind.
import { describe } from "../core/_describe.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Loss } from "../core/loss.ts";
import type { Optimizer } from "../core/optimizer.ts";
import { type Factory, Registry } from "../core/registry.ts";
import type { LearningRateSchedule } from "../core/schedule.ts";
import { builtinLayers, builtinLosses, builtinOptimizers, builtinSchedules } from "./builtins.ts";

const layers: Registry<Layer> = new Registry<Layer>("layer", () => builtinLayers(createLayer));
const losses = new Registry<Loss>("loss", builtinLosses);
const optimizers = new Registry<Optimizer>("optimizer", builtinOptimizers);
const schedules = new Registry<LearningRateSchedule>("schedule", builtinSchedules);

/**
 * Makes a layer kind loadable by name, exactly like the built-in ones.
 *
 * Registering an existing kind replaces its factory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLayer, ReLU, registerLayer } from "@chainrule/nn";
 *
 * registerLayer("MyReLU", () => new ReLU());
 * assert.equal(createLayer("MyReLU", {}).toString(), "ReLU()");
 * ```
 */
export function registerLayer(kind: string, factory: Factory<Layer>): void {
  layers.register(kind, factory, "registerLayer");
}

/**
 * Builds a layer of a registered kind from its config.
 *
 * @throws {RangeError} naming the kind, the known kinds and how to register it.
 */
export function createLayer(kind: string, config: JsonObject = {}): Layer {
  return layers.create(kind, config, "createLayer", "registerLayer");
}

/** The registered layer kinds, sorted. */
export function layerKinds(): string[] {
  return layers.kinds();
}

/** Makes a loss kind loadable by name. */
export function registerLoss(kind: string, factory: Factory<Loss>): void {
  losses.register(kind, factory, "registerLoss");
}

/** Builds a loss of a registered kind from its config. */
export function createLoss(kind: string, config: JsonObject = {}): Loss {
  return losses.create(kind, config, "createLoss", "registerLoss");
}

/** The registered loss kinds, sorted. */
export function lossKinds(): string[] {
  return losses.kinds();
}

/** Makes an optimizer kind loadable by name. */
export function registerOptimizer(kind: string, factory: Factory<Optimizer>): void {
  optimizers.register(kind, factory, "registerOptimizer");
}

/**
 * Builds an optimizer of a registered kind from its config, rebuilding a nested
 * `schedule: { kind, config }` through the schedule registry first.
 *
 * @throws {RangeError} for an unknown optimizer or schedule kind.
 * @throws {TypeError} when `config.schedule` is not `{ kind, config }`.
 */
export function createOptimizer(kind: string, config: JsonObject = {}): Optimizer {
  // Resolved here rather than in the optimizers, so that no plugin imports the registry.
  const spec = config.schedule;
  if (spec === undefined || spec === null) {
    return optimizers.create(kind, config, "createOptimizer", "registerOptimizer");
  }
  const { kind: scheduleKind, config: scheduleConfig } = spec as {
    kind?: unknown;
    config?: unknown;
  };
  if (typeof scheduleKind !== "string") {
    throw new TypeError(
      `createOptimizer: config.schedule of ${kind} must be { kind, config }, got ${describe(spec)}`,
    );
  }
  const schedule = createSchedule(scheduleKind, (scheduleConfig ?? {}) as JsonObject);
  return optimizers.create(
    kind,
    { ...config, schedule } as unknown as JsonObject,
    "createOptimizer",
    "registerOptimizer",
  );
}

/** The registered optimizer kinds, sorted. */
export function optimizerKinds(): string[] {
  return optimizers.kinds();
}

/** Makes a learning-rate schedule kind loadable by name (optimizer configs name theirs). */
export function registerSchedule(kind: string, factory: Factory<LearningRateSchedule>): void {
  schedules.register(kind, factory, "registerSchedule");
}

/** Builds a learning-rate schedule of a registered kind from its config. */
export function createSchedule(kind: string, config: JsonObject = {}): LearningRateSchedule {
  return schedules.create(kind, config, "createSchedule", "registerSchedule");
}

/** The registered schedule kinds, sorted. */
export function scheduleKinds(): string[] {
  return schedules.kinds();
}
