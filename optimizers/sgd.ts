import type { JsonObject } from "../core/json.ts";
import type { Optimizer, OptimizerState } from "../core/optimizer.ts";
import type { Param } from "../core/param.ts";

/** Options of {@linkcode SGD}. */
export interface SGDOptions {
  /** Step size; 1.0 when omitted, the book's default. */
  learningRate?: number;
}

/** Checks an optimizer hyper-parameter and returns it. */
export function checkHyper(
  where: string,
  name: string,
  value: number,
  min = 0,
  max = Infinity,
): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    const range = max === Infinity ? `≥ ${min}` : `in [${min}, ${max}]`;
    throw new RangeError(`${where}: ${name} must be a finite number ${range}, got ${value}`);
  }
  return value;
}

/**
 * Stochastic gradient descent: `value −= learningRate · grad`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Param, SGD, Tensor } from "@chainrule/nn";
 *
 * const p = new Param("w", Tensor.from([1], { dtype: "float64" }));
 * p.grad.data[0] = 4;
 * new SGD({ learningRate: 0.5 }).step([p]);
 * assert.equal(p.value.data[0], -1);
 * ```
 */
export class SGD implements Optimizer {
  /** Registry name. */
  readonly kind = "SGD";
  /** Step size. */
  learningRate: number;

  /** Creates the optimizer. */
  constructor(options: SGDOptions = {}) {
    this.learningRate = checkHyper("new SGD", "learningRate", options.learningRate ?? 1);
  }

  /** Rebuilds the optimizer from {@linkcode SGD.config}. */
  static fromConfig(config: JsonObject): SGD {
    return new SGD(config as SGDOptions);
  }

  /** One update of every parameter. */
  step(params: readonly Param[]): void {
    const lr = this.learningRate;
    for (const param of params) {
      const value = param.value.data;
      const grad = param.grad.data;
      for (let i = 0; i < value.length; i++) value[i] -= lr * grad[i];
    }
  }

  /** SGD keeps no state. */
  getState(_params: readonly Param[]): OptimizerState {
    return { scalars: {}, slots: {} };
  }

  /** Nothing to restore. */
  setState(_params: readonly Param[], _state: OptimizerState): void {}

  /** `{ learningRate }` */
  config(): JsonObject {
    return { learningRate: this.learningRate };
  }

  /** `SGD(learningRate=1)` */
  toString(): string {
    return `SGD(learningRate=${this.learningRate})`;
  }
}
