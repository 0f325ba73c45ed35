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
  /** Rows per block of the products: a multiple of mr when causal, else T (one block). */
  rows: number;
  /**
   * out[T, T] (row stride T) = L·Rᵀ for L [T, E] packed whole by packColsL at `left` and R
   * [T, E] by packColsR at `right`; when causal, a block of rows [r0, r1) gets only its
   * columns j < r1 (up to a whole right panel). Byte offsets.
   */
  squareProduct(left: number, right: number, out: number): void;
  /**
   * out[m, E] (row stride `ldc`) = L[m, depth]·R[from, from + depth) for L packed at `left`
   * over `depth` and R [T, E] packed whole by packRowsR at `right`. Byte offsets.
   */
  rowsProduct(
    left: number,
    right: number,
    out: number,
    m: number,
    from: number,
    depth: number,
    ldc: number,
  ): void;
}

// Causal heads skip the masked half of each product: rows [r0, r1) of a T × T one (scores,
// dprobs) need only its columns j < r1, as the softmax and its derivative read j ≤ i and write
// 0 past the diagonal; of the products through the probabilities (dscores likewise), attended
// and dq rows [r0, r1) need only the reduction's j < r1, dv and dk rows [r0, r1) only its
// i ≥ r0, as probs[i, j] = 0 for j > i. The terms left out are +0 times finite values, at the
// end or the start of each sum, and a sum that starts at +0 keeps its bits through ±0 terms
// (round to nearest: x + ±0 = x for x ≠ −0, and such a sum is never −0), so every output has
// the bits of the whole product. Blocks of 2·mr rows, a multiple of mr so that a block of a
// left operand packed whole starts a panel (W5's heads, T 64 and E 32: 2·mr, 3·mr and 4·mr
// measured alike, mr alone slower). The two products are closures of the view, so that the
// workers, which get the listed functions' source (backends/_tasks.ts), have them too.
/**
 * Reads the descriptor at byte `descriptor` for `thread`: its sizes, the thread's scratch and
 * the products that skip what causal attention masks.
 */
