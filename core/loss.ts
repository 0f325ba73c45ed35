import type { JsonObject } from "./json.ts";
import type { Tensor } from "./tensor.ts";

/**
 * Training targets: class indices (`number[]`, `Int32Array`, `Uint8Array`), or a tensor
 * (one-hot rows for classification, values for regression).
 */
export type Targets = Tensor | readonly number[] | Int32Array | Uint8Array;

/**
 * The contract every loss implements.
 *
 * `forward(outputs, targets)` returns the mean loss over the batch and caches what
 * `backward()` needs; `backward()` returns d(loss)/d(outputs), already divided by the
 * batch size.
 */
export interface Loss {
  /** The registry name of this plugin. */
  readonly kind: string;
  /** Mean loss over the batch. */
  forward(outputs: Tensor, targets: Targets): number;
  /** d(mean loss)/d(outputs), shaped like the outputs. */
  backward(): Tensor;
  /** The constructor arguments as JSON. */
  config(): JsonObject;
  /** A one-line summary. */
  toString(): string;
}
