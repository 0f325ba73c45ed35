import type { JsonObject } from "./json.ts";
import type { Param } from "./param.ts";

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
}
