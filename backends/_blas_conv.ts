// The blas backend's 2-D convolution on OpenBLAS's products, in scratch that the backend
// keeps from call to call (grown when a larger convolution comes), a sample at a time so that
// its operands stay in the core's cache instead of a whole batch's columns (14 MB for W4's
// second layer) going through memory. Two lowerings:
//
// - Shifted products (stride 1, at least SHIFTED_MIN_CHANNELS input channels): the sample
//   is copied into a zero-padded image xp [C, Hp·Wp], and tap k = (i, j) of the kernel reads
//   xp shifted by s_k = i·DH·Wp + j·DW, a plain view with row stride Hp·Wp. So
//   y [O, OH·Wp] = Σ_k W_k [O, C] · shift_k(xp) [C, OH·Wp]: KH·KW products straight from the
//   image, no columns. Each output row carries (KW − 1)·DW extra columns, computed and
//   dropped (backward gives them zero gradients, so they add nothing). On several threads
//   a group of samples lies side by side in xp [C, count·Hp·Wp] (each product then spans
//   them all, Hp·Wp − OH·Wp more dropped columns between samples), so that OpenBLAS has
//   products large enough to split.
// - im2col (any other window): the sample's columns cols [D, P] (backends/_lowering.ts),
//   then y_n = W·cols.
//
// Measured on W4's two layers (batch 64, float32; a 2-core AMD EPYC shared with other work;
// the fastest of 12–25 calls, ms, forward / backward):
//   One thread. conv2 (32→64, 14×14): shifted 6.5 / 13.5 (7.3 without dx), im2col a sample
//   at a time 8.9 / 18.4. The shifted products alone take 5.5 + 6.3 + 6.0 (near the core's
//   peak); im2col's lowering costs 4.1 a pass, col2im 4.4. Shifted groups of 2 to 64 samples
//   were slower (6.7–7.5 / 13.7–15.6). im2col by groups (columns of up to 256 KB or 1 MB,
//   one product over count·P columns, then a scatter into NCHW) was no faster (8.9–9.2 /
//   18.8–19.1 against 9.2–10.2 / 18.8–19.9). conv1 (1→32, 28×28): im2col 1.2 / 2.2 without
//   dx; shifted 2.4 / 5.3 (products of depth 1); im2col groups slower (2.6–3.0 / 4.8–5.0
//   with dx against 1.1 / 4.0). From 8 input channels on the shifted products were faster
//   (8→32, 28×28: 5.0 / 10.6 against 6.4 / 13.9); at 4, even or slower (3.5 / 9.0 against
//   3.4 / 7.8).
//   Two threads, conv2: shifted a sample at a time 11.6–12.7 / 25.0–25.5 (OpenBLAS's threads
//   cost more than they give on products that small), by groups of up to 8, 32 and 64
//   samples 7.0, 6.3, 5.8–5.9 / 18.6, 16.6, 15.4 (15.4 → 13.3 with the weights' products
//   on one thread). Conv2D's own lowering (its columns kept from forward for backward) took
//   7.5 / 11.2 in the same run (ours 5.2 / 13.3), and 11.2 / 17.0 on one thread (ours 7.1 /
//   15.8).
//
// Dimension letters: N samples, C channels, H×W input height and width, KH×KW kernel,
// OH×OW output height and width, P = OH·OW output positions per channel, O output channels,
// D = C·KH·KW the depth of a column, KK = KH·KW taps, Hp×Wp the padded image.
import type { ConvGeometry } from "../core/backend.ts";
import type { FloatArray } from "../core/tensor.ts";
import { col2im, im2col } from "./_lowering.ts";

/** CBLAS's `CblasRowMajor`. */
export const ROW_MAJOR = 101;
/** CBLAS's `CblasNoTrans`. */
export const NO_TRANS = 111;
/** CBLAS's `CblasTrans`. */
export const TRANS = 112;

/** `cblas_sgemm` / `cblas_dgemm`: c[M, N] = alpha·op(a)·op(b) + beta·c, row-major here. */
export type Gemm = (
  order: number,
  transA: number,
  transB: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: FloatArray,
  lda: number,
  b: FloatArray,
  ldb: number,
  beta: number,
  c: FloatArray,
  ldc: number,
) => void;

// Stride-1 convolutions with at least this many input channels take the shifted products;
// with fewer, each product's depth (C) is too thin for OpenBLAS and im2col's columns cheap.
const SHIFTED_MIN_CHANNELS = 8;
// On several threads, the shifted products take groups of samples side by side, up to this
// many elements of padded images (or of their products' rows) a group, so that each product
// is large enough to split.
const SHIFTED_GROUP_ELEMENTS = 1 << 20;

