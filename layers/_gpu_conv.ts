// The GPU kernels of Conv2D and what the 2-D layers share on the device: the convolution as an
// implicit GEMM (three products that read the images and the kernels with index math, no
// im2col buffer), the naive direct convolution kept as the tests' reference, per-channel sums
// and the shape check of a device image batch. Private to the layers.
//
// Dimension letters: N samples, C input channels, O output channels, H×W input, KH×KW kernel,
// OH×OW output, P = OH·OW output positions, T = KH·KW taps.
//
// The three products, each `out[m, n] = Σ_k A[m, k]·B[k, n]` with A and B read in place:
//   forward   m = O, n = N·P,   k = C·T   A = W[o, (c, i, j)]  B = x at tap (c, i, j) of (n, p)
//   dweights  m = O, n = C·T,   k = N·P   A = dvalues[n, o, p] B = x at tap (c, i, j) of (n, p)
//   dinputs   m = C, n = N·H·W, k = O·T   A = W[o, c, i, j]     B = dvalues[n, o, oh, ow] of the
//             output position whose tap (i, j) reads pixel (ih, iw), 0 when none does (gather)
import { f32Bits, flatIndex, type GpuContext, type GpuTensor, gridFor } from "../core/gpu.ts";
import type { ConvGeometry, Window2D } from "../core/backend.ts";
import { formatShape } from "../core/tensor.ts";
import { kernel } from "../backends/webgpu_ops.ts";
import { outputSize } from "./_im2col.ts";
import { CHANNEL_AT, workgroupReduce } from "./_gpu_reduce.ts";

export type { ConvGeometry };

/**
 * Checks that a device tensor is a float32 `[N, C, H, W]` batch (of `channels` channels when
 * given) that `window` fits in, and returns `[N, C, H, W, OH, OW]`.
 *
 * @throws {TypeError} naming `where` for another rank, dtype or channel count, or an input
 * smaller than the (dilated) kernel.
 */
export function gpuImages(
  inputs: GpuTensor,
  where: string,
  window: Window2D,
  channels?: number,
): [number, number, number, number, number, number] {
  const shape = inputs.shape;
  if (shape.length !== 4) {
    throw new TypeError(
      `${where}: inputs must be 4-D [batch, channels, height, width], got shape ${
        formatShape(shape)
      }`,
    );
  }
  if (inputs.dtype !== "float32") {
    throw new TypeError(`${where}: inputs must be float32 on the device, got ${inputs.dtype}`);
  }
  const [n, c, h, w] = shape;
  if (channels !== undefined && c !== channels) {
    throw new TypeError(
      `${where}: inputs have ${c} channels, expected ${channels} (inputs shape ${
        formatShape(shape)
      })`,
    );
  }
  const [oh, ow] = outputSize(window, h, w);
  if (n === 0 || oh <= 0 || ow <= 0) {
    throw new TypeError(
      `${where}: the kernel ${window.kernelH}×${window.kernelW} does not fit the inputs of shape ${
        formatShape(shape)
      } (padding ${window.padTop}×${window.padLeft}, dilation ${window.dilationH}×${window.dilationW})`,
    );
  }
  return [n, c, h, w, oh, ow];
}

/** A TypeError naming `where` unless `dvalues` is float32 and shaped `expected`. */
export function checkGpuGradient(
  dvalues: GpuTensor,
  expected: readonly number[],
  where: string,
): void {
  const shape = dvalues.shape;
  if (
    dvalues.dtype !== "float32" || shape.length !== expected.length ||
    shape.some((d, i) => d !== expected[i])
  ) {
    throw new TypeError(
      `${where}: dvalues is ${dvalues.dtype} ${formatShape(shape)}, expected float32 ${
        formatShape(expected)
      } like the last gpuForward's outputs`,
    );
  }
}

// The uniforms every convolution kernel here reads: the geometry, then the product's sizes.
const GEOMETRY = /* wgsl */ `
struct P {
  batch: u32, channels: u32, height: u32, width: u32,
  outChannels: u32, kernelH: u32, kernelW: u32, strideH: u32,
  strideW: u32, dilationH: u32, dilationW: u32, padTop: u32,
  padLeft: u32, outH: u32, outW: u32, m: u32,
  n: u32, k: u32, kChunk: u32,
};
@group(0) @binding(0) var<uniform> p: P;`;

