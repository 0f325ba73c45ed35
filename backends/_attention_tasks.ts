// Attention's per-head products and softmax, one task per range of (sample, head) pairs:
// MultiHeadAttention's heads are independent, so a task computes its pairs whole, in its
// thread's scratch, with the wasm products and the softmax below, and every pair gets the same
// bits whichever thread runs it. Copied into the workers' source like backends/_conv_tasks.ts:
// self-contained function declarations that call each other and `exp` (core/_fast_math.ts,
// whose tables the workers get from `fastMathSource`).
//
// Dimension letters: B batch, H heads, P = B·H pairs, T positions, E = dim / heads per head,
// D = H·E. The tasks read q, k and v where the in-projection wrote them, rows of qkv
// [B·T, 3·D] (pair (b, h)'s q at row b·T, column h·E; k D and v 2·D further), and write the
// attended values where the out-projection reads them, concat [B·T, D]: the products take
// those row strides, so no head is copied out or back.
//
// The descriptor at byte `descriptor` (128 bytes), Int32: [module, mr, nr, qkv, probs, concat
// (forward) or dconcat (backward), dqkv (backward, else −1), B, H, T, E, causal, scratch,
// scratchLength, pages], element offsets in the module's element type; then the scale as a
// float64 at byte descriptor + 64.
import { exp } from "../core/_fast_math.ts";
import type { FloatArray } from "../core/tensor.ts";
import type { TaskContext, TaskKernelExports } from "./_task_context.ts";
import { taskBuffer } from "./_task_buffer.ts";

/**
 * In place, one head's scores [T, T] → attention probabilities: row i becomes
 * softmax(scale·scores[i, j]) over j ≤ i when `causal` (the rest 0), else over every j.
 * `scale` must be positive. The exponentials are core/_fast_math.ts's `exp`, within a few
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
 * One thread's scratch for heads of T positions and E features on kernels with an mr × nr
 * tile, as element offsets: [left panels, right panels, the edge tile, dprobs [T, T], total
 * length]; each 16-element aligned.
 */
export function attentionScratch(T: number, E: number, mr: number, nr: number): number[] {
  const up = (n: number) => (n + 15) & ~15;
  const wide = T > E ? T : E; // every product's depth and output width are T or E
  const left = 0;
  const right = left + up(Math.ceil(T / mr) * mr * wide);
  const tile = right + up(Math.ceil(wide / nr) * nr * wide);
  const dprobs = tile + up(mr * nr);
  return [left, right, tile, dprobs, dprobs + up(T * T)];
}

/** Writes the descriptor the attention tasks read at byte `at` of `buffer`. */
export function writeAttentionDescriptor(
  buffer: ArrayBufferLike,
  at: number,
  ints: readonly number[], // [module, mr, nr, qkv, probs, concat, dqkv, B, H, T, E, causal, scratch, scratchLength]
  scale: number,
): void {
  new Int32Array(buffer, at, 32).set([...ints, buffer.byteLength / 65536]);
  new Float64Array(buffer, at + 64, 1)[0] = scale;
}

/** A task's view of its attention job: the descriptor's sizes and its thread's scratch. */
export interface AttentionView {
  /** The descriptor (see above). */
  d: Int32Array;
  /** The scores' factor. */
  scale: number;
  /** Bytes per element. */
  bytes: number;
  /** The kernels of the element type. */
  x: TaskKernelExports;
  /** The whole memory as elements. */
  heap: Float32Array | Float64Array;
  H: number;
  T: number;
  E: number;
  causal: boolean;
  /** This thread's scratch (see {@linkcode attentionScratch}), element offsets. */
  scratch: number[];
}

/** Reads the descriptor at byte `descriptor` for `thread`. */
export function readAttention(
  context: TaskContext,
  thread: number,
  descriptor: number,
): AttentionView {
  const buffer = taskBuffer(context, descriptor, 14, "attention task");
  const d = new Int32Array(buffer, descriptor, 32);
  const T = d[9], E = d[10];
  return {
    d,
    scale: new Float64Array(buffer, descriptor + 64, 1)[0],
    bytes: d[0] === 1 ? 8 : 4,
    x: context.exports[d[0]],
    heap: d[0] === 1 ? new Float64Array(buffer) : new Float32Array(buffer),
    H: d[8],
    T,
    E,
    causal: d[11] === 1,
    scratch: attentionScratch(T, E, d[1], d[2]).map((offset) => d[12] + thread * d[13] + offset),
  };
}

// scores = q·kᵀ → probs (softmax, in place)   attended = probs·v
/** The forward task: probs and attended values of pairs [first, first + count). */
export function attentionForwardTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const { d, scale, bytes, x, heap, H, T, E, causal, scratch } = readAttention(
    context,
    thread,
    descriptor,
  );
  const D = H * E, TT = T * T;
  const [left, right, tile] = scratch.map((offset) => offset * bytes);
  for (let i = first; i < first + count; i++) {
    const b = (i / H) | 0, h = i - b * H;
    const q = (d[3] + b * T * 3 * D + h * E) * bytes, k = q + D * bytes, v = q + 2 * D * bytes;
    const p = d[4] + i * TT;
    x.packColsL(q, 3 * D, T, E, left);
    x.packColsR(k, 3 * D, T, E, right);
    x.gemm(left, right, p * bytes, T, T, E, T, 0, tile);
    softmaxRows(heap.subarray(p, p + TT), T, scale, causal);
    x.packColsL(p * bytes, T, T, T, left);
    x.packRowsR(v, 3 * D, T, E, right);
    x.gemm(left, right, (d[5] + b * T * D + h * E) * bytes, T, E, T, D, 0, tile);
  }
}

// dv = probsᵀ·dattended   dprobs = dattended·vᵀ   dscores = softmax′(dprobs)
// dq = dscores·k   dk = dscoresᵀ·q
/** The backward task: dq, dk and dv of pairs [first, first + count), overwritten. */
export function attentionBackwardTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const { d, scale, bytes, x, heap, H, T, E, causal, scratch } = readAttention(
    context,
    thread,
    descriptor,
  );
  const D = H * E, TT = T * T;
  const [left, right, tile, dprobs] = scratch;
  const [l, r, t, g] = [left * bytes, right * bytes, tile * bytes, dprobs * bytes];
  const scores = heap.subarray(dprobs, dprobs + TT);
  for (let i = first; i < first + count; i++) {
    const b = (i / H) | 0, h = i - b * H, rows = b * T * 3 * D + h * E;
    const q = (d[3] + rows) * bytes, k = q + D * bytes, v = q + 2 * D * bytes;
    const dq = (d[6] + rows) * bytes, dk = dq + D * bytes, dv = dq + 2 * D * bytes;
    const da = (d[5] + b * T * D + h * E) * bytes, p = d[4] + i * TT;
    x.packRowsL(p * bytes, T, T, T, l);
    x.packRowsR(da, D, T, E, r);
    x.gemm(l, r, dv, T, E, T, 3 * D, 0, t);
    x.packColsL(da, D, T, E, l);
    x.packColsR(v, 3 * D, T, E, r);
    x.gemm(l, r, g, T, T, E, T, 0, t);
    softmaxRowsBackward(heap.subarray(p, p + TT), scores, undefined, T, scale, causal);
    x.packColsL(g, T, T, T, l);
    x.packRowsR(k, 3 * D, T, E, r);
    x.gemm(l, r, dq, T, E, T, 3 * D, 0, t);
    x.packRowsL(g, T, T, T, l);
    x.packRowsR(q, 3 * D, T, E, r);
    x.gemm(l, r, dk, T, E, T, 3 * D, 0, t);
  }
}