/** The BLAS library's threads, as the convolutions need them. */
export interface BlasThreads {
  /** How many threads its products run on. */
  count(): number;
  /** Calls `run` with the products on one thread. */
  serial(run: () => void): void;
}

const ONE_THREAD: BlasThreads = { count: () => 1, serial: (run) => run() };

// The scratch arrays, by role.
const COLS = 0, DCOLS = 1, PADDED = 2, DPADDED = 3, TAPS = 4, DTAPS = 5, ROWS = 6;
const SLOTS = 7;

/**
 * Convolutions on OpenBLAS (see `Backend.conv2dForward` and `Backend.conv2dBackward`), with
 * the scratch of their operands kept and grown as larger convolutions come.
 *
 * Through im2col, the biases' gradient comes out of the weights' product: the columns get one
 * more row, of ones, so that the product's extra column is Σ_p dvalues[o, p], at the cost of
 * one more column instead of a pass over dvalues (W4's conv1: 1.2 against 2.2 ms a backward
 * pass, its product 9 columns wide). The shifted products sum dvalues as they copy them (a
 * plane of ones there made the 32 columns of W4's conv2 33, 1 ms slower).
 */
export class BlasConvolution {
  readonly #sgemm: Gemm;
  readonly #dgemm: Gemm;
  readonly #threads: BlasThreads;
  readonly #scratch32: Float32Array[] = Array.from({ length: SLOTS }, () => new Float32Array(0));
  readonly #scratch64: Float64Array[] = Array.from({ length: SLOTS }, () => new Float64Array(0));
  #sums = new Float64Array(0); // [O]: the shifted products' biases' gradient

  /** The convolutions on these two products, which run on `threads`. */
  constructor(sgemm: Gemm, dgemm: Gemm, threads: BlasThreads = ONE_THREAD) {
    this.#sgemm = sgemm;
    this.#dgemm = dgemm;
    this.#threads = threads;
  }

  /**
   * y = w·im2col(x) + bias (see `Backend.conv2dForward`); false (nothing done) for arrays of
   * mixed element types.
   */
  forward(
    x: FloatArray,
    w: FloatArray,
    bias: FloatArray | undefined,
    y: FloatArray,
    g: ConvGeometry,
  ): boolean {
    const gemm = this.#gemmFor(x, [w, y, bias]);
    if (!gemm) return false;
    if (takesShifted(g)) this.#shiftedForward(gemm, x, w, bias, y, g);
    else this.#loweredForward(gemm, x, w, bias, y, g);
    return true;
  }

  // dw += dvalues·im2col(x)ᵀ   dbias += Σ_{n,p} dvalues   dx = col2im(wᵀ·dvalues)
  /**
   * The gradients of {@linkcode BlasConvolution.forward} (see `Backend.conv2dBackward`):
   * added into dw and dbias, dx overwritten; false (nothing done) for arrays of mixed element
   * types.
   */
  backward(
    x: FloatArray,
    w: FloatArray,
    dvalues: FloatArray,
    dw: FloatArray,
    dbias: FloatArray | undefined,
    dx: FloatArray | null,
    g: ConvGeometry,
  ): boolean {
    const gemm = this.#gemmFor(x, [w, dvalues, dw, dbias, dx]);
    if (!gemm) return false;
    if (takesShifted(g)) this.#shiftedBackward(gemm, x, w, dvalues, dw, dbias, dx, g);
    else this.#loweredBackward(gemm, x, w, dvalues, dw, dbias, dx, g);
    return true;
  }