function words(g: ConvGeometry, m: number, n: number, k: number, kChunk: number): number[] {
  return [
    g.batch,
    g.channels,
    g.height,
    g.width,
    g.outChannels,
    g.kernelH,
    g.kernelW,
    g.strideH,
    g.strideW,
    g.dilationH,
    g.dilationW,
    g.padTop,
    g.padLeft,
    g.outH,
    g.outW,
    m,
    n,
    k,
    kChunk,
  ];
}

// x at tap kk = (c, i, j) of output column col = (n, oh, ow); 0 in the padding.
const TAP = /* wgsl */ `
fn tap(kk: u32, col: u32) -> f32 {
  let taps = p.kernelH * p.kernelW;
  let c = kk / taps;
  let r = kk - c * taps;
  let i = r / p.kernelW;
  let j = r - i * p.kernelW;
  let positions = p.outH * p.outW;
  let n = col / positions;
  let q = col - n * positions;
  let oh = q / p.outW;
  let ow = q - oh * p.outW;
  let ih = i32(oh * p.strideH + i * p.dilationH) - i32(p.padTop);
  let iw = i32(ow * p.strideW + j * p.dilationW) - i32(p.padLeft);
  if (ih < 0 || iw < 0 || ih >= i32(p.height) || iw >= i32(p.width)) { return 0.0; }
  return x[((n * p.channels + c) * p.height + u32(ih)) * p.width + u32(iw)];
}`;

// How one product reads its operands and writes its result; `aKFast`/`bKFast`: whether
// consecutive k are adjacent in memory (then the tile loads walk k fastest).
interface Product {
  bindings: string;
  functions: string;
  aKFast: boolean;
  bKFast: boolean;
}

const FORWARD = (bias: boolean): Product => ({
  bindings: /* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
${bias ? "@group(0) @binding(3) var<storage, read> bias: array<f32>;" : ""}
@group(0) @binding(${bias ? 4 : 3}) var<storage, read_write> out: array<f32>;`,
  functions: /* wgsl */ `
${TAP}
fn loadA(row: u32, kk: u32) -> f32 { return w[row * p.k + kk]; }
fn loadB(kk: u32, col: u32) -> f32 { return tap(kk, col); }
fn store(row: u32, col: u32, split: u32, value: f32) {
  let positions = p.outH * p.outW;
  let n = col / positions;
  out[(n * p.outChannels + row) * positions + col - n * positions] = value${
    bias ? " + bias[row]" : ""
  };
}`,
  aKFast: true,
  bKFast: false,
});

const WEIGHT_GRADIENT = (partial: boolean): Product => ({
  bindings: /* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dv: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;`,
  functions: /* wgsl */ `
${TAP}
fn loadA(row: u32, kk: u32) -> f32 {
  let positions = p.outH * p.outW;
  let n = kk / positions;
  return dv[(n * p.outChannels + row) * positions + kk - n * positions];
}
fn loadB(kk: u32, col: u32) -> f32 { return tap(col, kk); }
fn store(row: u32, col: u32, split: u32, value: f32) {
  ${partial ? "out[(split * p.m + row) * p.n + col] = value;" : "out[row * p.n + col] += value;"}
}`,
  aKFast: true,
  bKFast: true,
});

const INPUT_GRADIENT: Product = {
  bindings: /* wgsl */ `
@group(0) @binding(1) var<storage, read> dv: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;`,
  functions: /* wgsl */ `
fn loadA(row: u32, kk: u32) -> f32 {
  let taps = p.kernelH * p.kernelW;
  let o = kk / taps;
  return w[(o * p.channels + row) * taps + kk - o * taps];
}
// dvalues at the output position whose tap (i, j) of kk = (o, i, j) reads the pixel col =
// (n, ih, iw): oh·SH + i·DH − PT = ih, and likewise for the width; 0 when there is none.
fn loadB(kk: u32, col: u32) -> f32 {
  let taps = p.kernelH * p.kernelW;
  let o = kk / taps;
  let r = kk - o * taps;
  let i = r / p.kernelW;
  let j = r - i * p.kernelW;
  let plane = p.height * p.width;
  let n = col / plane;
  let q = col - n * plane;
  let ih = q / p.width;
  let iw = q - ih * p.width;
  let th = i32(ih + p.padTop) - i32(i * p.dilationH);
  let tw = i32(iw + p.padLeft) - i32(j * p.dilationW);
  if (th < 0 || tw < 0) { return 0.0; }
  let oh = u32(th) / p.strideH;
  let ow = u32(tw) / p.strideW;
  if (oh * p.strideH != u32(th) || ow * p.strideW != u32(tw)) { return 0.0; }
  if (oh >= p.outH || ow >= p.outW) { return 0.0; }
  return dv[((n * p.outChannels + o) * p.outH + oh) * p.outW + ow];
}
fn store(row: u32, col: u32, split: u32, value: f32) {
  let plane = p.height * p.width;
  let n = col / plane;
  out[(n * p.channels + row) * plane + col - n * plane] = value;
}`,
  aKFast: true,
  bKFast: false,
};

