import type { Layer } from "./layer.ts";
import type { Loss, Targets } from "./loss.ts";
import { RandomState } from "./random.ts";
import { formatShape, Tensor, type TensorLike, toTensor } from "./tensor.ts";

/** Options of {@linkcode checkGradients}. */
export interface GradientCheckOptions {
  /** Checks the layer (or model) through this loss instead of a random projection. */
  loss?: Loss;
  /** Targets for `loss`, or for a loss that is itself the subject. */
  targets?: Targets;
  /** Half-width of the central difference; 1e-6 when omitted. */
  epsilon?: number;
  /** Below this magnitude errors count as absolute rather than relative; 1e-3. */
  relativeFloor?: number;
  /** Seed of the random projection that turns a layer's outputs into a scalar; 0. */
  seed?: number;
  /** Passed to `forward` as `training`; false when omitted. */
  training?: boolean;
  /**
   * Whether to check d/d(inputs); true when omitted. False for inputs that are not
   * differentiable, such as an `Embedding`'s token ids, which a central difference would
   * turn into non-integers: only the parameters are then checked (and the report has no
   * `inputs` row).
   */
  checkInputs?: boolean;
}

/** How far one tensor's analytic gradient is from the numeric one. */
export interface TensorGradientError {
  /** `inputs`, or the parameter as `<layer index>.<kind>.<param>` (`<kind>.<param>` for a lone layer). */
  name: string;
  /** Shape of the tensor. */
  shape: readonly number[];
  /** Largest |analytic − numeric|. */
  maxAbsoluteError: number;
  /** Largest |analytic − numeric| / max(|analytic|, |numeric|, relativeFloor). */
  maxRelativeError: number;
  /** Indices of the element with the largest relative error. */
  worst: number[];
  /** The analytic gradient at `worst`. */
  analytic: number;
  /** The numeric gradient at `worst`. */
  numeric: number;
}

/** The outcome of {@linkcode checkGradients}: one row per checked tensor. */
export class GradientReport {
  /** One entry per tensor: the inputs (unless `checkInputs` was false), then every parameter. */
  readonly tensors: readonly TensorGradientError[];

  /** Wraps the per-tensor results. */
  constructor(tensors: readonly TensorGradientError[]) {
    this.tensors = tensors;
  }

  /** The largest relative error over every tensor. */
  get maxRelativeError(): number {
    return Math.max(0, ...this.tensors.map((t) => t.maxRelativeError));
  }

  /** The largest absolute error over every tensor. */
  get maxAbsoluteError(): number {
    return Math.max(0, ...this.tensors.map((t) => t.maxAbsoluteError));
  }

  /** A table, one line per tensor, worst element included. */
  toString(): string {
    const rows = this.tensors.map((t) =>
      `${t.name.padEnd(24)} ${formatShape(t.shape).padEnd(10)} max rel ${
        t.maxRelativeError.toExponential(2)
      }  ` +
      `max abs ${t.maxAbsoluteError.toExponential(2)}  worst ${
        formatShape(t.worst)
      }: analytic ${t.analytic} numeric ${t.numeric}`
    );
    return [`gradient check: max relative error ${this.maxRelativeError.toExponential(2)}`, ...rows]
      .join("\n");
  }
}

function nanToInfinity(value: number): number {
  return Number.isNaN(value) ? Infinity : value;
}

function isLoss(subject: Layer | Loss): subject is Loss {
  return typeof (subject as Layer).params !== "function";
}

function indicesOf(flat: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return out;
}

function paramNames(subject: Layer): string[] {
  const children = (subject as { layers?: unknown }).layers;
  if (Array.isArray(children)) {
    return children.flatMap((layer: Layer, i) =>
      layer.params().map((p) => `${i}.${layer.kind}.${p.name}`)
    );
  }
  return subject.params().map((p) => `${subject.kind}.${p.name}`);
}

// What one evaluation yields: outputs to project (lone layer) and a scalar part (loss, penalty).
interface Evaluation {
  vector: Float64Array;
  scalar: number;
}

/**
 * Compares every analytic gradient with central finite differences in float64.
 *
 * The subject is a layer or a model (checked through `options.loss` and `options.targets`,
 * or, without a loss, through the scalar `Σ outputs·R` for a fixed random `R`), or a loss on
 * its own (with `options.targets`). It checks d/d(inputs) (unless `options.checkInputs` is
 * false) and d/d(every parameter), regularization penalties included, and returns a report
 * to assert on. The subject must compute in float64 (`dtype: "float64"`).
 *
 * @throws {TypeError} when a parameter is float32, a loss has no targets, or
 * `checkInputs` is false for a subject without parameters (nothing would be checked).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkGradients, Dense, Tensor } from "@chainrule/nn";
 *
 * const layer = new Dense(4, 3, { dtype: "float64", seed: 1 });
 * const x = Tensor.from([[1, 2, 3, 4], [-1, 0.5, 2, 0]], { dtype: "float64" });
 * const report = checkGradients(layer, x);
 * assert.ok(report.maxRelativeError < 1e-6, report.toString());
 * ```
 */
