// Winograd's F(2×2, 3×3) convolution for Conv2D's 3×3, stride-1, dilation-1 layers: each
// 2×2 block of outputs (a tile) is computed from the 4×4 block of inputs under it with 16
// multiplications per (output, input) channel pair instead of 36. The kernels are
// transformed once (U = G·g·Gᵀ, [16, O, C]), every input tile once (V = Bᵀ·d·B, [16, C, T]
// for T tiles), then for each of the 16 positions ξ one product M[ξ] = U[ξ]·V[ξ] on the
// backend (its worker pool splits each product by output tiles, every element summed over
// the whole reduction by the same kernel: the same bits on any thread count), and each
// output tile is Aᵀ·m·A. The transforms here are JavaScript loops on the calling thread; they
// compute in float64 and round once as they store. A backend with `winogradInputs` and
// `winogradOutputs` (the wasm backend, float32, where the arrays lie resident in its shared
// memory) runs them itself as SIMD kernels on its pool instead, rounding at each operation
// (each plane by one task: the same bits on any thread count). A backend with
// `winogradConvolution` (the wasm backend, float32) takes the whole convolution instead: a
// pool job whose tasks take a few samples at a time through the transforms and the 16
// products in their thread's cache (backends/_winograd_tasks.ts); a chunk's V and M went
// through memory, and its 16 products were 16 jobs. A backend may decline it and size the
// chunks for its own products instead (`winogradChunkElements`: the blas backend on one
// thread, whose OpenBLAS products beat the wasm kernels'), the weights' gradient included
// (dU[ξ] = Σ dM[ξ]·V[ξ]ᵀ over the chunks, with `winogradGradOutputs`). Private to Conv2D.
//
// The input gradient is the same kind of convolution: dvalues [N, O, OH, OW] with the kernel
// turned by 180° and its channels swapped ([C, O, 3, 3]), zeros 2 − p on each side (a
// negative count cuts rows or columns), into [N, C, H, W].
//
// Dimension letters: N samples, C channels in, O channels out, T tiles of a chunk.
import type { Backend, ConvGeometry } from "../core/backend.ts";
import type { DType, FloatArray } from "../core/tensor.ts";
import { Scratch } from "../core/_scratch.ts";
import { Views, type Window2D } from "./_im2col.ts";
import type { WinogradTransforms } from "../backends/_conv_tasks.ts";
import type { WinogradConvShape } from "../backends/_winograd_tasks.ts";

/** Whether `window` is one Winograd F(2×2, 3×3) computes: 3×3, stride 1, dilation 1. */
export function isWinogradWindow(window: Window2D): boolean {
  return window.kernelH === 3 && window.kernelW === 3 && window.strideH === 1 &&
    window.strideW === 1 && window.dilationH === 1 && window.dilationW === 1;
}

/** Work (transformed planes) per chunk of samples: at most this many elements of V or M. */
export const WINOGRAD_CHUNK_ELEMENTS: number = 1 << 22;

/**
 * The transformed kernels: `u[ξ, o, c] = (G·w[o, c]·Gᵀ)[ξ]` for `w` [O, C, 3, 3]; with
 * `gradient`, the input gradient's kernels `u[ξ, c, o] = (G·rot180(w[o, c])·Gᵀ)[ξ]`.
 * G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]].
 */
export function winogradKernels(
  w: FloatArray, // [O, C, 3, 3]
  out: number,
  channels: number,
  u: FloatArray, // [16, O, C], or with `gradient` [16, C, O]
  gradient: boolean,
): void {
  const plane = out * channels;
  const g = new Float64Array(9), r = new Float64Array(12);
  for (let o = 0; o < out; o++) {
    for (let c = 0; c < channels; c++) {
      const from = (o * channels + c) * 9;
      for (let k = 0; k < 9; k++) g[k] = w[from + (gradient ? 8 - k : k)];
      // r = G·g [4, 3]
      for (let j = 0; j < 3; j++) {
        const g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
        r[j] = g0;
        r[3 + j] = (g0 + g1 + g2) * 0.5;
        r[6 + j] = (g0 - g1 + g2) * 0.5;
        r[9 + j] = g2;
      }
      const at = gradient ? c * out + o : o * channels + c;
      // u = r·Gᵀ [4, 4]
      for (let i = 0; i < 4; i++) {
        const r0 = r[3 * i], r1 = r[3 * i + 1], r2 = r[3 * i + 2];
        u[(4 * i) * plane + at] = r0;
        u[(4 * i + 1) * plane + at] = (r0 + r1 + r2) * 0.5;
        u[(4 * i + 2) * plane + at] = (r0 - r1 + r2) * 0.5;
        u[(4 * i + 3) * plane + at] = r2;
      }
    }
  }
}