  // y_n [O, P] = bias, then += W [O, D] · cols [D, P], straight into y's NCHW sample.
  #loweredForward(
    gemm: Gemm,
    x: FloatArray,
    w: FloatArray,
    bias: FloatArray | undefined,
    y: FloatArray,
    g: ConvGeometry,
  ): void {
    const out = g.outChannels, positions = g.outH * g.outW;
    const depth = g.channels * g.kernelH * g.kernelW, sample = out * positions;
    const cols = this.#get(COLS, x, depth * positions); // [D, P]
    const beta = bias ? 1 : 0;
    for (let n = 0; n < g.batch; n++) {
      im2col(x, n, 1, g.channels, g.height, g.width, g, g.outH, g.outW, cols);
      const target = y.subarray(n * sample, (n + 1) * sample); // [O, P]
      if (bias) {
        for (let o = 0; o < out; o++) target.fill(bias[o], o * positions, (o + 1) * positions);
      }
      // deno-fmt-ignore
      gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, out, positions, depth,
        1, w, depth, cols, positions, beta, target, positions);
    }
  }

  // Per sample: [dW | dbias] [O, D + 1] += dv_n [O, P] · [cols; 1] [D + 1, P]ᵀ and, with dx,
  // dcols [D, P] = Wᵀ · dv_n, folded into the zeroed dx_n by col2im.
  #loweredBackward(
    gemm: Gemm,
    x: FloatArray,
    w: FloatArray,
    dvalues: FloatArray,
    dw: FloatArray,
    dbias: FloatArray | undefined,
    dx: FloatArray | null,
    g: ConvGeometry,
  ): void {
    const out = g.outChannels, positions = g.outH * g.outW;
    const depth = g.channels * g.kernelH * g.kernelW, sample = out * positions;
    const image = g.channels * g.height * g.width;
    const wide = dbias ? depth + 1 : depth; // rows of cols, with the ones
    const cols = this.#get(COLS, x, wide * positions); // [D (+ 1), P]
    if (dbias) cols.fill(1, depth * positions, wide * positions);
    // [O, D + 1] summed here, or straight into dw without biases.
    const sums = dbias ? this.#get(DTAPS, x, out * wide).fill(0, 0, out * wide) : dw;
    const dcols = dx ? this.#get(DCOLS, x, depth * positions) : cols; // [D, P]
    for (let n = 0; n < g.batch; n++) {
      im2col(x, n, 1, g.channels, g.height, g.width, g, g.outH, g.outW, cols);
      const dv = dvalues.subarray(n * sample, (n + 1) * sample); // [O, P]
      // deno-fmt-ignore
      gemm(ROW_MAJOR, NO_TRANS, TRANS, out, wide, positions,
        1, dv, positions, cols, positions, 1, sums, wide);
      if (!dx) continue;
      // deno-fmt-ignore
      gemm(ROW_MAJOR, TRANS, NO_TRANS, depth, positions, out,
        1, w, depth, dv, positions, 0, dcols, positions);
      dx.fill(0, n * image, (n + 1) * image);
      col2im(dcols, n, 1, g.channels, g.height, g.width, g, g.outH, g.outW, dx);
    }
    if (!dbias) return;
    for (let o = 0; o < out; o++) {
      const from = o * wide, to = o * depth;
      for (let d = 0; d < depth; d++) dw[to + d] += sums[from + d];
      dbias[o] += sums[from + depth];
    }
  }

  // Per group of samples: xp [C, count·Hp·Wp] ← their images (the padding stays zero), rows
  // [O, count·Hp·Wp] = Σ_k W_k [O, C] · shift_k(xp), then y_n[o, oh, ow] = rows[o, s·Hp·Wp +
  // oh·Wp + ow] + bias[o] for the group's sample s.
  #shiftedForward(
    gemm: Gemm,
    x: FloatArray,
    w: FloatArray,
    bias: FloatArray | undefined,
    y: FloatArray,
    g: ConvGeometry,
  ): void {
    const { outChannels: out, channels, outH, outW } = g;
    const taps = g.kernelH * g.kernelW, block = out * channels;
    const z = paddedSizes(g, this.#threads.count());
    const padded = this.#get(PADDED, x, z.length).fill(0, 0, z.length); // [C, stride] + slack
    const weights = this.#get(TAPS, x, taps * block); // [KK, O, C]
    splitTaps(w, weights, out, channels, taps);
    const rows = this.#get(ROWS, x, out * z.stride); // [O, stride]
    const shifted = z.shifts.map((s) => padded.subarray(s)); // [C, span], row stride `stride`
    const tapWeights = z.shifts.map((_, k) => weights.subarray(k * block, (k + 1) * block));
    const { width: wide, plane, stride } = z;
    for (let first = 0; first < g.batch; first += z.group) {
      const count = Math.min(z.group, g.batch - first);
      const span = (count - 1) * plane + z.columns;
      for (let s = 0; s < count; s++) pad(x, first + s, s, g, z, padded);
      for (let k = 0; k < taps; k++) {
        // deno-fmt-ignore
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, out, span, channels,
          1, tapWeights[k], channels, shifted[k], stride, k === 0 ? 0 : 1, rows, stride);
      }
      for (let s = 0; s < count; s++) {
        for (let o = 0; o < out; o++) {
          const b = bias ? bias[o] : 0;
          const to = ((first + s) * out + o) * outH * outW, from = o * stride + s * plane;
          for (let oh = 0; oh < outH; oh++) {
            const t = to + oh * outW, f = from + oh * wide;
            for (let ow = 0; ow < outW; ow++) y[t + ow] = rows[f + ow] + b;
          }
        }
      }
    }
  }

  // Per group: xp ← the images as forward, drows [O, count·Hp·Wp] ← their dvalues (zeros
  // elsewhere; the biases' gradient summed on the way), dW_k [O, C] += drows · shift_k(xp)ᵀ;
  // with dx, dxp [C, count·Hp·Wp] = 0, shift_k(dxp) += W_kᵀ · drows for every tap, and each
  // dx_n = its plane's inner H×W.
  #shiftedBackward(
    gemm: Gemm,
    x: FloatArray,
    w: FloatArray,
    dvalues: FloatArray,
    dw: FloatArray,
    dbias: FloatArray | undefined,
    dx: FloatArray | null,
    g: ConvGeometry,
  ): void {
    const { outChannels: out, channels, outH, outW, height, width } = g;
    const taps = g.kernelH * g.kernelW, block = out * channels;
    const z = paddedSizes(g, this.#threads.count());
    const padded = this.#get(PADDED, x, z.length).fill(0, 0, z.length); // [C, stride] + slack
    const rows = this.#get(ROWS, x, out * z.stride).fill(0, 0, out * z.stride); // [O, stride]
    const dweights = this.#get(DTAPS, x, taps * block).fill(0, 0, taps * block); // [KK, O, C]
    if (this.#sums.length < out) this.#sums = new Float64Array(out);
    const sums = this.#sums.fill(0, 0, out); // [O]
    const shifted = z.shifts.map((s) => padded.subarray(s));
    const tapGradients = z.shifts.map((_, k) => dweights.subarray(k * block, (k + 1) * block));
    // With dx: the kernel as [KK, O, C], and dxp [C, stride] + slack.
    const weights = dx ? this.#get(TAPS, x, taps * block) : null;
    if (weights) splitTaps(w, weights, out, channels, taps);
    const dpadded = dx ? this.#get(DPADDED, x, z.length) : null;
    const tapWeights = z.shifts.map((_, k) => weights?.subarray(k * block, (k + 1) * block));
    const dshifted = z.shifts.map((s) => dpadded?.subarray(s));
    const { width: wide, plane, stride } = z;
    const positions = outH * outW, image = channels * height * width;
    for (let first = 0; first < g.batch; first += z.group) {
      const count = Math.min(z.group, g.batch - first);
      const span = (count - 1) * plane + z.columns;
      for (let s = 0; s < count; s++) {
        pad(x, first + s, s, g, z, padded);
        for (let o = 0; o < out; o++) {
          const from = ((first + s) * out + o) * positions, to = o * stride + s * plane;
          let total = 0;
          for (let oh = 0; oh < outH; oh++) {
            const f = from + oh * outW, t = to + oh * wide;
            for (let ow = 0; ow < outW; ow++) {
              const v = dvalues[f + ow];
              rows[t + ow] = v;
              total += v;
            }
          }
          sums[o] += total;
        }
      }
      // O × C products summed over a group's columns: OpenBLAS splits an output, never the
      // sum, so on several threads these ran slower than on one (W4's conv2 on 2 threads:
      // 9.5 against 7.7 ms).
      this.#threads.serial(() => {
        for (let k = 0; k < taps; k++) {
          // deno-fmt-ignore
          gemm(ROW_MAJOR, NO_TRANS, TRANS, out, channels, span,
            1, rows, stride, shifted[k], stride, 1, tapGradients[k], channels);
        }
      });
      if (!dx || !dpadded) continue;
      dpadded.fill(0, 0, z.length);
      for (let k = 0; k < taps; k++) {
        // deno-fmt-ignore
        gemm(ROW_MAJOR, TRANS, NO_TRANS, channels, span, out,
          1, tapWeights[k]!, channels, rows, stride, 1, dshifted[k]!, stride);
      }
      for (let s = 0; s < count; s++) {
        for (let c = 0; c < channels; c++) {
          const to = (first + s) * image + c * height * width;
          const from = c * stride + s * plane + z.top * wide + z.left;
          for (let h = 0; h < height; h++) {
            const t = to + h * width, f = from + h * wide;
            for (let i = 0; i < width; i++) dx[t + i] = dpadded[f + i];
          }
        }
      }
    }
    // dw[o, c, i, j] += dW_k[o, c] with k = i·KW + j
    for (let o = 0; o < out; o++) {
      for (let c = 0; c < channels; c++) {
        const at = (o * channels + c) * taps, from = o * channels + c;
        for (let k = 0; k < taps; k++) dw[at + k] += dweights[k * block + from];
      }
      if (dbias) dbias[o] += sums[o];
    }
  }

  // sgemm when every array is float32, dgemm when every one is float64, else null.
  #gemmFor(x: FloatArray, others: readonly (FloatArray | null | undefined)[]): Gemm | null {
    const type = x.constructor;
    for (const array of others) if (array && array.constructor !== type) return null;
    return x instanceof Float32Array ? this.#sgemm : this.#dgemm;
  }

  // Scratch `slot` of x's element type, at least `length` long (contents: whatever was left).
  #get(slot: number, like: FloatArray, length: number): FloatArray {
    if (like instanceof Float32Array) {
      if (this.#scratch32[slot].length < length) this.#scratch32[slot] = new Float32Array(length);
      return this.#scratch32[slot];
    }
    if (this.#scratch64[slot].length < length) this.#scratch64[slot] = new Float64Array(length);
    return this.#scratch64[slot];
  }
}

