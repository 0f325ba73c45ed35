// MaxPool2D's loops, shared by the layer (layers/max_pool2d.ts) and the wasm backend's
// pooling tasks (backends/_pool_tasks.ts), which run them on every thread of the worker pool
// over a range of planes each.
//
// The worker threads run these very functions: their source text is copied into the
// workers' source (backends/_worker_source.ts), so they must stay self-contained: plain
// function declarations that call only each other and read only their arguments.
//
// A plane is one channel of one sample: `x` [planes, H, W], `y` and `argmax`
// [planes, OH, OW]; argmax holds flat indices into x.
import type { FloatArray } from "../core/tensor.ts";

/** The window of a pooling layer, as its loops read it. */
export interface PoolWindow {
  /** KH */
  kernelH: number;
  /** KW */
  kernelW: number;
  /** SH */
  strideH: number;
  /** SW */
  strideW: number;
  /** Rows of padding above (they never win). */
  padTop: number;
  /** Columns of padding on the left. */
  padLeft: number;
}

/**
 * y[plane, oh, ow] = max of the window over planes [first, end); argmax = the flat index in
 * x of the first maximum. Float32 inputs are compared by `keys` (their bits as int32),
 * without a branch (a data-dependent branch per comparison mispredicts on real activations:
 * 8.6 → 2.3 ms for W4's first pool); float64 inputs (gradient checks) take the plain loop,
 * with `keys` null.
 */
export function maxPoolPlanes(
  x: FloatArray,
  keys: Int32Array | null,
  y: FloatArray,
  argmax: Int32Array,
  first: number,
  end: number,
  height: number,
  width: number,
  outH: number,
  outW: number,
  window: PoolWindow,
): void {
  const { kernelH, kernelW, strideH, strideW, padTop, padLeft } = window;
  if (kernelH === 2 && kernelW === 2 && strideH === 2 && strideW === 2) {
    if (padTop === 0 && padLeft === 0) {
      return maxPool2x2(x, keys, y, argmax, first, end, height, width, outH, outW);
    }
  }
  const plane = height * width;
  let o = first * outH * outW;
  for (let q = first; q < end; q++) {
    const base = q * plane;
    for (let oh = 0; oh < outH; oh++) {
      const top = oh * strideH - padTop;
      const hFrom = Math.max(top, 0), hTo = Math.min(top + kernelH, height);
      for (let ow = 0; ow < outW; ow++, o++) {
        const left = ow * strideW - padLeft;
        const wFrom = Math.max(left, 0), wTo = Math.min(left + kernelW, width);
        const at = windowMax(x, keys, base, hFrom, hTo, wFrom, wTo, width);
        y[o] = x[at];
        argmax[o] = at;
      }
    }
  }
}

// The 2×2, stride 2 windows of W4 and most CNNs: three float comparisons per output, made
// into 0/1 and used as index offsets, so no branch depends on the data (W4's first pool in a
// training step: 3.3 → 2.4 ms). A comparison with NaN is false, so a window holding a NaN (its
// sum is NaN) takes the general rule instead (`windowMax`).
function maxPool2x2(
  x: FloatArray,
  keys: Int32Array | null,
  y: FloatArray,
  argmax: Int32Array,
  first: number,
  end: number,
  height: number,
  width: number,
  outH: number,
  outW: number,
): void {
  let o = first * outH * outW;
  for (let q = first; q < end; q++) {
    const base = q * height * width;
    for (let oh = 0; oh < outH; oh++) {
      const rowStart = base + 2 * oh * width;
      for (let ow = 0; ow < outW; ow++, o++) {
        const i = rowStart + 2 * ow, k = i + width;
        const a = x[i], b = x[i + 1], c = x[k], d = x[k + 1];
        const sum = a + b + c + d;
        let j: number;
        if (sum === sum) {
          const upper = i + +(b > a), lower = k + +(d > c); // ties: the first
          j = upper + +(x[lower] > x[upper]) * (lower - upper);
        } else j = windowMax(x, keys, base, 2 * oh, 2 * oh + 2, 2 * ow, 2 * ow + 2, width);
        y[o] = x[j];
        argmax[o] = j;
      }
    }
  }
}

// The flat index of the largest of x[base + ih·width + iw] over rows [hFrom, hTo) and columns
// [wFrom, wTo): the first of equals; float32 by keys, float64 by a loop in which a NaN wins
// and stays, as in PyTorch.
function windowMax(
  x: FloatArray,
  keys: Int32Array | null,
  base: number,
  hFrom: number,
  hTo: number,
  wFrom: number,
  wTo: number,
  width: number,
): number {
  let at = base + hFrom * width + wFrom;
  if (keys) {
    let best = orderKey(keys[at]);
    for (let ih = hFrom; ih < hTo; ih++) {
      const row = base + ih * width;
      for (let iw = wFrom; iw < wTo; iw++) {
        const key = orderKey(keys[row + iw]);
        const less = lessThan(best, key); // 1 when this cell is larger
        best ^= (best ^ key) & -less;
        at ^= (at ^ (row + iw)) & -less;
      }
    }
    return at;
  }
  let best = -Infinity;
  for (let ih = hFrom; ih < hTo; ih++) {
    const row = base + ih * width;
    for (let iw = wFrom; iw < wTo; iw++) {
      const v = x[row + iw];
      if (v > best || v !== v) {
        best = v;
        at = row + iw;
      }
    }
  }
  return at;
}

// A float32's bits as an int32 that orders like the float: its magnitude bits, negated for a
// negative float, so that −0 and +0 tie (the first wins, as in PyTorch); a NaN of either sign
// keeps its magnitude, above +∞, so it wins as PyTorch's NaN does. No branch.
function orderKey(bits: number): number {
  const magnitude = bits & 0x7fffffff;
  const nan = (0x7f800000 - magnitude) >> 31; // −1 for a NaN, else 0
  const flip = (bits >> 31) & ~nan; // −1 to negate
  return (magnitude ^ flip) - flip;
}

// 1 when a < b, else 0, for int32 a and b: the sign of a − b, corrected where the difference
// overflows int32; no branch.
function lessThan(a: number, b: number): number {
  const difference = (a - b) | 0;
  return (difference ^ ((a ^ b) & (difference ^ a))) >>> 31;
}

// dx[argmax] += dvalues: each output's gradient goes to the input that won.
/**
 * The gradient of {@linkcode maxPoolPlanes} over planes [first, end) of `outPlane` outputs
 * each, added into `dx` (which the caller zeroed): a plane's outputs point into that plane
 * only, so ranges of planes may run at once.
 */
export function maxPoolBackwardPlanes(
  dvalues: FloatArray,
  dx: FloatArray,
  argmax: Int32Array,
  first: number,
  end: number,
  outPlane: number,
): void {
  for (let o = first * outPlane; o < end * outPlane; o++) dx[argmax[o]] += dvalues[o];
}

/** All the pooling functions, for the workers' source (backends/_tasks.ts). */
export const POOLING_FUNCTIONS: readonly ((...args: never[]) => unknown)[] = [
  maxPoolPlanes,
  maxPool2x2,
  windowMax,
  orderKey,
  lessThan,
  maxPoolBackwardPlanes,
];