/**
 * The input tiles of samples [first, first + count): `v[ξ, c, t] = (Bᵀ·d·B)[ξ]` with d the
 * 4×4 block of x[first + s, c] whose top-left corner is (2·ty − top, 2·tx − left), zeros
 * outside the image, t = (s·tilesH + ty)·tilesW + tx. Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0],
 * [0, −1, 1, 0], [0, 1, 0, −1]].
 */
export function winogradInputs(
  x: FloatArray, // [N, C, H, W]
  first: number,
  count: number,
  channels: number,
  height: number,
  width: number,
  top: number,
  left: number,
  tilesH: number,
  tilesW: number,
  v: FloatArray, // [16, C, count·tilesH·tilesW]
): void {
  const tiles = count * tilesH * tilesW, plane = channels * tiles;
  // Each image plane is first copied into `padded`, its zeros around it, so that every tile
  // reads its 4×4 block without bounds checks.
  const paddedW = 2 * tilesW + 2, paddedH = 2 * tilesH + 2;
  const padded = new Float64Array(paddedW * paddedH);
  for (let s = 0; s < count; s++) {
    for (let c = 0; c < channels; c++) {
      const image = ((first + s) * channels + c) * height * width;
      for (let r = 0; r < paddedH; r++) {
        const row = r - top, to = r * paddedW;
        if (row < 0 || row >= height) {
          padded.fill(0, to, to + paddedW);
          continue;
        }
        const from = image + row * width;
        for (let q = 0; q < paddedW; q++) {
          const col = q - left;
          padded[to + q] = col >= 0 && col < width ? x[from + col] : 0;
        }
      }
      let t = c * tiles + s * tilesH * tilesW;
      for (let ty = 0; ty < tilesH; ty++) {
        for (let tx = 0; tx < tilesW; tx++, t++) {
          let at = 2 * ty * paddedW + 2 * tx;
          const d00 = padded[at], d01 = padded[at + 1], d02 = padded[at + 2];
          const d03 = padded[at + 3];
          at += paddedW;
          const d10 = padded[at], d11 = padded[at + 1], d12 = padded[at + 2];
          const d13 = padded[at + 3];
          at += paddedW;
          const d20 = padded[at], d21 = padded[at + 1], d22 = padded[at + 2];
          const d23 = padded[at + 3];
          at += paddedW;
          const d30 = padded[at], d31 = padded[at + 1], d32 = padded[at + 2];
          const d33 = padded[at + 3];
          // Bᵀ·d, a column at a time
          const a00 = d00 - d20, a01 = d01 - d21, a02 = d02 - d22, a03 = d03 - d23;
          const a10 = d10 + d20, a11 = d11 + d21, a12 = d12 + d22, a13 = d13 + d23;
          const a20 = d20 - d10, a21 = d21 - d11, a22 = d22 - d12, a23 = d23 - d13;
          const a30 = d10 - d30, a31 = d11 - d31, a32 = d12 - d32, a33 = d13 - d33;
          // (Bᵀ·d)·B, a row at a time
          v[t] = a00 - a02;
          v[plane + t] = a01 + a02;
          v[2 * plane + t] = a02 - a01;
          v[3 * plane + t] = a01 - a03;
          v[4 * plane + t] = a10 - a12;
          v[5 * plane + t] = a11 + a12;
          v[6 * plane + t] = a12 - a11;
          v[7 * plane + t] = a11 - a13;
          v[8 * plane + t] = a20 - a22;
          v[9 * plane + t] = a21 + a22;
          v[10 * plane + t] = a22 - a21;
          v[11 * plane + t] = a21 - a23;
          v[12 * plane + t] = a30 - a32;
          v[13 * plane + t] = a31 + a32;
          v[14 * plane + t] = a32 - a31;
          v[15 * plane + t] = a31 - a33;
        }
      }
    }
  }
}