export function checkGradients(
  subject: Layer | Loss,
  inputs: TensorLike,
  options: GradientCheckOptions = {},
): GradientReport {
  const epsilon = options.epsilon ?? 1e-6;
  const floor = options.relativeFloor ?? 1e-3;
  const x = toTensor(inputs, "float64").clone();
  const forwardOptions = { training: options.training ?? false };
  const { loss, targets } = options;
  if ((isLoss(subject) || loss) && targets === undefined) {
    throw new TypeError("checkGradients: options.targets is required when checking through a loss");
  }
  const params = isLoss(subject) ? [] : subject.params();
  if (options.checkInputs === false && params.length === 0) {
    throw new TypeError(
      `checkGradients: checkInputs is false and ${subject} has no parameters, so nothing would be checked`,
    );
  }
  for (const param of params) {
    if (param.dtype !== "float64") {
      throw new TypeError(
        `checkGradients: param "${param.name}" of ${subject} is ${param.dtype}; build it with dtype "float64" to check gradients`,
      );
    }
  }
  let projection: Tensor | undefined;

  const evaluate = (): Evaluation => {
    if (isLoss(subject)) {
      return { vector: new Float64Array(0), scalar: subject.forward(x, targets!) };
    }
    const outputs = subject.forward(x, forwardOptions);
    const penalty = subject.regularizationLoss?.() ?? 0;
    if (loss) {
      return { vector: new Float64Array(0), scalar: loss.forward(outputs, targets!) + penalty };
    }
    return { vector: Float64Array.from(outputs.data), scalar: penalty };
  };

  // Analytic pass.
  for (const param of params) param.zeroGrad();
  let dinputs: Tensor;
  if (isLoss(subject)) {
    subject.forward(x, targets!);
    dinputs = subject.backward();
  } else {
    const outputs = subject.forward(x, forwardOptions);
    if (loss) {
      loss.forward(outputs, targets!);
      dinputs = subject.backward(loss.backward());
    } else {
      const random = new RandomState(options.seed ?? 0);
      projection = Tensor.zeros(outputs.shape, { dtype: "float64" });
      for (let i = 0; i < projection.size; i++) projection.data[i] = 2 * random.random() - 1;
      dinputs = subject.backward(projection);
    }
  }
  const checkInputs = options.checkInputs ?? true;
  if (checkInputs && dinputs.size !== x.size) {
    throw new TypeError(
      `checkGradients: backward returned shape ${
        formatShape(dinputs.shape)
      }, expected the inputs' ${formatShape(x.shape)}`,
    );
  }

  // Numeric pass: projecting the output difference (not differencing a projected sum)
  // keeps round-off at the scale of single outputs.
  const numericAt = (values: Float64Array | Float32Array, i: number): number => {
    const saved = values[i];
    values[i] = saved + epsilon;
    const plus = evaluate();
    values[i] = saved - epsilon;
    const minus = evaluate();
    values[i] = saved;
    let diff = plus.scalar - minus.scalar;
    if (projection) {
      const r = projection.data;
      for (let j = 0; j < r.length; j++) diff += r[j] * (plus.vector[j] - minus.vector[j]);
    }
    return diff / (2 * epsilon);
  };

  const compare = (
    name: string,
    shape: readonly number[],
    analytic: ArrayLike<number>,
    values: Float64Array | Float32Array,
  ): TensorGradientError => {
    const result: TensorGradientError = {
      name,
      shape,
      maxAbsoluteError: 0,
      maxRelativeError: 0,
      worst: [],
      analytic: NaN,
      numeric: NaN,
    };
    for (let i = 0; i < values.length; i++) {
      const numeric = numericAt(values, i);
      const a = analytic[i];
      // A NaN on either side counts as an infinite error, so it can never pass.
      const absolute = nanToInfinity(Math.abs(a - numeric));
      const relative = nanToInfinity(absolute / Math.max(Math.abs(a), Math.abs(numeric), floor));
      if (relative > result.maxRelativeError || result.worst.length === 0) {
        Object.assign(result, {
          maxRelativeError: relative,
          worst: indicesOf(i, shape),
          analytic: a,
          numeric,
        });
      }
      result.maxAbsoluteError = Math.max(result.maxAbsoluteError, absolute);
    }
    return result;
  };

  const analyticInputs = Float64Array.from(dinputs.data);
  const analyticParams = params.map((p) => Float64Array.from(p.grad.data));
  const names = isLoss(subject) ? [] : paramNames(subject);
  const rows = checkInputs ? [compare("inputs", x.shape, analyticInputs, x.data)] : [];
  params.forEach((param, k) => {
    rows.push(
      compare(names[k] ?? param.name, param.value.shape, analyticParams[k], param.value.data),
    );
  });
  return new GradientReport(rows);
}
