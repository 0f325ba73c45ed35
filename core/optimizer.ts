import type { JsonObject } from "./json.ts";
import type { Param } from "./param.ts";
import type { Tensor } from "./tensor.ts";

/** An optimizer's training state, so that a saved run resumes exactly. */
export interface OptimizerState {
  /** Scalars such as the update count. */
  scalars: Record<string, number>;
  /** Per-parameter buffers: slot name (e.g. `"momentum"`) → one tensor per param, in order. */
  slots: Record<string, Tensor[]>;
}

/**
 * The contract every optimizer implements.
 *
 * `step(params)` is one update: it reads each param's `grad` and changes its `value` in
 * place, keeping per-parameter state (momentum, caches) keyed by the `Param` object.
 */
export interface Optimizer {
  /** The registry name of this plugin. */
  readonly kind: string;
  /** Applies one update to every parameter. */
  step(params: readonly Param[]): void;
  /** The constructor arguments as JSON. */
  config(): JsonObject;
  /** A one-line summary. */
  toString(): string;
  /** The state kept for `params` (copies), for saving. */
  getState?(params: readonly Param[]): OptimizerState;
  /** Restores state taken with `getState` for the same parameters, in the same order. */
  setState?(params: readonly Param[], state: OptimizerState): void;
}