/**
 * The output tiles: `y[first + s, o, 2·ty + i, 2·tx + j] = (Aᵀ·m[·, o, t]·A)[i, j] + bias[o]`
 * where inside [outH, outW], Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]: every output written once.
 */
export function winogradOutputs(
  m: FloatArray, // [16, O, count·tilesH·tilesW]
  first: number,
  count: number,
  out: number,
  outH: number,
  outW: number,
  tilesH: number,
  tilesW: number,
  y: FloatArray, // [N, O, outH, outW]
  bias?: FloatArray, // [O]
): void {
  const tiles = count * tilesH * tilesW, plane = out * tiles;
  for (let s = 0; s < count; s++) {
    for (let o = 0; o < out; o++) {
      const b = bias ? bias[o] : 0;
      const image = ((first + s) * out + o) * outH * outW;
      let t = o * tiles + s * tilesH * tilesW;
      for (let ty = 0; ty < tilesH; ty++) {
        const row = 2 * ty, lastRow = row + 1 < outH;
        for (let tx = 0; tx < tilesW; tx++, t++) {
          const col = 2 * tx;
          const m00 = m[t], m01 = m[plane + t], m02 = m[2 * plane + t], m03 = m[3 * plane + t];
          const m10 = m[4 * plane + t], m11 = m[5 * plane + t];
          const m12 = m[6 * plane + t], m13 = m[7 * plane + t];
          const m20 = m[8 * plane + t], m21 = m[9 * plane + t];
          const m22 = m[10 * plane + t], m23 = m[11 * plane + t];
          const m30 = m[12 * plane + t], m31 = m[13 * plane + t];
          const m32 = m[14 * plane + t], m33 = m[15 * plane + t];
          // Aᵀ·m, a column at a time, then ·A a row at a time
          const a00 = m00 + m10 + m20, a01 = m01 + m11 + m21;
          const a02 = m02 + m12 + m22, a03 = m03 + m13 + m23;
          const a10 = m10 - m20 - m30, a11 = m11 - m21 - m31;
          const a12 = m12 - m22 - m32, a13 = m13 - m23 - m33;
          const at = image + row * outW + col, lastCol = col + 1 < outW;
          y[at] = a00 + a01 + a02 + b;
          if (lastCol) y[at + 1] = a01 - a02 - a03 + b;
          if (lastRow) {
            y[at + outW] = a10 + a11 + a12 + b;
            if (lastCol) y[at + outW + 1] = a11 - a12 - a13 + b;
          }
        }
      }
    }
  }
}

/**
 * The kernels' gradient from its Winograd-domain sums: `dw[o, c] += Gᵀ·du[·, o, c]·G` for
 * du [16, O, C] (see `WinogradTransforms.winogradWeights`), in float64, rounded once.
 */
export function winogradWeightGradient(
  du: FloatArray, // [16, O, C]
  out: number,
  channels: number,
  dw: FloatArray, // [O, C, 3, 3]
): void {
  const plane = out * channels;
  const t = new Float64Array(12);
  for (let at = 0; at < plane; at++) {
    // t = Gᵀ·D [3, 4], a column at a time
    for (let b = 0; b < 4; b++) {
      const d0 = du[b * plane + at], d1 = du[(4 + b) * plane + at];
      const d2 = du[(8 + b) * plane + at], d3 = du[(12 + b) * plane + at];
      t[b] = d0 + 0.5 * (d1 + d2);
      t[4 + b] = 0.5 * (d1 - d2);
      t[8 + b] = 0.5 * (d1 + d2) + d3;
    }
    // (Gᵀ·D)·G [3, 3], a row at a time
    const to = at * 9;
    for (let i = 0; i < 3; i++) {
      const t0 = t[4 * i], t1 = t[4 * i + 1], t2 = t[4 * i + 2], t3 = t[4 * i + 3];
      dw[to + 3 * i] += t0 + 0.5 * (t1 + t2);
      dw[to + 3 * i + 1] += 0.5 * (t1 - t2);
      dw[to + 3 * i + 2] += 0.5 * (t1 + t2) + t3;
    }
  }
}

/**
 * The Winograd convolution of a layer's geometry: its forward pass, or with `gradient` its
 * input gradient (dvalues [N, O, OH, OW] into [N, C, H, W], zeros 2 − p on each side).
 */
