// The loops of MultiHeadAttention that no product does: moving heads between the
// projections' rows and head-contiguous blocks, and the dropout of attention weights (the row
// softmax and its derivative are backends/_attention_tasks.ts's, which the worker pool runs
// too). Every product goes to the backend. Below the CPU loops, their WGSL kernels for the
// layer's GPU side (every product there goes to gpuMatmul).
//
// Dimension letters: B batch, T positions, H heads, E = dim / H per head, D = H·E.
import type { RandomState } from "../core/random.ts";
import type { FloatArray } from "../core/tensor.ts";
import { f32Bits, flatIndex, type GpuContext, type GpuTensor, gridFor } from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";
export { softmaxRows, softmaxRowsBackward } from "../backends/_attention_tasks.ts";

/**
 * Copies `chunks` groups of heads out of projection rows into head-contiguous blocks:
 * src [B·T, chunks·D] (group c, head h at columns c·D + h·E …) → dst [chunks, B, H, T, E].
 * With chunks 3 this splits the in-projection's q | k | v; with 1, one gradient of heads.
 */
export function splitHeads(
  src: FloatArray, // [B·T, chunks·D]
  dst: FloatArray, // [chunks, B, H, T, E]
  batch: number,
  T: number,
  heads: number,
  E: number,
  chunks: number,
): void {
  const D = heads * E, stride = chunks * D, block = T * E;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < T; t++) {
      const row = (b * T + t) * stride;
      for (let c = 0; c < chunks; c++) {
        for (let h = 0; h < heads; h++) {
          const from = row + c * D + h * E;
          const to = ((c * batch + b) * heads + h) * block + t * E;
          for (let e = 0; e < E; e++) dst[to + e] = src[from + e];
        }
      }
    }
  }
}

/**
 * The inverse of {@linkcode splitHeads}: src [chunks, B, H, T, E] → dst [B·T, chunks·D],
 * reading src in order (~10% faster than writing dst in order at W5's shape).
 */
export function mergeHeads(
  src: FloatArray, // [chunks, B, H, T, E]
  dst: FloatArray, // [B·T, chunks·D]
  batch: number,
  T: number,
  heads: number,
  E: number,
  chunks: number,
): void {
  const D = heads * E, stride = chunks * D;
  let from = 0;
  for (let c = 0; c < chunks; c++) {
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        let to = b * T * stride + c * D + h * E;
        for (let t = 0; t < T; t++, to += stride) {
          for (let e = 0; e < E; e++) dst[to + e] = src[from++];
        }
      }
    }
  }
}

/**
 * Draws one head's dropout mask [T, T] (0 with probability `rate`, else 1 / (1 − rate)),
 * one uniform draw per attention weight in row-major order (for j ≤ i only, when `causal`),
 * and writes dropped = p·mask.
 */
export function dropWeights(
  p: FloatArray, // [T, T]
  mask: FloatArray, // [T, T]
  dropped: FloatArray, // [T, T]
  T: number,
  rate: number,
  causal: boolean,
  random: RandomState,
): void {
  const scale = 1 / (1 - rate);
  for (let i = 0; i < T; i++) {
    const row = i * T, end = row + (causal ? i + 1 : T), stop = row + T;
    for (let at = row; at < end; at++) {
      const keep = random.random() >= rate ? scale : 0;
      mask[at] = keep;
      dropped[at] = p[at] * keep;
    }
    for (let at = end; at < stop; at++) mask[at] = dropped[at] = 0;
  }
}

const views = new WeakMap<FloatArray, FloatArray[]>();

/**
 * `data` cut into consecutive blocks of `size` elements, as subarray views, made once per
 * array and kept while it lives: the per-head products of a training step allocate none.
 */
export function blocks(data: FloatArray, size: number): FloatArray[] {
  let cut = views.get(data);
  if (cut === undefined || cut.length * size !== data.length || cut[0]?.length !== size) {
    cut = [];
    for (let at = 0; at < data.length; at += size) cut.push(data.subarray(at, at + size));
    views.set(data, cut);
  }
  return cut;
}

// ---- The GPU side ------------------------------------------------------------------------

// src [B·T, chunks·D] → out_c [B, H, T, E] for each chunk c: one invocation per element of
// one chunk's output, which it copies for every chunk.
const SPLIT_HEADS = (chunks: number) => {
  const outputs = Array.from(
    { length: chunks },
    (_, c) => `@group(0) @binding(${c + 2}) var<storage, read_write> out${c}: array<f32>;`,
  ).join("\n");
  const copies = Array.from({ length: chunks }, (_, c) => `out${c}[i] = src[at + ${c}u * D];`);
  return /* wgsl */ `
struct P { batch: u32, T: u32, heads: u32, E: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
${outputs}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.batch * p.heads * p.T * p.E) { return; }
  let e = i % p.E;
  let t = (i / p.E) % p.T;
  let h = (i / (p.E * p.T)) % p.heads;
  let b = i / (p.E * p.T * p.heads);
  let D = p.heads * p.E;
  let at = (b * p.T + t) * ${chunks}u * D + h * p.E + e;
  ${copies.join(" ")}
}`;
};

