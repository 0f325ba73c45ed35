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

/**
 * The gradient clipping every built-in optimizer offers, applied to the gradients in place
 * at the start of each `step(params)`, before the update (as PyTorch users call
 * `clip_grad_value_` and `clip_grad_norm_` before `optimizer.step()`). With both, the
 * values are clipped first, then the norm.
 */
export interface ClipOptions {
  /**
   * The largest global L2 norm of the gradients: `norm = √Σ g²` over every parameter passed
   * to one `step(params)`, and when `max / (norm + 1e-6) < 1` every gradient is multiplied
   * by it (`torch.nn.utils.clip_grad_norm_`). A non-finite norm (NaN or infinite
   * gradients) stops the step with a RangeError, leaving the parameters untouched. None
   * when omitted.
   */
  globalClipNorm?: number;
  /**
   * The largest magnitude of a gradient element: each is clamped to [−v, v]
   * (`torch.nn.utils.clip_grad_value_`; a NaN stays NaN). None when omitted.
   */
  clipValue?: number;
}