export function winogradShape(g: ConvGeometry, gradient = false): WinogradConvShape {
  const { batch, channels, height, width, outChannels: out, outH, outW } = g;
  return gradient
    ? {
      batch,
      channels: out,
      height: outH,
      width: outW,
      out: channels,
      outH: height,
      outW: width,
      top: 2 - g.padTop,
      left: 2 - g.padLeft,
    }
    : { batch, channels, height, width, out, outH, outW, top: g.padTop, left: g.padLeft };
}

// The backend's input transform of samples [first, first + count) of x into v; false where it
// has none or declines.
function backendInputs(
  fast: Partial<WinogradTransforms>,
  x: FloatArray, // [N, C, H, W]
  shape: WinogradConvShape,
  first: number,
  count: number,
  v: FloatArray, // [16, C, count·tilesH·tilesW]
): boolean {
  const { channels, height, width, outH, outW, top, left } = shape;
  const [tilesH, tilesW] = [(outH + 1) >> 1, (outW + 1) >> 1];
  return fast.winogradInputs?.(
    x,
    first,
    count,
    channels,
    height,
    width,
    top,
    left,
    tilesH,
    tilesW,
    v,
  ) ??
    false;
}

// Samples per chunk: as many as keep its V and M ([16, C or O, tiles]) within `limit`
// elements, at least one.
function chunkSamples(shape: WinogradConvShape, limit: number): number {
  const tiles = ((shape.outH + 1) >> 1) * ((shape.outW + 1) >> 1);
  const widest = 16 * Math.max(shape.channels, shape.out) * tiles;
  return Math.max(1, Math.min(shape.batch, Math.floor(limit / widest)));
}

/** A Winograd convolution's reusable buffers (transformed kernels, tiles and products). */
export class WinogradBuffers {
  #u = new Scratch(); // [16, O, C]
  #du = new Scratch(); // [16, O, C]
  #v = new Scratch(); // [16, C, T]
  #m = new Scratch(); // [16, O, T]
  #uViews = new Views();
  #vViews = new Views();
  #mViews = new Views();
  #ones = new Scratch(); // [tiles of a chunk]
  #onesViews = new Views();
  #biasSums = new Scratch(); // [O]

  /**
   * y [N, out, outH, outW] = the convolution of x [N, channels, H, W] whose transformed
   * kernels {@linkcode winogradKernels} wrote into `kernels(u)` (called with a buffer of
   * [16, out, channels]), + bias[out]: the backend's whole convolution where it has one,
   * else chunks of samples, 16 backend products each.
   */
  run(
    backend: Backend,
    dtype: DType,
    x: FloatArray,
    kernels: (u: FloatArray) => void,
    y: FloatArray,
    shape: WinogradConvShape,
    bias?: FloatArray,
  ): void {
    const { batch, channels, height, width, out, outH, outW, top, left } = shape;
    const tilesH = (outH + 1) >> 1, tilesW = (outW + 1) >> 1, perSample = tilesH * tilesW;
    const u = this.#u.get(dtype, [16, out, channels]).data;
    kernels(u);
    const fast = backend as Partial<WinogradTransforms>;
    if (fast.winogradConvolution?.(x, u, y, shape, bias)) return;
    const chunk = chunkSamples(shape, fast.winogradChunkElements ?? WINOGRAD_CHUNK_ELEMENTS);
    for (let first = 0; first < batch; first += chunk) {
      const count = Math.min(chunk, batch - first), tiles = count * perSample;
      const v = this.#v.get(dtype, [16, channels, tiles], backend).data;
      const m = this.#m.get(dtype, [16, out, tiles], backend).data;
      if (!backendInputs(fast, x, shape, first, count, v)) {
        winogradInputs(x, first, count, channels, height, width, top, left, tilesH, tilesW, v);
      }
      for (let xi = 0; xi < 16; xi++) {
        backend.matmul(
          this.#uViews.get(u, xi * out * channels, out * channels),
          this.#vViews.get(v, xi * channels * tiles, channels * tiles),
          this.#mViews.get(m, xi * out * tiles, out * tiles),
          out,
          channels,
          tiles,
        );
      }
      if (!fast.winogradOutputs?.(m, first, count, out, outH, outW, tilesH, tilesW, y, bias)) {
        winogradOutputs(m, first, count, out, outH, outW, tilesH, tilesW, y, bias);
      }
    }
  }