/**
 * {@linkcode splitHeads} on the device: `src` [B·T, chunks·D] → `outs[c]` [B·H, T, E], one
 * output tensor per chunk (q, k, v apart, so that each can be a product's operand).
 */
export function gpuSplitHeads(
  ctx: GpuContext,
  owner: object,
  key: string,
  src: GpuTensor, // [B·T, chunks·D]
  outs: readonly GpuTensor[], // chunks × [B·H, T, E]
  batch: number,
  T: number,
  heads: number,
  E: number,
): void {
  const code = SPLIT_HEADS(outs.length);
  const count = batch * heads * T * E;
  const label = "MultiHeadAttention split heads";
  const words = [batch, T, heads, E];
  ctx.run(owner, key, kernel(label, code), [src, ...outs], words, gridFor(count));
}

// in_c [B, H, T, E] → dst [B·T, chunks·D]: one invocation per element of dst, which reads
// the chunk its column falls in.
const MERGE_HEADS = (chunks: number) => {
  const inputs = Array.from(
    { length: chunks },
    (_, c) => `@group(0) @binding(${c + 1}) var<storage, read> in${c}: array<f32>;`,
  ).join("\n");
  // var value = in_last[at]; if (c == 0u) { value = in0[at]; } else if (c == 1u) …
  let pick = `var value = in${chunks - 1}[at];`;
  for (let c = 0; c < chunks - 1; c++) {
    pick += `${c === 0 ? " " : " else "}if (c == ${c}u) { value = in${c}[at]; }`;
  }
  return /* wgsl */ `
struct P { batch: u32, T: u32, heads: u32, E: u32 };
@group(0) @binding(0) var<uniform> p: P;
${inputs}
@group(0) @binding(${chunks + 1}) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  let D = p.heads * p.E;
  let width = ${chunks}u * D;
  if (i >= p.batch * p.T * width) { return; }
  let row = i / width;
  let col = i % width;
  let c = col / D;
  let h = (col % D) / p.E;
  let e = col % p.E;
  let b = row / p.T;
  let t = row % p.T;
  let at = ((b * p.heads + h) * p.T + t) * p.E + e;
  ${pick}
  dst[i] = value;
}`;
};

/**
 * {@linkcode mergeHeads} on the device: `ins[c]` [B·H, T, E] → `dst` [B·T, chunks·D], the
 * inverse of {@linkcode gpuSplitHeads}.
 */
export function gpuMergeHeads(
  ctx: GpuContext,
  owner: object,
  key: string,
  ins: readonly GpuTensor[], // chunks × [B·H, T, E]
  dst: GpuTensor, // [B·T, chunks·D]
  batch: number,
  T: number,
  heads: number,
  E: number,
): void {
  const code = MERGE_HEADS(ins.length);
  const count = batch * T * ins.length * heads * E;
  const label = "MultiHeadAttention merge heads";
  const words = [batch, T, heads, E];
  ctx.run(owner, key, kernel(label, code), [...ins, dst], words, gridFor(count));
}

// The dropout mask of the GPU side: attention weight `index` of a step is kept, scaled by
// keepScale, when a counter-based hash of (key, step, index) — lowbias32 (Chris Wellons'
// hash-prospector), a bijection of u32 — read as a uniform in [0, 1) is ≥ rate, as the CPU
// keeps a weight when random() ≥ rate. No state: backward recomputes the forward's mask.
const KEEP = /* wgsl */ `
fn hash(value: u32) -> u32 {
  var x = value;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}
fn keep(index: u32) -> f32 {
  let h = hash(index ^ hash(p.key ^ hash(p.step)));
  let u = f32(h >> 8u) * (1.0 / 16777216.0);
  return select(0.0, p.keepScale, u >= p.rate);
}`;

// Row r of [B·H·T, T] (position i = r mod T) → softmax(scale·scores[r, j]) over j ≤ i when
// causal (0 beyond), else over every j: one invocation per row, in place.
const SOFTMAX = /* wgsl */ `
struct P { rows: u32, T: u32, scale: f32, causal: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> s: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex(64)}
  if (i >= p.rows) { return; }
  let row = i * p.T;
  let end = select(p.T, i % p.T + 1u, p.causal != 0u);
  var top = s[row];
  for (var j = 1u; j < end; j++) { top = max(top, s[row + j]); }
  let shift = top * p.scale;
  var sum = 0.0;
  for (var j = 0u; j < end; j++) {
    let e = exp(s[row + j] * p.scale - shift);
    s[row + j] = e;
    sum += e;
  }
  let inverse = 1.0 / sum;
  for (var j = 0u; j < end; j++) { s[row + j] *= inverse; }
  for (var j = end; j < p.T; j++) { s[row + j] = 0.0; }
}`;