// A workgroup computes a BM×BN tile of the product with 256 invocations, each TM×4 outputs
// held in registers (rows ly + r·WY, columns lx + c·WX: neighbours write neighbours), stepping
// through k BK at a time: the BM×BK slice of A and the BK×BN slice of B go through workgroup
// memory. Few rows (O or C small) take a flat tile, so that little of it idles.
interface Tiling {
  bm: number;
  bn: number;
  bk: number;
  tm: number;
}
const TILINGS: readonly Tiling[] = [
  { bm: 16, bn: 256, bk: 8, tm: 4 }, // m ≤ 16: 2176 floats of workgroup memory
  { bm: 32, bn: 128, bk: 16, tm: 4 }, // m ≤ 32: 2560
  { bm: 64, bn: 64, bk: 16, tm: 4 }, // 2048
];

function tilingFor(m: number): Tiling {
  return m <= 16 ? TILINGS[0] : m <= 32 ? TILINGS[1] : TILINGS[2];
}

// out[m, n] = Σ_{k in this split} A[m, k]·B[k, n], through `store`; workgroups (x: column
// tiles, looped when more than dispatched; y: row tiles; z: splits of k, kChunk each).
function gemmCode(product: Product, t: Tiling): string {
  const wx = t.bn / 4, wy = t.bm / t.tm;
  const rows = Array.from({ length: t.tm }, (_, r) => r);
  const columns = [0, 1, 2, 3];
  const loadA = product.aKFast
    ? "let r = e / BK; let kk = e - r * BK;"
    : "let kk = e / BM; let r = e - kk * BM;";
  const loadB = product.bKFast
    ? "let c = e / BK; let kk = e - c * BK;"
    : "let kk = e / BN; let c = e - kk * BN;";
  return /* wgsl */ `${GEOMETRY}
${product.bindings}
${product.functions}
const BM = ${t.bm}u;
const BN = ${t.bn}u;
const BK = ${t.bk}u;
const WX = ${wx}u;
const WY = ${wy}u;
var<workgroup> tileA: array<f32, ${t.bm * t.bk}>; // [BK, BM]
var<workgroup> tileB: array<f32, ${t.bk * t.bn}>; // [BK, BN]
@compute @workgroup_size(${wx}, ${wy})
fn main(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let local = lid.y * WX + lid.x;
  let rowBase = wid.y * BM;
  let kBegin = wid.z * p.kChunk;
  let kEnd = min(p.k, kBegin + p.kChunk);
  let tilesN = (p.n + BN - 1u) / BN;
  for (var tile = wid.x; tile < tilesN; tile += groups.x) {
    let colBase = tile * BN;
    ${rows.map((r) => `var acc${r} = vec4f();`).join(" ")}
    for (var k0 = kBegin; k0 < kEnd; k0 += BK) {
      for (var e = local; e < BM * BK; e += 256u) {
        ${loadA}
        let row = rowBase + r;
        let kIndex = k0 + kk;
        var v = 0.0;
        if (row < p.m && kIndex < kEnd) { v = loadA(row, kIndex); }
        tileA[kk * BM + r] = v;
      }
      for (var e = local; e < BK * BN; e += 256u) {
        ${loadB}
        let col = colBase + c;
        let kIndex = k0 + kk;
        var v = 0.0;
        if (col < p.n && kIndex < kEnd) { v = loadB(kIndex, col); }
        tileB[kk * BN + c] = v;
      }
      workgroupBarrier();
      for (var kk = 0u; kk < BK; kk++) {
        let b = vec4f(${columns.map((c) => `tileB[kk * BN + lid.x + ${c}u * WX]`).join(", ")});
        ${rows.map((r) => `acc${r} += tileA[kk * BM + lid.y + ${r}u * WY] * b;`).join("\n        ")}
      }
      workgroupBarrier();
    }
    ${
    rows.map((r) => `
    if (rowBase + lid.y + ${r}u * WY < p.m) {
      ${
      columns.map((c) => `
      if (colBase + lid.x + ${c}u * WX < p.n) {
        store(rowBase + lid.y + ${r}u * WY, colBase + lid.x + ${c}u * WX, wid.z, acc${r}[${c}]);
      }`).join("")
    }
    }`).join("")
  }
  }
}`;
}