  /**
   * The weights' gradient of the convolution {@linkcode WinogradBuffers.run} computed:
   * `dw += dvalues ⋆ x` by Winograd's algorithm, and `dbias += Σ dvalues` per channel, when
   * the backend has it (`winogradWeights`); false (nothing done) otherwise.
   */
  weights(
    backend: Backend,
    x: FloatArray, // [N, C, H, W]
    dvalues: FloatArray, // [N, O, OH, OW]
    dw: FloatArray, // [O, C, 3, 3]
    dbias: FloatArray | undefined, // [O]
    shape: WinogradConvShape,
  ): boolean {
    const fast = backend as Partial<WinogradTransforms>;
    if (!fast.winogradWeights) return false;
    const du = this.#du.get(dw instanceof Float64Array ? "float64" : "float32", [
      16,
      shape.out,
      shape.channels,
    ]).data;
    const summed = fast.winogradWeights(x, dvalues, du, dbias, shape) ||
      this.#weightsByChunks(backend, x, dvalues, du, dbias, shape);
    if (!summed) return false;
    winogradWeightGradient(du, shape.out, shape.channels, dw);
    return true;
  }

  // du [16, O, C] = Σ over the chunks of dM[ξ]·V[ξ]ᵀ, a backend product per position (the
  // blas backend's OpenBLAS), with the backend's transforms: V = Bᵀ·x·B and dM = A·dy·Aᵀ.
  // Only where the backend sizes chunks for its products and has both transforms; false
  // (du partly written, nothing else) when a transform declines.
  // dbias[o] += Σ dvalues[·, o] is Σ_t dM[5, o, t]: (A·dy·Aᵀ)[1, 1] sums the tile's 2×2 block.
  #weightsByChunks(
    backend: Backend,
    x: FloatArray, // [N, C, H, W]
    dvalues: FloatArray, // [N, O, OH, OW]
    du: FloatArray, // [16, O, C]
    dbias: FloatArray | undefined, // [O]
    shape: WinogradConvShape,
  ): boolean {
    const fast = backend as Partial<WinogradTransforms>;
    const limit = fast.winogradChunkElements;
    if (!limit || !fast.winogradGradOutputs || !fast.winogradInputs) return false;
    const { batch, channels, out, outH, outW } = shape;
    const tilesH = (outH + 1) >> 1, tilesW = (outW + 1) >> 1, perSample = tilesH * tilesW;
    const chunk = chunkSamples(shape, limit);
    const dtype = x instanceof Float64Array ? "float64" : "float32";
    // The bias sums of every chunk, added up by a product with ones (to dbias at the end).
    const sums = dbias ? this.#biasSums.get(dtype, [out]).data : null;
    const ones = dbias ? this.#ones.get(dtype, [chunk * perSample]).data.fill(1) : null;
    // The chunks are forward's (the same limit and shape), so v and dm are its buffers: no
    // more memory, and no third shape to evict one of the two the scratch keeps.
    for (let first = 0; first < batch; first += chunk) {
      const count = Math.min(chunk, batch - first), tiles = count * perSample;
      const v = this.#v.get(dtype, [16, channels, tiles], backend).data;
      const dm = this.#m.get(dtype, [16, out, tiles], backend).data;
      const transformed = backendInputs(fast, x, shape, first, count, v) &&
        fast.winogradGradOutputs(dvalues, first, count, out, outH, outW, tilesH, tilesW, dm);
      if (!transformed) return false;
      for (let xi = 0; xi < 16; xi++) {
        backend.matmulTransB(
          this.#mViews.get(dm, xi * out * tiles, out * tiles),
          this.#vViews.get(v, xi * channels * tiles, channels * tiles),
          this.#uViews.get(du, xi * out * channels, out * channels),
          out,
          channels,
          tiles,
          first > 0,
        );
      }
      if (sums) {
        const plane = this.#mViews.get(dm, 5 * out * tiles, out * tiles);
        const column = this.#onesViews.get(ones!, 0, tiles);
        backend.matmul(plane, column, sums, out, tiles, 1, first > 0);
      }
    }
    for (let o = 0; sums && o < out; o++) dbias![o] += sums[o];
    return true;
  }
}