/**
 * {@linkcode softmaxRows} on the device, in place over `scores` [B·H, T, T] (`rows` = B·H·T
 * rows of T): scores → attention probabilities.
 */
export function gpuSoftmaxRows(
  ctx: GpuContext,
  owner: object,
  key: string,
  scores: GpuTensor, // [B·H, T, T]
  rows: number,
  T: number,
  scale: number,
  causal: boolean,
): void {
  const words = [rows, T, f32Bits(scale), causal ? 1 : 0];
  ctx.run(
    owner,
    key,
    kernel("MultiHeadAttention softmax", SOFTMAX),
    [scores],
    words,
    gridFor(rows, 64),
  );
}

/** The dropout of the GPU side: a mask that is a function of `(key, step, index)`. */
export interface GpuDropoutMask {
  /** The fraction dropped, in (0, 1). */
  rate: number;
  /** 32 bits drawn once from the layer's generator. */
  key: number;
  /** The training step whose mask this is (`ctx.step` at the forward). */
  step: number;
}

// dropped[i] = probs[i]·keep(i) over [B·H, T, T]: one invocation per weight.
const DROP = /* wgsl */ `
struct P { count: u32, key: u32, step: u32, rate: f32, keepScale: f32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read_write> dropped: array<f32>;
${KEEP}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.count) { return; }
  dropped[i] = probs[i] * keep(i);
}`;

/**
 * {@linkcode dropWeights} on the device: `dropped` = `probs`·mask over [B·H, T, T], the
 * mask drawn by hashing `(mask.key, mask.step, index)`; masked-out (causal) weights are 0
 * in `probs` already, so they stay 0.
 */
export function gpuDropWeights(
  ctx: GpuContext,
  owner: object,
  key: string,
  probs: GpuTensor, // [B·H, T, T]
  dropped: GpuTensor, // [B·H, T, T]
  mask: GpuDropoutMask,
): void {
  const count = probs.size;
  const words = [count, mask.key, mask.step, f32Bits(mask.rate), f32Bits(1 / (1 - mask.rate))];
  ctx.run(
    owner,
    key,
    kernel("MultiHeadAttention dropout", DROP),
    [probs, dropped],
    words,
    gridFor(count),
  );
}

// dscores[i, j] = scale·p[i, j]·(g[i, j] − Σ_l p[i, l]·g[i, l]), g = dprobs·mask, over
// j ≤ i when causal; 0 beyond. One invocation per row, in place over g.
const SOFTMAX_BACKWARD = (dropout: boolean) => /* wgsl */ `
struct P { rows: u32, T: u32, scale: f32, causal: u32, key: u32, step: u32, rate: f32,
  keepScale: f32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
${dropout ? KEEP : ""}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex(64)}
  if (i >= p.rows) { return; }
  let row = i * p.T;
  let end = select(p.T, i % p.T + 1u, p.causal != 0u);
  var total = 0.0;
  for (var j = 0u; j < end; j++) {
    ${dropout ? "g[row + j] *= keep(row + j);" : ""}
    total += probs[row + j] * g[row + j];
  }
  for (var j = 0u; j < end; j++) {
    g[row + j] = p.scale * probs[row + j] * (g[row + j] - total);
  }
  for (var j = end; j < p.T; j++) { g[row + j] = 0.0; }
}`;

/**
 * {@linkcode softmaxRowsBackward} on the device, in place over `dprobs` [B·H, T, T]:
 * d(loss)/d(probabilities, after dropout) → d(loss)/d(scores), through the forward's
 * dropout `mask` when one was applied.
 */
export function gpuSoftmaxRowsBackward(
  ctx: GpuContext,
  owner: object,
  key: string,
  probs: GpuTensor, // [B·H, T, T], before dropout
  dprobs: GpuTensor, // [B·H, T, T]
  rows: number,
  T: number,
  scale: number,
  causal: boolean,
  mask?: GpuDropoutMask,
): void {
  const words = [
    rows,
    T,
    f32Bits(scale),
    causal ? 1 : 0,
    mask?.key ?? 0,
    mask?.step ?? 0,
    f32Bits(mask?.rate ?? 0),
    f32Bits(mask ? 1 / (1 - mask.rate) : 1),
  ];
  const code = SOFTMAX_BACKWARD(mask !== undefined);
  const label = "MultiHeadAttention softmax backward";
  ctx.run(owner, key, kernel(label, code), [probs, dprobs], words, gridFor(rows, 64));
}