/** Options of the implicit products: tests may cap the column workgroups to exercise the loop. */
export interface GpuConvOptions {
  /** Column-tile workgroups dispatched at most (the kernel loops over the rest); 65535. */
  maxGroupsX?: number;
}

function dispatchGemm(
  ctx: GpuContext,
  owner: object,
  key: string,
  label: string,
  product: Product,
  g: ConvGeometry,
  tensors: readonly GpuTensor[],
  sizes: { m: number; n: number; k: number; kChunk: number; splits: number },
  options: GpuConvOptions,
): void {
  const t = tilingFor(sizes.m);
  const code = gemmCode(product, t);
  const rowTiles = Math.ceil(sizes.m / t.bm);
  if (rowTiles > 65535) {
    throw new RangeError(`${label}: ${sizes.m} channels need more than 65535 workgroups`);
  }
  const groupsX = Math.min(Math.ceil(sizes.n / t.bn), options.maxGroupsX ?? 65535);
  ctx.run(
    owner,
    key,
    kernel(label, code),
    tensors,
    words(g, sizes.m, sizes.n, sizes.k, sizes.kChunk),
    [
      groupsX,
      rowTiles,
      sizes.splits,
    ],
  );
}

/**
 * `outputs[n, o, p] = Σ_{c,i,j} W[o, c, i, j]·x[n, c, ih, iw] (+ bias[o])` on the device, as
 * one implicit product (`inputs` [N, C, H, W], `weights` [O, C, KH, KW], `outputs`
 * [N, O, OH, OW]).
 */
export function gpuConvForward(
  ctx: GpuContext,
  owner: object,
  key: string,
  g: ConvGeometry,
  inputs: GpuTensor,
  weights: GpuTensor,
  biases: GpuTensor | undefined,
  outputs: GpuTensor,
  options: GpuConvOptions = {},
): void {
  const m = g.outChannels, n = g.batch * g.outH * g.outW;
  const k = g.channels * g.kernelH * g.kernelW;
  const tensors = biases ? [inputs, weights, biases, outputs] : [inputs, weights, outputs];
  dispatchGemm(ctx, owner, key, "Conv2D.forward", FORWARD(biases !== undefined), g, tensors, {
    m,
    n,
    k,
    kChunk: k,
    splits: 1,
  }, options);
}

// dweights[i] += Σ_s partial[s, i]: the splits of a split product, added in order.
const SUM_SPLITS = /* wgsl */ `
struct P { size: u32, splits: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.size) { return; }
  var sum = 0.0;
  for (var s = 0u; s < p.splits; s++) { sum += partial[s * p.size + i]; }
  out[i] += sum;
}`;

/**
 * `dweights[o, c, i, j] += Σ_{n,p} dvalues[n, o, p]·x[n, c, ih, iw]` on the device: an implicit
 * product whose long sum (N·P) is split over workgroups when the weights are few, the splits'
 * partial sums then added in order.
 */
