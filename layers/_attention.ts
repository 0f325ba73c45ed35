// The loops of MultiHeadAttention that no product does: moving heads between the
// projections' rows and head-contiguous blocks, the row softmax and its derivative, and the
// dropout of attention weights. Every product goes to the backend.
//
// Dimension letters: B batch, T positions, H heads, E = dim / H per head, D = H·E.
import type { RandomState } from "../core/random.ts";
import type { FloatArray } from "../core/tensor.ts";
import { exp } from "../core/_fast_math.ts";

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
 * In place, one head's scores [T, T] → attention probabilities: row i becomes
 * softmax(scale·scores[i, j]) over j ≤ i when `causal` (the rest 0), else over every j.
 * `scale` must be positive. The exponentials are `_recurrent.ts`'s `exp`, within a few
 * float64 ulps (W5's 128 heads a layer: 2.3 ms, against 3.4 ms with Math.exp).
 */
export function softmaxRows(p: FloatArray, T: number, scale: number, causal: boolean): void {
  for (let i = 0; i < T; i++) {
    const row = i * T, end = row + (causal ? i + 1 : T), stop = row + T;
    let max = -Infinity;
    for (let at = row; at < end; at++) if (p[at] > max) max = p[at];
    const shift = max * scale; // the largest scaled score: scaling by scale > 0 keeps order
    let sum = 0;
    for (let at = row; at < end; at++) {
      const e = exp(p[at] * scale - shift);
      p[at] = e;
      sum += e;
    }
    const inverse = 1 / sum;
    for (let at = row; at < end; at++) p[at] *= inverse;
    for (let at = end; at < stop; at++) p[at] = 0;
  }
}

// dscores[i, j] = scale·p[i, j]·(g[i, j] − Σ_l p[i, l]·g[i, l]), g = dprobs (times the
// dropout mask when one was applied), over j ≤ i when causal; 0 where the mask hid j.
/**
 * In place, one head's d(loss)/d(probabilities) `g` [T, T] → d(loss)/d(scores), through
 * {@linkcode softmaxRows} (and the dropout `mask` [T, T] applied after it, when given).
 */
export function softmaxRowsBackward(
  p: FloatArray, // [T, T], the probabilities before dropout
  g: FloatArray, // [T, T]
  mask: FloatArray | undefined, // [T, T]: 0 or 1 / (1 − rate)
  T: number,
  scale: number,
  causal: boolean,
): void {
  for (let i = 0; i < T; i++) {
    const row = i * T, end = row + (causal ? i + 1 : T), stop = row + T;
    if (mask) { for (let at = row; at < end; at++) g[at] *= mask[at]; }
    let dot = 0;
    for (let at = row; at < end; at++) dot += p[at] * g[at];
    for (let at = row; at < end; at++) g[at] = scale * p[at] * (g[at] - dot);
    for (let at = end; at < stop; at++) g[at] = 0;
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
