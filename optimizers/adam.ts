import type { JsonObject } from "../core/json.ts";
import type { Optimizer, OptimizerState } from "../core/optimizer.ts";
import type { Param } from "../core/param.ts";
import { allocate, type FloatArray, formatShape, Tensor } from "../core/tensor.ts";
import { checkHyper } from "./sgd.ts";

/** Options of {@linkcode Adam}, with the book's defaults. */
export interface AdamOptions {
  /** Initial step size; 0.001 when omitted. */
  learningRate?: number;
  /** Inverse-time decay: the step size of update t is `learningRate / (1 + decay·t)`; 0. */
  decay?: number;
  /** Decay of the first-moment (momentum) average; 0.9. */
  beta1?: number;
  /** Decay of the second-moment (cache) average; 0.999. */
  beta2?: number;
  /** Added to the square root of the corrected cache; 1e-7. */
  epsilon?: number;
}

/** The per-parameter state of {@linkcode Adam}. */
export interface AdamMoments {
  /** First moment, shaped like the param. */
  momentum: FloatArray;
  /** Second moment, shaped like the param. */
  cache: FloatArray;
}

/**
 * Adam, exactly as the book writes it (and as `torch.optim.Adam` computes it).
 *
 * For update t = 0, 1, …: `lr_t = lr / (1 + decay·t)`, `m = β₁m + (1−β₁)g`,
 * `v = β₂v + (1−β₂)g²`, `p −= lr_t · (m / (1−β₁^(t+1))) / (√(v / (1−β₂^(t+1))) + ε)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Adam, Param, Tensor } from "@chainrule/nn";
 *
 * const p = new Param("w", Tensor.from([1], { dtype: "float64" }));
 * p.grad.data[0] = 3;
 * new Adam({ learningRate: 0.1 }).step([p]);
 * // The first Adam step moves by about the learning rate, whatever the gradient's size.
 * assert.ok(Math.abs(p.value.data[0] - 0.9) < 1e-6);
 * ```
 */
export class Adam implements Optimizer {
  /** Registry name. */
  readonly kind = "Adam";
  /** Initial step size. */
  learningRate: number;
  /** Inverse-time decay of the step size. */
  readonly decay: number;
  /** First-moment decay. */
  readonly beta1: number;
  /** Second-moment decay. */
  readonly beta2: number;
  /** Denominator guard. */
  readonly epsilon: number;
  /** Updates done so far (t). */
  iterations = 0;
  #moments = new Map<Param, AdamMoments>();

  /** Creates the optimizer. */
  constructor(options: AdamOptions = {}) {
    this.learningRate = checkHyper("new Adam", "learningRate", options.learningRate ?? 0.001);
    this.decay = checkHyper("new Adam", "decay", options.decay ?? 0);
    this.beta1 = checkHyper("new Adam", "beta1", options.beta1 ?? 0.9, 0, 1);
    this.beta2 = checkHyper("new Adam", "beta2", options.beta2 ?? 0.999, 0, 1);
    this.epsilon = checkHyper("new Adam", "epsilon", options.epsilon ?? 1e-7);
  }

  /** Rebuilds the optimizer from {@linkcode Adam.config}. */
  static fromConfig(config: JsonObject): Adam {
    return new Adam(config as AdamOptions);
  }

  /** The step size of the next update: `learningRate / (1 + decay·t)`. */
  get currentLearningRate(): number {
    return this.decay
      ? this.learningRate * (1 / (1 + this.decay * this.iterations))
      : this.learningRate;
  }

  /** The moment buffers of `param` (created zeroed on first use). */
  moments(param: Param): AdamMoments {
    let moments = this.#moments.get(param);
    if (!moments) {
      moments = {
        momentum: allocate(param.dtype, param.value.size),
        cache: allocate(param.dtype, param.value.size),
      };
      this.#moments.set(param, moments);
    }
    return moments;
  }

  /** One update of every parameter. */
  step(params: readonly Param[]): void {
    const lr = this.currentLearningRate;
    const { beta1, beta2, epsilon } = this;
    const correction1 = 1 - beta1 ** (this.iterations + 1);
    const correction2 = 1 - beta2 ** (this.iterations + 1);
    for (const param of params) {
      const { momentum, cache } = this.moments(param);
      const value = param.value.data;
      const grad = param.grad.data;
      for (let i = 0; i < value.length; i++) {
        const g = grad[i];
        momentum[i] = beta1 * momentum[i] + (1 - beta1) * g;
        cache[i] = beta2 * cache[i] + (1 - beta2) * (g * g);
        value[i] += (-lr * (momentum[i] / correction1)) /
          (Math.sqrt(cache[i] / correction2) + epsilon);
      }
    }
    this.iterations++;
  }

  /** Copies of the update count and of every param's moments. */
  getState(params: readonly Param[]): OptimizerState {
    const copy = (param: Param, data: FloatArray) => new Tensor(data.slice(), param.value.shape);
    return {
      scalars: { iterations: this.iterations },
      slots: {
        momentum: params.map((p) => copy(p, this.moments(p).momentum)),
        cache: params.map((p) => copy(p, this.moments(p).cache)),
      },
    };
  }

  /**
   * Restores state taken with {@linkcode Adam.getState}.
   *
   * @throws {TypeError} when a slot is missing or does not match its param's shape.
   */
  setState(params: readonly Param[], state: OptimizerState): void {
    const iterations = state.scalars.iterations;
    if (!Number.isSafeInteger(iterations) || iterations < 0) {
      throw new TypeError(
        `Adam.setState: scalars.iterations must be an integer ≥ 0, got ${iterations}`,
      );
    }
    params.forEach((param, i) => {
      const moments = this.moments(param);
      for (const slot of ["momentum", "cache"] as const) {
        const saved = state.slots[slot]?.[i];
        if (!saved || saved.size !== param.value.size) {
          const got = saved ? formatShape(saved.shape) : "nothing";
          throw new TypeError(
            `Adam.setState: slot "${slot}" of param ${i} must have shape ${
              formatShape(param.value.shape)
            }, got ${got}`,
          );
        }
        moments[slot].set(saved.data);
      }
    });
    this.iterations = iterations;
  }

  /** The hyper-parameters as JSON. */
  config(): JsonObject {
    const { learningRate, decay, beta1, beta2, epsilon } = this;
    return { learningRate, decay, beta1, beta2, epsilon };
  }

  /** `Adam(learningRate=0.05, decay=5e-7)` */
  toString(): string {
    const decay = this.decay ? `, decay=${this.decay}` : "";
    return `Adam(learningRate=${this.learningRate}${decay})`;
  }
}