export function gpuConvWeightGradient(
  ctx: GpuContext,
  owner: object,
  key: string,
  g: ConvGeometry,
  inputs: GpuTensor,
  dvalues: GpuTensor,
  dweights: GpuTensor,
  options: GpuConvOptions = {},
): void {
  const m = g.outChannels, n = g.channels * g.kernelH * g.kernelW;
  const k = g.batch * g.outH * g.outW;
  const t = tilingFor(m);
  const tiles = Math.ceil(m / t.bm) * Math.ceil(n / t.bn);
  // Enough workgroups to fill a GPU (~256), each summing at least 256 terms.
  const wanted = Math.max(1, Math.min(64, Math.floor(256 / tiles), Math.ceil(k / 256)));
  const kChunk = Math.ceil(Math.ceil(k / wanted) / t.bk) * t.bk;
  const splits = Math.ceil(k / kChunk);
  if (splits === 1) {
    const tensors = [inputs, dvalues, dweights];
    dispatchGemm(ctx, owner, key, "Conv2D.backward dweights", WEIGHT_GRADIENT(false), g, tensors, {
      m,
      n,
      k,
      kChunk: k,
      splits: 1,
    }, options);
    return;
  }
  const partial = ctx.buffer(owner, `${key} partial`, [splits, m * n]);
  dispatchGemm(
    ctx,
    owner,
    key,
    "Conv2D.backward dweights (split)",
    WEIGHT_GRADIENT(true),
    g,
    [inputs, dvalues, partial],
    { m, n, k, kChunk, splits },
    options,
  );
  const size = m * n;
  ctx.run(
    owner,
    `${key} sum`,
    kernel("Conv2D.backward dweights sum", SUM_SPLITS),
    [
      partial,
      dweights,
    ],
    [size, splits],
    gridFor(size),
  );
}

/**
 * `dinputs[n, c, ih, iw] = Σ_{o,i,j} W[o, c, i, j]·dvalues[n, o, oh, ow]` over the output
 * positions whose tap (i, j) reads (ih, iw): the transposed convolution, as an implicit
 * product that gathers (each input pixel is written once).
 */
export function gpuConvInputGradient(
  ctx: GpuContext,
  owner: object,
  key: string,
  g: ConvGeometry,
  dvalues: GpuTensor,
  weights: GpuTensor,
  dinputs: GpuTensor,
  options: GpuConvOptions = {},
): void {
  const m = g.channels, n = g.batch * g.height * g.width;
  const k = g.outChannels * g.kernelH * g.kernelW;
  dispatchGemm(
    ctx,
    owner,
    key,
    "Conv2D.backward dinputs",
    INPUT_GRADIENT,
    g,
    [
      dvalues,
      weights,
      dinputs,
    ],
    { m, n, k, kChunk: k, splits: 1 },
    options,
  );
}

// The naive direct convolution, one invocation per element written: the tests' reference.
const NAIVE_FORWARD = (bias: boolean) =>
  /* wgsl */ `${GEOMETRY}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
${bias ? "@group(0) @binding(3) var<storage, read> bias: array<f32>;" : ""}
@group(0) @binding(${bias ? 4 : 3}) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.batch * p.outChannels * p.outH * p.outW) { return; }
  let ow = i % p.outW;
  let oh = (i / p.outW) % p.outH;
  let o = (i / (p.outW * p.outH)) % p.outChannels;
  let n = i / (p.outW * p.outH * p.outChannels);
  var sum = 0.0;
  for (var c = 0u; c < p.channels; c++) {
    for (var ki = 0u; ki < p.kernelH; ki++) {
      for (var kj = 0u; kj < p.kernelW; kj++) {
        let ih = i32(oh * p.strideH + ki * p.dilationH) - i32(p.padTop);
        let iw = i32(ow * p.strideW + kj * p.dilationW) - i32(p.padLeft);
        if (ih >= 0 && iw >= 0 && ih < i32(p.height) && iw < i32(p.width)) {
          let xv = x[((n * p.channels + c) * p.height + u32(ih)) * p.width + u32(iw)];
          sum += w[((o * p.channels + c) * p.kernelH + ki) * p.kernelW + kj] * xv;
        }
      }
    }
  }
  out[i] = sum${bias ? " + bias[o]" : ""};
}`;