export function readAttention(
  context: TaskContext,
  thread: number,
  descriptor: number,
): AttentionView {
  const buffer = taskBuffer(context, descriptor, 14, "attention task");
  const d = new Int32Array(buffer, descriptor, 32);
  const [mr, nr, T, E, causal] = [d[1], d[2], d[9], d[10], d[11] === 1];
  const bytes = d[0] === 1 ? 8 : 4, x: TaskKernelExports = context.exports[d[0]];
  const scratch = attentionScratch(T, E, mr, nr).map((offset) => d[12] + thread * d[13] + offset);
  const tile = scratch[2] * bytes, rows = causal ? 2 * mr : T;
  return {
    d,
    scale: new Float64Array(buffer, descriptor + 64, 1)[0],
    bytes,
    x,
    heap: d[0] === 1 ? new Float64Array(buffer) : new Float32Array(buffer),
    H: d[8],
    T,
    E,
    causal,
    scratch,
    rows,
    squareProduct(left: number, right: number, out: number): void {
      for (let r0 = 0; r0 < T; r0 += rows) {
        const r1 = r0 + rows < T ? r0 + rows : T, panels = Math.ceil(r1 / nr) * nr;
        const n = panels < T ? panels : T; // left panel r0 / mr lies at r0·E elements
        x.gemm(left + r0 * E * bytes, right, out + r0 * T * bytes, r1 - r0, n, E, T, 0, tile);
      }
    },
    rowsProduct(left, right, out, m, from, depth, ldc): void {
      if (depth === T) return x.gemm(left, right, out, m, E, T, ldc, 0, tile);
      // Else one product per right panel of nr columns: panel c0 / nr lies at c0·T elements,
      // its T rows of nr in order, so row `from` on is a suffix of it.
      for (let c0 = 0; c0 < E; c0 += nr) {
        const panel = right + (c0 * T + from * nr) * bytes, n = c0 + nr < E ? nr : E - c0;
        x.gemm(left, panel, out + c0 * bytes, m, n, depth, ldc, 0, tile);
      }
    },
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
  const view = readAttention(context, thread, descriptor);
  const { d, scale, bytes, x, heap, H, T, E, causal, scratch, rows } = view;
  const D = H * E, TT = T * T;
  const [left, right] = scratch.map((offset) => offset * bytes);
  for (let i = first; i < first + count; i++) {
    const b = (i / H) | 0, h = i - b * H;
    const q = (d[3] + b * T * 3 * D + h * E) * bytes, k = q + D * bytes, v = q + 2 * D * bytes;
    const p = d[4] + i * TT, attended = (d[5] + b * T * D + h * E) * bytes;
    x.packColsL(q, 3 * D, T, E, left);
    x.packColsR(k, 3 * D, T, E, right);
    view.squareProduct(left, right, p * bytes);
    softmaxRows(heap.subarray(p, p + TT), T, scale, causal);
    x.packRowsR(v, 3 * D, T, E, right);
    for (let r0 = 0; r0 < T; r0 += rows) {
      const r1 = r0 + rows < T ? r0 + rows : T; // probs rows [r0, r1) are 0 from column r1
      x.packColsL((p + r0 * T) * bytes, T, r1 - r0, r1, left);
      view.rowsProduct(left, right, attended + r0 * D * bytes, r1 - r0, 0, r1, D);
    }
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
  const view = readAttention(context, thread, descriptor);
  const { d, scale, bytes, x, heap, H, T, E, causal, scratch, rows } = view;
  const D = H * E, TT = T * T, ld = 3 * D; // dq, dk and dv's row stride
  const [left, right, , dprobs] = scratch;
  const [l, r, g] = [left * bytes, right * bytes, dprobs * bytes];
  const scores = heap.subarray(dprobs, dprobs + TT);
  for (let i = first; i < first + count; i++) {
    const b = (i / H) | 0, h = i - b * H, at = b * T * ld + h * E;
    const q = (d[3] + at) * bytes, k = q + D * bytes, v = q + 2 * D * bytes;
    const dq = (d[6] + at) * bytes, dk = dq + D * bytes, dv = dq + 2 * D * bytes;
    const da = (d[5] + b * T * D + h * E) * bytes, p = d[4] + i * TT;
    x.packRowsR(da, D, T, E, r);
    for (let r0 = 0; r0 < T; r0 += rows) {
      const r1 = r0 + rows < T ? r0 + rows : T; // probs columns [r0, r1) are 0 above row r0
      x.packRowsL((p + r0 * T + r0) * bytes, T, T - r0, r1 - r0, l);
      view.rowsProduct(l, r, dv + r0 * ld * bytes, r1 - r0, r0, T - r0, ld);
    }
    x.packColsL(da, D, T, E, l);
    x.packColsR(v, 3 * D, T, E, r);
    view.squareProduct(l, r, g);
    softmaxRowsBackward(heap.subarray(p, p + TT), scores, undefined, T, scale, causal);
    x.packRowsR(k, 3 * D, T, E, r);
    for (let r0 = 0; r0 < T; r0 += rows) {
      const r1 = r0 + rows < T ? r0 + rows : T; // dscores rows [r0, r1) are 0 from column r1
      x.packColsL(g + r0 * T * bytes, T, r1 - r0, r1, l);
      view.rowsProduct(l, r, dq + r0 * ld * bytes, r1 - r0, 0, r1, ld);
    }
    x.packRowsR(q, 3 * D, T, E, r);
    for (let r0 = 0; r0 < T; r0 += rows) {
      const r1 = r0 + rows < T ? r0 + rows : T; // dscores columns [r0, r1) are 0 above row r0
      x.packRowsL(g + (r0 * T + r0) * bytes, T, T - r0, r1 - r0, l);
      view.rowsProduct(l, r, dk + r0 * ld * bytes, r1 - r0, r0, T - r0, ld);
    }
  }
}
