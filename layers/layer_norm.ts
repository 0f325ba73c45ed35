import { getBackend } from "../backends/selection.ts";
import { describe, describeKind } from "../core/_describe.ts";
import { expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { BackwardOptions, ForwardOptions, Layer, TorchName } from "../core/layer.ts";
import { checkAllocation } from "../core/_allocation.ts";
import { Param } from "../core/param.ts";
import { Scratch } from "../core/_scratch.ts";
import { type DType, formatShape, type NestedArray, Tensor } from "../core/tensor.ts";
import { fillExplicit } from "./_weights.ts";
import {
  f32Bits,
  type GpuBackwardOptions,
  type GpuContext,
  type GpuLayer,
  type GpuTensor,
  gridFor,
} from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";
import { workgroupReduce } from "./_gpu_reduce.ts";

// float32 rows sum in float64 over four interleaved partial sums: four independent add
// chains, so that a row's sums are not bound by one add's latency (~3× faster at 128
// features). float64 rows keep the one sequential sum, so their results are PyTorch's to
// the last place as before.

// Σ x[start … end)
function sum32(x: Float32Array, start: number, end: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = start;
  for (; i + 3 < end; i += 4) {
    s0 += x[i];
    s1 += x[i + 1];
    s2 += x[i + 2];
    s3 += x[i + 3];
  }
  for (; i < end; i++) s0 += x[i];
  return (s0 + s1) + (s2 + s3);
}

// Σ (x − mean)² over x[start … end)
function squares32(x: Float32Array, start: number, end: number, mean: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = start;
  for (; i + 3 < end; i += 4) {
    const d0 = x[i] - mean, d1 = x[i + 1] - mean, d2 = x[i + 2] - mean, d3 = x[i + 3] - mean;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < end; i++) s0 += (x[i] - mean) * (x[i] - mean);
  return (s0 + s1) + (s2 + s3);
}

// A backend with `layerNormForward`/`layerNormBackward` (the wasm one, on its worker pool,
// for training buffers) runs these same float32 loops, with the same bits. Backward's sums
// for dgamma and dbeta go by fixed groups of rows (`groupRows`: from the shape alone), each
// group summed from 0 in row order, then the groups added in order: a backend splits the
// rows between threads at group boundaries, so any thread count gives the same bits.

// Rows per group of backward's float32 parameter sums: at least 32, and at most 32 groups.
function groupRows(rows: number): number {
  return Math.max(32, Math.ceil(rows / 32));
}

// Σ g and Σ g·x̂ over a row (g = gamma·dvalues, x̂ = (x − mean)·invStd) into `sums`
// [2], adding dvalues·x̂ and dvalues into dgamma and dbeta [features] on the way.
function backwardSums32(
  x: Float32Array,
  dv: Float32Array,
  gamma: Float32Array,
  dgamma: Float64Array,
  dbeta: Float64Array,
  start: number,
  features: number,
  mean: number,
  invStd: number,
  sums: Float64Array,
): void {
  let g0 = 0, g1 = 0, h0 = 0, h1 = 0, f = 0;
  for (; f + 1 < features; f += 2) {
    const i = start + f;
    const d0 = dv[i], d1 = dv[i + 1];
    const xhat0 = (x[i] - mean) * invStd, xhat1 = (x[i + 1] - mean) * invStd;
    const ga0 = gamma[f] * d0, ga1 = gamma[f + 1] * d1;
    dgamma[f] += d0 * xhat0;
    dgamma[f + 1] += d1 * xhat1;
    dbeta[f] += d0;
    dbeta[f + 1] += d1;
    g0 += ga0;
    g1 += ga1;
    h0 += ga0 * xhat0;
    h1 += ga1 * xhat1;
  }
  if (f < features) {
    const i = start + f, d = dv[i], xhat = (x[i] - mean) * invStd, ga = gamma[f] * d;
    dgamma[f] += d * xhat;
    dbeta[f] += d;
    g0 += ga;
    h0 += ga * xhat;
  }
  sums[0] = g0 + g1;
  sums[1] = h0 + h1;
}

// The GPU side: one workgroup of 64 per row (rows folded into y past 65535), each invocation
// summing a strided share of the row, then a tree reduction through workgroup memory. ROW
// declares `reduce` and opens the entry point, up to the row's `lid` and `start`.
const ROW = /* wgsl */ `${workgroupReduce(64)}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
    @builtin(local_invocation_id) lids: vec3u) {
  let row = wid.x + wid.y * groups.x;
  if (row >= p.rows) { return; }
  let lid = lids.x;
  let start = row * p.features;`;

// mean = Σx/F   invStd = 1/√(Σ(x − mean)²/F + ε)   y = (x − mean)·invStd·gamma + beta
const FORWARD = /* wgsl */ `
struct P { rows: u32, features: u32, epsilon: f32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> means: array<f32>;
@group(0) @binding(6) var<storage, read_write> invStds: array<f32>;
${ROW}
  var sum = 0.0;
  for (var f = lid; f < p.features; f += 64u) { sum += x[start + f]; }
  let mean = reduce(lid, sum) / f32(p.features);
  var squares = 0.0;
  for (var f = lid; f < p.features; f += 64u) {
    let d = x[start + f] - mean;
    squares += d * d;
  }
  let invStd = 1.0 / sqrt(reduce(lid, squares) / f32(p.features) + p.epsilon);
  for (var f = lid; f < p.features; f += 64u) {
    y[start + f] = (x[start + f] - mean) * invStd * gamma[f] + beta[f];
  }
  if (lid == 0u) {
    means[row] = mean;
    invStds[row] = invStd;
  }
}`;

// dinputs = invStd·(g − mean(g) − x̂·mean(g·x̂)) per row, g = gamma·dvalues
const BACKWARD_INPUTS = /* wgsl */ `
struct P { rows: u32, features: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dv: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> means: array<f32>;
@group(0) @binding(5) var<storage, read> invStds: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
${ROW}
  let mean = means[row];
  let invStd = invStds[row];
  var sumG = 0.0;
  var sumGXhat = 0.0;
  for (var f = lid; f < p.features; f += 64u) {
    let g = gamma[f] * dv[start + f];
    sumG += g;
    sumGXhat += g * (x[start + f] - mean) * invStd;
  }
  let meanG = reduce(lid, sumG) / f32(p.features);
  let meanGXhat = reduce(lid, sumGXhat) / f32(p.features);
  for (var f = lid; f < p.features; f += 64u) {
    let xhat = (x[start + f] - mean) * invStd;
    dx[start + f] = invStd * (gamma[f] * dv[start + f] - meanG - xhat * meanGXhat);
  }
}`;

// dgamma += Σ_rows dvalues·x̂   dbeta += Σ_rows dvalues: one invocation per feature.
const BACKWARD_PARAMS = /* wgsl */ `
struct P { rows: u32, features: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dv: array<f32>;
@group(0) @binding(3) var<storage, read> means: array<f32>;
@group(0) @binding(4) var<storage, read> invStds: array<f32>;
@group(0) @binding(5) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> dbeta: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let f = gid.x;
  if (f >= p.features) { return; }
  var sumGamma = 0.0;
  var sumBeta = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    let i = r * p.features + f;
    sumGamma += dv[i] * (x[i] - means[r]) * invStds[r];
    sumBeta += dv[i];
  }
  dgamma[f] += sumGamma;
  dbeta[f] += sumBeta;
}`;

/** Options of {@linkcode LayerNorm}. */
export interface LayerNormOptions {
  /**
   * Added to the variance before its square root: a finite number > 0; 1e-5 when omitted
   * (PyTorch's default).
   */
  epsilon?: number;
  /** Initial scale `[features]`; ones when omitted. */
  gamma?: NestedArray;
  /** Initial shift `[features]`; zeros when omitted. */
  beta?: NestedArray;
  /** Element type of the parameters; `"float32"` when omitted. */
  dtype?: DType;
}

/**
 * Layer normalization (Ba, Kiros & Hinton 2016), as PyTorch's `nn.LayerNorm(features)`:
 * each row (the last axis) is normalized to zero mean and unit variance, then scaled and
 * shifted by trained `gamma` and `beta`:
 * `outputs = gamma·(inputs − mean)/√(var + ε) + beta`, with the mean and the biased
 * variance taken over the row's `features` values. Unlike {@linkcode BatchNorm} it needs no
 * batch statistics: training and inference compute the same thing, and every sample (every
 * position of a sequence) is normalized on its own.
 *
 * Shapes: inputs `[..., features]` (any rank ≥ 1, e.g. `[batch, T, features]`) → outputs of
 * the same shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LayerNorm, Tensor } from "@chainrule/nn";
 *
 * // An epsilon of 1e-300 vanishes next to variances of 1 and 25: the values come out exact.
 * const options = { epsilon: 1e-300, gamma: [2, 1], beta: [0, 5], dtype: "float64" } as const;
 * const norm = new LayerNorm(2, options);
 * // rows [1, 3] and [0, 10]: means 2 and 5, standard deviations 1 and 5
 * const out = norm.forward(Tensor.from([[1, 3], [0, 10]], { dtype: "float64" }));
 * assert.deepEqual(out.toArray(), [[-2, 6], [-2, 6]]);
 * ```
 */
export class LayerNorm implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "LayerNorm";
  /** Size of the last axis, over which each row is normalized. */
  readonly features: number;
  /** Added to the variance before its square root. */
  readonly epsilon: number;
  /** Scale `[features]` (PyTorch's `weight`). */
  readonly gamma: Param;
  /** Shift `[features]` (PyTorch's `bias`). */
  readonly beta: Param;
  #inputs?: Tensor; // [..., features], cached by forward for backward
  #mean = new Float64Array(0); // [rows]: each row's mean
  #invStd = new Float64Array(0); // [rows]: each row's 1/√(var + ε)
  #dgamma: Float64Array; // [features]: backward's sums, added to gamma.grad once
  #dbeta: Float64Array; // [features]
  #sums = new Float64Array(2); // [2]: a float32 row's Σ g and Σ g·x̂ in backward
  #groupGamma: Float64Array; // [features]: one group's share of dgamma (float32 layers)
  #groupBeta: Float64Array; // [features]: its share of dbeta
  #training = false; // whether the cached forward was a training one
  #outputs = new Scratch(); // [..., features], reused by training forwards
  #dinputs = new Scratch(); // [..., features], reused by backward after a training forward
  #gpuInputs?: GpuTensor; // [..., features], cached by gpuForward for gpuBackward

  /**
   * Creates the layer: gamma ones, beta zeros unless given.
   *
   * @throws {RangeError} for a feature count that is not a positive integer or an epsilon
   * that is not a finite number > 0.
   * @throws {TypeError} for an unknown dtype or `gamma`/`beta` of another shape.
   */
  constructor(features: number, options: LayerNormOptions = {}) {
    const where = "new LayerNorm";
    if (!Number.isSafeInteger(features) || features <= 0) {
      throw new RangeError(
        `${where}: features must be a positive integer, got ${describe(features)}`,
      );
    }
    const epsilon = options.epsilon ?? 1e-5;
    if (typeof epsilon !== "number" || !Number.isFinite(epsilon) || epsilon <= 0) {
      throw new RangeError(
        `${where}: epsilon must be a finite number > 0 (with 0, a row of equal values gives ` +
          `0/0 = NaN), got ${describe(epsilon)}`,
      );
    }
    this.features = features;
    this.epsilon = epsilon;
    const dtype = options.dtype ?? "float32";
    if (dtype !== "float32" && dtype !== "float64") {
      throw new TypeError(`${where}: dtype must be "float32" or "float64", got ${describe(dtype)}`);
    }
    checkAllocation(where, dtype, { gamma: [features], beta: [features] });
    this.gamma = new Param("gamma", Tensor.filled([features], 1, { dtype }));
    this.beta = new Param("beta", Tensor.zeros([features], { dtype }));
    if (options.gamma !== undefined) fillExplicit(this.gamma.value, options.gamma, "gamma", where);
    if (options.beta !== undefined) fillExplicit(this.beta.value, options.beta, "beta", where);
    this.#dgamma = new Float64Array(features);
    this.#dbeta = new Float64Array(features);
    this.#groupGamma = new Float64Array(features);
    this.#groupBeta = new Float64Array(features);
  }

  /** Rebuilds a layer from {@linkcode LayerNorm.config} (fresh gamma and beta). */
  static fromConfig(config: JsonObject): LayerNorm {
    const { features, ...options } = config as unknown as
      & { features: number }
      & LayerNormOptions;
    return new LayerNorm(features, options);
  }

  /** Element type of the parameters. */
  get dtype(): DType {
    return this.gamma.dtype;
  }

  /**
   * `inputs` [..., features] → outputs of the same shape, each row normalized, scaled and
   * shifted. A training forward reuses its output buffer.
   *
   * @throws {TypeError} for a scalar, another last dimension or another dtype.
   */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    const where = "LayerNorm.forward";
    expectTensor(inputs, where);
    const features = this.features;
    if (inputs.rank < 1 || inputs.shape[inputs.rank - 1] !== features) {
      throw new TypeError(
        `${where}: inputs must be [..., ${features}] (${features} features on the last axis), got shape ${
          formatShape(inputs.shape)
        }`,
      );
    }
    if (inputs.dtype !== this.dtype) {
      throw new TypeError(
        `${where}: inputs are ${inputs.dtype}, the layer is ${this.dtype} (convert with tensor.clone({ dtype: "${this.dtype}" }))`,
      );
    }
    const rows = inputs.size / features;
    if (this.#mean.length !== rows) {
      this.#mean = new Float64Array(rows);
      this.#invStd = new Float64Array(rows);
    }
    this.#inputs = inputs;
    this.#training = options?.training === true;
    const backend = getBackend();
    const outputs = this.#training
      ? this.#outputs.get(inputs.dtype, inputs.shape, backend)
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    const x = inputs.data, y = outputs.data, gamma = this.gamma.value.data;
    const beta = this.beta.value.data, means = this.#mean, invStds = this.#invStd;
    const x32 = x instanceof Float32Array ? x : undefined;
    if (x32 && backend.layerNormForward?.(x32, gamma, beta, this.epsilon, y, means, invStds)) {
      return outputs;
    }
    for (let r = 0; r < rows; r++) {
      const start = r * features, end = start + features;
      let mean: number, squares: number;
      if (x32) {
        mean = sum32(x32, start, end) / features;
        squares = squares32(x32, start, end, mean);
      } else {
        let sum = 0;
        for (let i = start; i < end; i++) sum += x[i];
        mean = sum / features;
        squares = 0;
        for (let i = start; i < end; i++) squares += (x[i] - mean) * (x[i] - mean);
      }
      const variance = squares / features + this.epsilon; // biased, as PyTorch; > 0
      const invStd = 1 / Math.sqrt(variance);
      means[r] = mean;
      invStds[r] = invStd;
      for (let i = start, f = 0; i < end; i++, f++) {
        y[i] = (x[i] - mean) * invStd * gamma[f] + beta[f];
      }
    }
    return outputs;
  }

  // x̂ = (x − mean)·invStd   dgamma += Σ_rows dvalues·x̂   dbeta += Σ_rows dvalues
  // dinputs = invStd·(g − mean(g) − x̂·mean(g·x̂)) per row, with g = gamma·dvalues
  /**
   * `dvalues` [..., features] → dinputs of the same shape, left uncomputed when
   * `options.inputGradient` is false.
   *
   * @throws {Error} before any forward; {TypeError} when `dvalues` is not shaped like the
   * last outputs.
   */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const inputs = this.#inputs;
    if (!inputs) throw new Error("LayerNorm.backward: call forward first");
    const same = dvalues instanceof Tensor && dvalues.dtype === inputs.dtype &&
      dvalues.rank === inputs.rank && dvalues.shape.every((d, i) => d === inputs.shape[i]);
    if (!same) {
      const got = dvalues instanceof Tensor
        ? `${dvalues.dtype} ${formatShape(dvalues.shape)}`
        : describeKind(dvalues);
      throw new TypeError(
        `LayerNorm.backward: dvalues is ${got}, expected ${inputs.dtype} ${
          formatShape(inputs.shape)
        } like the last forward's outputs`,
      );
    }
    const features = this.features, rows = inputs.size / features;
    const x = inputs.data, dv = dvalues.data, gamma = this.gamma.value.data;
    const means = this.#mean, invStds = this.#invStd;
    const dgamma = this.#dgamma, dbeta = this.#dbeta;
    dgamma.fill(0);
    dbeta.fill(0);
    const needInputs = options?.inputGradient !== false;
    const dinputs = this.#training
      ? this.#dinputs.get(
        inputs.dtype,
        inputs.shape,
        needInputs ? getBackend() : undefined,
      )
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    const dx = dinputs.data;
    // float32 rows (inputs, dvalues and gamma all float32) sum by backwardSums32, their
    // dgamma and dbeta by groups of rows
    const x32 = x instanceof Float32Array ? x : undefined;
    const dv32 = dv instanceof Float32Array ? dv : undefined;
    const gamma32 = gamma instanceof Float32Array ? gamma : undefined;
    const float32 = x32 && dv32 && gamma32;
    const group = float32 ? groupRows(rows) : rows;
    const done = float32 && getBackend().layerNormBackward?.(
      x32,
      dv32,
      gamma32,
      means,
      invStds,
      dgamma,
      dbeta,
      needInputs ? dx : null,
      group,
    );
    const groupGamma = this.#groupGamma, groupBeta = this.#groupBeta;
    const sums = this.#sums;
    for (let first = 0; first < rows && !done; first += group) {
      const last = Math.min(first + group, rows);
      if (float32) {
        groupGamma.fill(0);
        groupBeta.fill(0);
      }
      for (let r = first; r < last; r++) {
        const start = r * features, end = start + features;
        const mean = means[r], invStd = invStds[r];
        let sumG = 0, sumGXhat = 0;
        if (float32) {
          backwardSums32(
            x32,
            dv32,
            gamma32,
            groupGamma,
            groupBeta,
            start,
            features,
            mean,
            invStd,
            sums,
          );
          sumG = sums[0];
          sumGXhat = sums[1];
        } else {
          for (let i = start, f = 0; i < end; i++, f++) {
            const xhat = (x[i] - mean) * invStd;
            const g = gamma[f] * dv[i];
            dgamma[f] += dv[i] * xhat;
            dbeta[f] += dv[i];
            sumG += g;
            sumGXhat += g * xhat;
          }
        }
        if (!needInputs) continue;
        const meanG = sumG / features, meanGXhat = sumGXhat / features;
        for (let i = start, f = 0; i < end; i++, f++) {
          const xhat = (x[i] - mean) * invStd;
          dx[i] = invStd * (gamma[f] * dv[i] - meanG - xhat * meanGXhat);
        }
      }
      if (!float32) continue;
      for (let f = 0; f < features; f++) {
        dgamma[f] += groupGamma[f];
        dbeta[f] += groupBeta[f];
      }
    }
    const gammaGrad = this.gamma.grad.data, betaGrad = this.beta.grad.data;
    for (let f = 0; f < features; f++) {
      gammaGrad[f] += dgamma[f];
      betaGrad[f] += dbeta[f];
    }
    return dinputs;
  }

  /**
   * {@linkcode LayerNorm.forward} on the device: `inputs` [..., features] → outputs of the
   * same shape; caches each row's mean and 1/√(var + ε) for `gpuBackward`.
   */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const features = this.features, shape = inputs.shape;
    if (shape.length < 1 || shape[shape.length - 1] !== features) {
      throw new TypeError(
        `LayerNorm.gpuForward: inputs must be [..., ${features}] (${features} features on the last axis), got shape ${
          formatShape(shape)
        }`,
      );
    }
    const rows = inputs.size / features;
    const outputs = ctx.buffer(this, "outputs", shape); // [..., features]
    const mean = ctx.buffer(this, "mean", [rows]); // [rows]
    const invStd = ctx.buffer(this, "invStd", [rows]); // [rows]
    const gamma = ctx.param(this.gamma).value, beta = ctx.param(this.beta).value;
    ctx.run(
      this,
      "forward",
      kernel("LayerNorm.forward", FORWARD),
      [inputs, gamma, beta, outputs, mean, invStd],
      [rows, features, f32Bits(this.epsilon)],
      gridFor(rows, 1),
    );
    this.#gpuInputs = inputs;
    return outputs;
  }

  // x̂ = (x − mean)·invStd   dgamma += Σ_rows dvalues·x̂   dbeta += Σ_rows dvalues
  // dinputs = invStd·(g − mean(g) − x̂·mean(g·x̂)) per row, with g = gamma·dvalues
  /**
   * {@linkcode LayerNorm.backward} on the device: `dvalues` [..., features] → dinputs of
   * the same shape, left uncomputed when `options.inputGradient` is false.
   */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor, options?: GpuBackwardOptions): GpuTensor {
    const inputs = this.#gpuInputs;
    if (!inputs) throw new Error("LayerNorm.gpuBackward: call gpuForward first");
    if (dvalues.size !== inputs.size) {
      throw new TypeError(
        `LayerNorm.gpuBackward: dvalues has shape ${formatShape(dvalues.shape)}, expected ${
          formatShape(inputs.shape)
        } like the last gpuForward's outputs`,
      );
    }
    const features = this.features, rows = inputs.size / features;
    const mean = ctx.buffer(this, "mean", [rows]), invStd = ctx.buffer(this, "invStd", [rows]);
    const gamma = ctx.param(this.gamma), beta = ctx.param(this.beta);
    ctx.run(
      this,
      "dparams",
      kernel("LayerNorm.backward (gamma, beta)", BACKWARD_PARAMS),
      [inputs, dvalues, mean, invStd, gamma.grad, beta.grad],
      [rows, features],
      Math.ceil(features / 64),
    );
    const dinputs = ctx.buffer(this, "dinputs", inputs.shape); // [..., features]
    if (options?.inputGradient === false) return dinputs;
    ctx.run(
      this,
      "dinputs",
      kernel("LayerNorm.backward", BACKWARD_INPUTS),
      [inputs, dvalues, gamma.value, mean, invStd, dinputs],
      [rows, features],
      gridFor(rows, 1),
    );
    return dinputs;
  }

  /** `[gamma, beta]` */
  params(): Param[] {
    return [this.gamma, this.beta];
  }

  /** PyTorch's `nn.LayerNorm` names: gamma and beta are `weight` and `bias`. */
  torchNames(): Record<string, TorchName> {
    return { gamma: { torch: "weight" }, beta: { torch: "bias" } };
  }

  /** `{ features, epsilon, dtype }` */
  config(): JsonObject {
    return { features: this.features, epsilon: this.epsilon, dtype: this.dtype };
  }

  /** `LayerNorm(features=128)`, with epsilon where not the default. */
  toString(): string {
    const extra = this.epsilon !== 1e-5 ? `, epsilon=${this.epsilon}` : "";
    return `LayerNorm(features=${this.features}${extra})`;
  }
}