const NAIVE_WEIGHT_GRADIENT = /* wgsl */ `${GEOMETRY}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dv: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.outChannels * p.channels * p.kernelH * p.kernelW) { return; }
  let kj = i % p.kernelW;
  let ki = (i / p.kernelW) % p.kernelH;
  let c = (i / (p.kernelW * p.kernelH)) % p.channels;
  let o = i / (p.kernelW * p.kernelH * p.channels);
  var sum = 0.0;
  for (var n = 0u; n < p.batch; n++) {
    for (var oh = 0u; oh < p.outH; oh++) {
      for (var ow = 0u; ow < p.outW; ow++) {
        let ih = i32(oh * p.strideH + ki * p.dilationH) - i32(p.padTop);
        let iw = i32(ow * p.strideW + kj * p.dilationW) - i32(p.padLeft);
        if (ih >= 0 && iw >= 0 && ih < i32(p.height) && iw < i32(p.width)) {
          let xv = x[((n * p.channels + c) * p.height + u32(ih)) * p.width + u32(iw)];
          sum += dv[((n * p.outChannels + o) * p.outH + oh) * p.outW + ow] * xv;
        }
      }
    }
  }
  out[i] += sum;
}`;

// Every (output position, tap) pair tried: whether it reads this pixel is tested, not solved.
const NAIVE_INPUT_GRADIENT = /* wgsl */ `${GEOMETRY}
@group(0) @binding(1) var<storage, read> dv: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.batch * p.channels * p.height * p.width) { return; }
  let iw = i32(i % p.width);
  let ih = i32((i / p.width) % p.height);
  let c = (i / (p.width * p.height)) % p.channels;
  let n = i / (p.width * p.height * p.channels);
  var sum = 0.0;
  for (var o = 0u; o < p.outChannels; o++) {
    for (var oh = 0u; oh < p.outH; oh++) {
      for (var ow = 0u; ow < p.outW; ow++) {
        for (var ki = 0u; ki < p.kernelH; ki++) {
          for (var kj = 0u; kj < p.kernelW; kj++) {
            let th = i32(oh * p.strideH + ki * p.dilationH) - i32(p.padTop);
            let tw = i32(ow * p.strideW + kj * p.dilationW) - i32(p.padLeft);
            if (th == ih && tw == iw) {
              let wv = w[((o * p.channels + c) * p.kernelH + ki) * p.kernelW + kj];
              sum += wv * dv[((n * p.outChannels + o) * p.outH + oh) * p.outW + ow];
            }
          }
        }
      }
    }
  }
  out[i] = sum;
}`;

// One invocation per element of `out`, the last of `tensors`: a naive kernel's dispatch.
function runNaive(
  ctx: GpuContext,
  owner: object,
  key: string,
  label: string,
  code: string,
  g: ConvGeometry,
  tensors: readonly GpuTensor[],
): void {
  const out = tensors[tensors.length - 1];
  ctx.run(owner, key, kernel(label, code), tensors, words(g, 0, 0, 0, 0), gridFor(out.size));
}

/** {@linkcode gpuConvForward} by the naive direct convolution (the tests' reference). */
export function gpuConvForwardNaive(
  ctx: GpuContext,
  owner: object,
  key: string,
  g: ConvGeometry,
  inputs: GpuTensor,
  weights: GpuTensor,
  biases: GpuTensor | undefined,
  outputs: GpuTensor,
): void {
  const tensors = biases ? [inputs, weights, biases, outputs] : [inputs, weights, outputs];
  const code = NAIVE_FORWARD(biases !== undefined);
  runNaive(ctx, owner, key, "Conv2D.forward (naive)", code, g, tensors);
}

/** {@linkcode gpuConvWeightGradient} by the naive direct convolution (the tests' reference). */
export function gpuConvWeightGradientNaive(
  ctx: GpuContext,
  owner: object,
  key: string,
  g: ConvGeometry,
  inputs: GpuTensor,
  dvalues: GpuTensor,
  dweights: GpuTensor,
): void {
  const label = "Conv2D.backward dweights (naive)";
  runNaive(ctx, owner, key, label, NAIVE_WEIGHT_GRADIENT, g, [inputs, dvalues, dweights]);
}

/** {@linkcode gpuConvInputGradient} by brute force (the tests' reference). */
export function gpuConvInputGradientNaive(
  ctx: GpuContext,
  owner: object,
  key: string,
  g: ConvGeometry,
  dvalues: GpuTensor,
  weights: GpuTensor,
  dinputs: GpuTensor,
): void {
  const label = "Conv2D.backward dinputs (naive)";
  runNaive(ctx, owner, key, label, NAIVE_INPUT_GRADIENT, g, [dvalues, weights, dinputs]);
}