// Whether the shifted products run this convolution: stride 1 (then OH = Hp − (KH − 1)·DH
// and OW likewise, checked) and enough input channels.
function takesShifted(g: ConvGeometry): boolean {
  const paddedH = g.height + g.padTop + g.padBottom, paddedW = g.width + g.padLeft + g.padRight;
  return g.strideH === 1 && g.strideW === 1 && g.channels >= SHIFTED_MIN_CHANNELS &&
    g.outH === paddedH - (g.kernelH - 1) * g.dilationH &&
    g.outW === paddedW - (g.kernelW - 1) * g.dilationW;
}

/** The padded images of the shifted products, a group of samples side by side. */
interface PaddedSizes {
  /** Zero rows above each image. */
  top: number;
  /** Zero columns left of it. */
  left: number;
  /** Wp: the padded row, also each output row's stride in the products. */
  width: number;
  /** Hp·Wp: one padded image's plane. */
  plane: number;
  /** OH·Wp: the columns of one sample's products. */
  columns: number;
  /** Samples a group. */
  group: number;
  /** group·Hp·Wp: a channel's row of the group's planes. */
  stride: number;
  /** C·stride and the (KW − 1)·DW elements that the last tap reads past the last row. */
  length: number;
  /** s_k = i·DH·Wp + j·DW for tap k = i·KW + j. */
  shifts: number[];
}

