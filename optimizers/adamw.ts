import type { JsonObject } from "../core/json.ts";
import type { Param } from "../core/param.ts";
import { describeClipping, describeSchedule } from "./_common.ts";
import { Adam, type AdamOptions } from "./adam.ts";
import { checkHyper } from "../core/_checks.ts";

/** Options of {@linkcode AdamW}: Adam's, plus the decoupled weight decay. */
export interface AdamWOptions extends AdamOptions {
  /** Fraction of every parameter removed per unit of step size; 0.01 (PyTorch's default). */
  weightDecay?: number;
}

/**
 * Adam with decoupled weight decay (Loshchilov & Hutter; `torch.optim.AdamW`): each update
 * first shrinks every parameter, `p ← p·(1 − lr_t·weightDecay)`, then takes
 * {@linkcode Adam}'s step. Unlike an L2 penalty, the decay does not pass through Adam's
 * gradient scaling, so every weight decays at the same rate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AdamW, Param, Tensor } from "@chainrule/nn";
 *
 * const p = new Param("w", Tensor.from([2], { dtype: "float64" }));
 * // A zero gradient leaves only the decay: 2·(1 − 0.1·0.5) = 1.9.
 * new AdamW({ learningRate: 0.1, weightDecay: 0.5 }).step([p]);
 * assert.ok(Math.abs(p.value.data[0] - 1.9) < 1e-15);
 * ```
 */
export class AdamW extends Adam {
  /** Registry name. */
  override readonly kind: string = "AdamW";
  /** Fraction of every parameter removed per unit of step size. */
  readonly weightDecay: number;

  /**
   * Creates the optimizer.
   *
   * @throws {RangeError} when a hyper-parameter is out of range.
   */
  constructor(options: AdamWOptions = {}) {
    super(options);
    this.weightDecay = checkHyper("new AdamW", "weightDecay", options.weightDecay ?? 0.01);
  }

  /** Rebuilds the optimizer from {@linkcode AdamW.config} (`createOptimizer` rebuilds its schedule). */
  static override fromConfig(config: JsonObject): AdamW {
    return new AdamW(config as AdamWOptions);
  }

  /** `1 − learningRate·weightDecay`: the decay's factor, on the CPU and on the device. */
  protected override weightShrink(learningRate: number): number {
    return 1 - learningRate * this.weightDecay;
  }

  // p ← p·(1 − lr_t·weightDecay), then Adam's update with the same lr_t
  /** Shrinks every parameter before Adam's update (after clipping, which it does not read). */
  protected override beforeUpdate(params: readonly Param[], learningRate: number): void {
    const shrink = this.weightShrink(learningRate);
    if (shrink === 1) return;
    for (const param of params) {
      const value = param.value.data;
      for (let i = 0; i < value.length; i++) value[i] *= shrink;
    }
  }

  /** The hyper-parameters as JSON. */
  override config(): JsonObject {
    return { ...super.config(), weightDecay: this.weightDecay };
  }

  /** `AdamW(learningRate=0.001, weightDecay=0.01)` */
  override toString(): string {
    return `AdamW(learningRate=${this.learningRate}, weightDecay=${this.weightDecay}${
      describeSchedule(this.decay, this.schedule)
    }${describeClipping(this)})`;
  }
}
