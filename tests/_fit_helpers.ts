// Small third-party plugins for the training-loop tests, written only against the contracts.
import type { JsonObject, Layer, Loss, Optimizer, Param, Targets } from "../mod.ts";
import { Tensor } from "../mod.ts";

/** Identity layer that records the first feature of every row it sees in training. */
export class Recorder implements Layer {
  readonly kind = "Recorder";
  readonly seen: number[][] = [];
  forward(inputs: Tensor, options: { training?: boolean } = {}): Tensor {
    if (options.training) {
      const width = inputs.size / inputs.shape[0];
      this.seen.push(Array.from({ length: inputs.shape[0] }, (_, i) => inputs.data[i * width]));
    }
    return inputs;
  }
  backward(dvalues: Tensor): Tensor {
    return dvalues;
  }
  params(): Param[] {
    return [];
  }
  config(): JsonObject {
    return {};
  }
  toString(): string {
    return "Recorder()";
  }
}

/**
 * Turns the outputs of a sample whose first input is 3 into NaN, as a diverging layer would
 * (fit refuses NaN in the data itself).
 */
export class PoisonThree implements Layer {
  readonly kind = "PoisonThree";
  forward(inputs: Tensor): Tensor {
    const out = inputs.clone();
    const width = inputs.shape[1];
    for (let i = 0; i < inputs.shape[0]; i++) {
      if (inputs.data[i * width] === 3) out.data.fill(NaN, i * width, (i + 1) * width);
    }
    return out;
  }
  backward(dvalues: Tensor): Tensor {
    return dvalues;
  }
  params(): Param[] {
    return [];
  }
  config(): JsonObject {
    return {};
  }
  toString(): string {
    return "PoisonThree()";
  }
}

/** Mean squared error over all elements (targets shaped like the outputs). */
export class SquaredError implements Loss {
  readonly kind = "SquaredError";
  #diff?: Tensor;
  forward(outputs: Tensor, targets: Targets): number {
    const y = targets instanceof Tensor ? targets.data : targets;
    const diff = outputs.clone();
    let sum = 0;
    for (let i = 0; i < diff.size; i++) {
      diff.data[i] -= y[i];
      sum += diff.data[i] ** 2;
    }
    this.#diff = diff;
    return sum / diff.size;
  }
  backward(): Tensor {
    const d = this.#diff!.clone();
    for (let i = 0; i < d.size; i++) d.data[i] *= 2 / d.size;
    return d;
  }
  config(): JsonObject {
    return {};
  }
  toString(): string {
    return "SquaredError()";
  }
}

/** Sets the first parameter's first value to the next number of a script at every step. */
export class ScriptedOptimizer implements Optimizer {
  readonly kind = "Scripted";
  steps = 0;
  constructor(readonly script: number[]) {}
  step(params: readonly Param[]): void {
    params[0].value.data[0] = this.script[this.steps++];
  }
  config(): JsonObject {
    return {};
  }
  toString(): string {
    return "Scripted()";
  }
}

/** Rows `[[0], [1], …, [n−1]]`: each sample's feature is its index. */
export function indexRows(n: number): Tensor {
  return Tensor.from(Array.from({ length: n }, (_, i) => [i]), { dtype: "float64" });
}
