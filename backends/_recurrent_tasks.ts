// The LSTM's float32 recurrence split by batch rows: the samples of a batch are independent,
// so a task takes a range of rows through all T steps by itself (each step's product
// h_{t−1}·U or dgates_t·Uᵀ for its rows, then its rows' cells), one job per pass, and every row
// gets the same bits whichever thread runs it and however the rows are grouped (the products
// sum each element in the same order). The cell functions are also the layer's own loops
// (layers/lstm.ts). Copied into the workers' source like backends/_conv_tasks.ts:
// self-contained functions that call each other and the float32 gate functions of
// core/_fast_math.ts, whose tables the workers get from `fastMathSource`.
//
// The descriptor at byte `descriptor` (128 bytes), Int32: [gates, cells, tanhCells, hiddens,
// dvalues, dgates, dh, dc, packedU, B, T, H, sequences, scratch, scratchLength, mr, nr,
// pages], element offsets of float32 arrays (−1 for those a pass does not use), then sizes.
import { sigmoid32, tanh32 } from "../core/_fast_math.ts";
import type { FloatArray } from "../core/tensor.ts";
import type { TaskContext } from "./_task_context.ts";
import { taskBuffer } from "./_task_buffer.ts";

/**
 * Step t's gates and cell for float32 buffers, rows [first, first + count) of the batch: the
 * pre-activations in `gates` become i, f, g, o in place (float32 sigmoid and tanh); c,
 * tanh(c) and h are written at step t of their buffers.
 */
export function lstmForwardRows32(
  gates: Float32Array, // [T, B, G]
  cells: Float32Array, // [T, B, H]
  tanhCells: Float32Array, // [T, B, H]
  hiddens: Float32Array, // [T, B, H]
  t: number,
  B: number,
  H: number,
  first: number,
  count: number,
): void {
  const G = 4 * H, BH = B * H;
  for (let b = first; b < first + count; b++) {
    const row = (t * B + b) * G, at = t * BH + b * H, prev = at - BH;
    for (let q = row; q < row + 2 * H; q++) gates[q] = sigmoid32(gates[q]); // i, f
    for (let q = row + 2 * H; q < row + 3 * H; q++) gates[q] = tanh32(gates[q]); // g
    for (let q = row + 3 * H; q < row + G; q++) gates[q] = sigmoid32(gates[q]); // o
    for (let j = 0; j < H; j++) {
      const cPrev = t > 0 ? cells[prev + j] : 0; // c₀ = 0
      const c = gates[row + H + j] * cPrev + gates[row + j] * gates[row + 2 * H + j];
      const tc = tanh32(c);
      cells[at + j] = c;
      tanhCells[at + j] = tc;
      hiddens[at + j] = gates[row + 3 * H + j] * tc;
    }
  }
}

// dc += dh⊙o⊙(1−tanh²c)  dpre_i = dc⊙g⊙i(1−i)  dpre_f = dc⊙c_{t−1}⊙f(1−f)  dpre_g = dc⊙i⊙(1−g²)  dpre_o = dh⊙tanh(c)⊙o(1−o)  dc_{t−1} = dc⊙f
/**
 * Step t's gate gradients, rows [first, first + count): from dh (d(loss)/d(h_t), in) and dc
 * (d(loss)/d(c_t) from step t + 1, in; d(loss)/d(c_{t−1}), out), both [B, H].
 */
export function lstmBackwardRows(
  gates: FloatArray, // [T, B, G]: i, f, g, o
  cells: FloatArray, // [T, B, H]
  tanhCells: FloatArray, // [T, B, H]
  dgates: FloatArray, // [T, B, G]
  dh: FloatArray, // [B, H]
  dc: FloatArray, // [B, H]
  t: number,
  B: number,
  H: number,
  first: number,
  count: number,
): void {
  const G = 4 * H, BH = B * H;
  for (let b = first; b < first + count; b++) {
    const row = (t * B + b) * G, at = t * BH + b * H, prev = at - BH, own = b * H;
    for (let j = 0; j < H; j++) {
      const i = gates[row + j], f = gates[row + H + j];
      const g = gates[row + 2 * H + j], o = gates[row + 3 * H + j];
      const tc = tanhCells[at + j], dhj = dh[own + j];
      const cPrev = t > 0 ? cells[prev + j] : 0;
      const dcj = dc[own + j] + dhj * o * (1 - tc * tc);
      dgates[row + j] = dcj * g * i * (1 - i);
      dgates[row + H + j] = dcj * cPrev * f * (1 - f);
      dgates[row + 2 * H + j] = dcj * i * (1 - g * g);
      dgates[row + 3 * H + j] = dhj * tc * o * (1 - o);
      dc[own + j] = dcj * f;
    }
  }
}