// out[f] += Σ_{n,p} x[n, f, p]: a workgroup per channel, a strided sum per invocation, then
// a tree through workgroup memory.
const SUM_CHANNELS = /* wgsl */ `
struct P { batch: u32, channels: u32, positions: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${workgroupReduce(256)}
${CHANNEL_AT}
@compute @workgroup_size(256)
fn main(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let f = wid.x + wid.y * groups.x;
  if (f >= p.channels) { return; }
  var sum = 0.0;
  for (var m = lid.x; m < p.batch * p.positions; m += 256u) {
    sum += x[channelAt(f, m, p.channels, p.positions)];
  }
  let total = reduce(lid.x, sum);
  if (lid.x == 0u) { out[f] += total; }
}`;

/** `out[channels] += Σ_{n,p} x[n, channel, p]` for `x` [batch, channels, positions] (a bias gradient). */
export function gpuSumChannels(
  ctx: GpuContext,
  owner: object,
  key: string,
  x: GpuTensor,
  out: GpuTensor,
  batch: number,
  channels: number,
  positions: number,
): void {
  const label = "sum channels";
  ctx.run(
    owner,
    key,
    kernel(label, SUM_CHANNELS),
    [x, out],
    [batch, channels, positions],
    gridFor(channels, 1),
  );
}

/** The uniforms of the pooling kernels (MaxPool2D, AvgPool2D), as WGSL: `p`, at binding 0. */
export const POOL_GEOMETRY: string = /* wgsl */ `
struct P {
  planes: u32, height: u32, width: u32, outH: u32,
  outW: u32, kernelH: u32, kernelW: u32, strideH: u32,
  strideW: u32, padTop: u32, padLeft: u32, scale: f32,
};
@group(0) @binding(0) var<uniform> p: P;
// The output rows (or columns) whose window, start·stride − pad + [0, kernel), holds input
// row (column) \`at\`: [first, end).
fn covering(at: u32, pad: u32, kernel: u32, stride: u32, outputs: u32) -> vec2u {
  let last = i32(at + pad) - i32(kernel) + 1;
  let first = select(0u, (u32(max(last, 0)) + stride - 1u) / stride, last > 0);
  return vec2u(first, min((at + pad) / stride + 1u, outputs));
}
// Output i = (plane, oh, ow)'s window clipped to the image: input rows [rows.x, rows.y) and
// columns [columns.x, columns.y) of the plane that starts at \`base\`.
struct PoolWindow { base: u32, rows: vec2u, columns: vec2u };
fn windowOf(i: u32) -> PoolWindow {
  let ow = i % p.outW;
  let oh = (i / p.outW) % p.outH;
  let top = i32(oh * p.strideH) - i32(p.padTop);
  let left = i32(ow * p.strideW) - i32(p.padLeft);
  return PoolWindow(
    (i / (p.outW * p.outH)) * p.height * p.width,
    vec2u(u32(max(top, 0)), u32(min(top + i32(p.kernelH), i32(p.height)))),
    vec2u(u32(max(left, 0)), u32(min(left + i32(p.kernelW), i32(p.width)))),
  );
}
// Input i = (plane, ih, iw): its plane, and the output rows [rows.x, rows.y) and columns
// [columns.x, columns.y) whose windows hold it.
struct PoolCover { plane: u32, rows: vec2u, columns: vec2u };
fn coverOf(i: u32) -> PoolCover {
  let iw = i % p.width;
  let ih = (i / p.width) % p.height;
  return PoolCover(
    i / (p.width * p.height),
    covering(ih, p.padTop, p.kernelH, p.strideH, p.outH),
    covering(iw, p.padLeft, p.kernelW, p.strideW, p.outW),
  );
}`;

/** The words of {@linkcode POOL_GEOMETRY} for a pooling window over `planes` H×W planes. */
export function poolWords(
  window: Window2D,
  planes: number,
  height: number,
  width: number,
  outH: number,
  outW: number,
  scale = 0,
): number[] {
  return [
    planes,
    height,
    width,
    outH,
    outW,
    window.kernelH,
    window.kernelW,
    window.strideH,
    window.strideW,
    window.padTop,
    window.padLeft,
    f32Bits(scale),
  ];
}