// The padded images of `g`, a sample a group on one thread (the fastest there), else groups
// of up to SHIFTED_GROUP_ELEMENTS.
function paddedSizes(g: ConvGeometry, threads: number): PaddedSizes {
  const width = g.width + g.padLeft + g.padRight;
  const plane = (g.height + g.padTop + g.padBottom) * width;
  const shifts: number[] = [];
  for (let i = 0; i < g.kernelH; i++) {
    for (let j = 0; j < g.kernelW; j++) shifts.push(i * g.dilationH * width + j * g.dilationW);
  }
  const most = Math.floor(SHIFTED_GROUP_ELEMENTS / (Math.max(g.channels, g.outChannels) * plane));
  const group = threads > 1 ? Math.max(1, Math.min(g.batch, most)) : 1;
  return {
    top: g.padTop,
    left: g.padLeft,
    width,
    plane,
    columns: g.outH * width,
    group,
    stride: group * plane,
    length: g.channels * group * plane + (g.kernelW - 1) * g.dilationW,
    shifts,
  };
}

// padded[c, s·Hp·Wp + (h + top)·Wp + left + w] = x[n, c, h, w]: sample n's image inside the
// zeros, as the group's sample s.
function pad(
  x: FloatArray,
  n: number,
  s: number,
  g: ConvGeometry,
  z: PaddedSizes,
  padded: FloatArray,
): void {
  const { channels, height, width } = g;
  const wide = z.width;
  for (let c = 0; c < channels; c++) {
    const from = ((n * channels + c) * height) * width;
    const to = c * z.stride + s * z.plane + z.top * wide + z.left;
    for (let h = 0; h < height; h++) {
      const f = from + h * width, t = to + h * wide;
      for (let i = 0; i < width; i++) padded[t + i] = x[f + i];
    }
  }
}

// taps[k, o, c] = w[o, c, k]: the kernel [O, C, KK] as one [O, C] matrix per tap.
function splitTaps(
  w: FloatArray,
  taps: FloatArray,
  out: number,
  channels: number,
  count: number,
): void {
  const block = out * channels;
  for (let o = 0; o < out; o++) {
    for (let c = 0; c < channels; c++) {
      const from = (o * channels + c) * count, to = o * channels + c;
      for (let k = 0; k < count; k++) taps[k * block + to] = w[from + k];
    }
  }
}