// dh += dvalues_t (every step's outputs), or dh = dvalues at the last step (the last one's)
/** Adds what `dv` ([B, T, H], or [B, H] for the last step only) holds for step t to dh's rows. */
export function addStepGradientRows(
  dv: FloatArray, // [B, T, H] or [B, H]
  dh: FloatArray, // [B, H]
  t: number,
  T: number,
  H: number,
  sequences: boolean,
  first: number,
  count: number,
): void {
  if (sequences) {
    for (let b = first; b < first + count; b++) {
      const from = (b * T + t) * H, to = b * H;
      for (let j = 0; j < H; j++) dh[to + j] += dv[from + j];
    }
  } else if (t === T - 1) {
    for (let at = first * H; at < (first + count) * H; at++) dh[at] = dv[at];
  }
}

/**
 * One thread's scratch for tasks of at most `rows` batch rows of an LSTM with `hidden` units
 * on kernels with an mr × nr tile, as element offsets: [the packed rows (h_{t−1} or dgates_t),
 * the edge tile, total length]; each 16-element aligned.
 */
export function lstmScratch(rows: number, hidden: number, mr: number, nr: number): number[] {
  const up = (n: number) => (n + 15) & ~15;
  const tile = up(Math.ceil(rows / mr) * mr * 4 * hidden);
  return [0, tile, tile + up(mr * nr)];
}

/** Writes the descriptor the LSTM tasks read at byte `at` of `buffer`. */
export function writeLstmDescriptor(
  buffer: ArrayBufferLike,
  at: number,
  ints: readonly number[], // the 17 fields before `pages` (see above)
): void {
  new Int32Array(buffer, at, 32).set([...ints, buffer.byteLength / 65536]);
}

// gates_t += h_{t−1}·U (t > 0), then the cells, every step, rows [first, first + count)
/** The forward task: the recurrence of its batch rows through all T steps. */
export function lstmForwardTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const buffer = taskBuffer(context, descriptor, 17, "LSTM task");
  const d = new Int32Array(buffer, descriptor, 32);
  const x = context.exports[0];
  const B = d[9], T = d[10], H = d[11], G = 4 * H;
  const view = (offset: number, length: number) => new Float32Array(buffer, offset * 4, length);
  const [gates, cells, tanhCells, hiddens] = [view(d[0], T * B * G), view(d[1], T * B * H)]
    .concat([view(d[2], T * B * H), view(d[3], T * B * H)]);
  const [left, tile] = lstmScratch(count, H, d[15], d[16])
    .map((offset) => (d[13] + thread * d[14] + offset) * 4);
  for (let t = 0; t < T; t++) {
    // h₀ = 0: the first step has no recurrent term.
    if (t > 0) {
      x.packColsL((d[3] + ((t - 1) * B + first) * H) * 4, H, count, H, left);
      x.gemm(left, d[8] * 4, (d[0] + (t * B + first) * G) * 4, count, G, H, G, 1, tile);
    }
    lstmForwardRows32(gates, cells, tanhCells, hiddens, t, B, H, first, count);
  }
}

// dh_t += dvalues_t   dgates_t = cell′(dh_t, dc)   dh_{t−1} = dgates_t·Uᵀ, rows [first, first + count)
/** The backward task: dgates of its batch rows through all T steps, backwards. */
export function lstmBackwardTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const buffer = taskBuffer(context, descriptor, 17, "LSTM task");
  const d = new Int32Array(buffer, descriptor, 32);
  const x = context.exports[0];
  const B = d[9], T = d[10], H = d[11], G = 4 * H, sequences = d[12] === 1;
  const view = (offset: number, length: number) => new Float32Array(buffer, offset * 4, length);
  const [gates, cells, tanhCells] = [view(d[0], T * B * G), view(d[1], T * B * H)]
    .concat([view(d[2], T * B * H)]);
  const dv = view(d[4], sequences ? B * T * H : B * H), dgates = view(d[5], T * B * G);
  const dh = view(d[6], B * H), dc = view(d[7], B * H);
  const [left, tile] = lstmScratch(count, H, d[15], d[16])
    .map((offset) => (d[13] + thread * d[14] + offset) * 4);
  for (let t = T - 1; t >= 0; t--) {
    addStepGradientRows(dv, dh, t, T, H, sequences, first, count);
    lstmBackwardRows(gates, cells, tanhCells, dgates, dh, dc, t, B, H, first, count);
    // h₀ is a constant: nothing flows back from the first step.
    if (t > 0) {
      x.packColsL((d[5] + (t * B + first) * G) * 4, G, count, G, left);
      x.gemm(left, d[8] * 4, (d[6] + first * H) * 4, count, H, G, H, 0, tile);
    }
  }
}
