// The LSTM's float32 recurrence split by batch rows: the samples of a batch are independent,
// so a task takes a range of rows through all T steps by itself (each step's product
// h_{t−1}·U or dgates_t·Uᵀ for its rows, then its rows' cells), one job per pass, and every row
// gets the same bits whichever thread runs it and however the rows are grouped (the products
// sum each element in the same order). The tasks run the cells by the float32 kernels'
// lstmForwardCells and lstmBackwardCells (tools/wasm/recurrent_kernels.ts), which do the
// arithmetic of the cell functions below operation for operation, so their bits; those stay
// the layer's own loops (layers/lstm.ts) and the reference. Copied into the workers' source
// like backends/_conv_tasks.ts: self-contained functions that call each other and the kernels.
//
// The descriptor at byte `descriptor` (128 bytes), Int32: [gates, cells, tanhCells, hiddens,
// dvalues, dgates, dh, dc, packedU, B, T, H, sequences, scratch, scratchLength, mr, nr, table,
// pages], element offsets of float32 arrays (−1 for those a pass does not use), then sizes,
// then the element offset of the 64 doubles that `lstmExpFractions` writes (the gate
// functions' table, for the forward cells).
import { sigmoid32, tanh32 } from "../core/_fast_math.ts";
import type { FloatArray } from "../core/tensor.ts";
import type { TaskContext, TaskKernelExports } from "./_task_context.ts";
import { taskBuffer } from "./_task_buffer.ts";

/**
 * The float32 kernels' LSTM cells (tools/wasm/recurrent_kernels.ts), on byte offsets: step t's
 * cells of `rows` consecutive batch rows, with `prev` (the rows' c_{t−1}) −1 at the first step.
 */
export interface LstmCellKernels {
  /** lstmForwardRows32's arithmetic; `table` holds what `lstmExpFractions` writes. */
  lstmForwardCells(
    gates: number,
    cells: number,
    tanhCells: number,
    hiddens: number,
    prev: number,
    rows: number,
    hidden: number,
    table: number,
  ): void;
  /**
   * addStepGradientRows' (mode 1: dh += dv, 2: dh = dv, 0: neither; dv's rows `dvStride`
   * bytes apart), then lstmBackwardRows' arithmetic.
   */
  lstmBackwardCells(
    gates: number,
    tanhCells: number,
    prev: number,
    dgates: number,
    dh: number,
    dc: number,
    dv: number,
    dvStride: number,
    mode: number,
    rows: number,
    hidden: number,
  ): void;
  /** Writes the 64 doubles 2^(j/64) of the gate functions (core/_fast_math.ts) at byte `at`. */
  lstmExpFractions(at: number): void;
}

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
 * One thread's scratch for the recurrent tasks (the LSTM's, G = 4·hidden gate columns, and the
 * GRU's, backends/_gru_tasks.ts, G = 3·hidden) of at most `rows` batch rows on kernels with
 * an mr × nr tile, as element offsets: [the packed rows (h_{t−1}, or a step's G-wide
 * gradients), the edge tile, total length]; each 16-element aligned.
 */
export function recurrentScratch(rows: number, G: number, mr: number, nr: number): number[] {
  const up = (n: number) => (n + 15) & ~15;
  const tile = up(Math.ceil(rows / mr) * mr * G);
  return [0, tile, tile + up(mr * nr)];
}

/** Writes the descriptor a recurrent task reads at byte `at` of `buffer`. */
export function writeRecurrentDescriptor(
  buffer: ArrayBufferLike,
  at: number,
  ints: readonly number[], // the fields before `pages` (see each task file's header)
): void {
  new Int32Array(buffer, at, 32).set([...ints, buffer.byteLength / 65536]);
}

/** What a recurrent task reads from its descriptor (both task files' first 17 fields agree). */
export interface RecurrentView {
  buffer: ArrayBufferLike;
  d: Int32Array;
  B: number;
  T: number;
  H: number;
  /** Whether dvalues hold every step's outputs ([B, T, H]) or the last step's ([B, H]). */
  sequences: boolean;
  /** This thread's packed rows and edge tile, byte offsets. */
  left: number;
  tile: number;
}

/**
 * Reads the descriptor at byte `descriptor` for `thread`, whose tasks take at most `count`
 * rows of `gates`·H gate columns; `fields` is the descriptor's length before `pages`.
 */
export function readRecurrent(
  context: TaskContext,
  thread: number,
  descriptor: number,
  count: number,
  gates: number,
  fields: number,
  what: string,
): RecurrentView {
  const buffer = taskBuffer(context, descriptor, fields, what);
  const d = new Int32Array(buffer, descriptor, 32);
  const H = d[11];
  const [left, tile] = recurrentScratch(count, gates * H, d[15], d[16])
    .map((offset) => (d[13] + thread * d[14] + offset) * 4);
  return { buffer, d, B: d[9], T: d[10], H, sequences: d[12] === 1, left, tile };
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
  const { d, B, T, H, left, tile } = readRecurrent(
    context,
    thread,
    descriptor,
    count,
    4,
    18,
    "LSTM task",
  );
  const x = context.exports[0] as TaskKernelExports & LstmCellKernels;
  const G = 4 * H;
  for (let t = 0; t < T; t++) {
    const row = t * B + first; // the task's first row at step t
    // h₀ = 0 and c₀ = 0: the first step has no recurrent term and no previous cell (−1).
    if (t > 0) {
      x.packColsL((d[3] + (row - B) * H) * 4, H, count, H, left);
      x.gemm(left, d[8] * 4, (d[0] + row * G) * 4, count, G, H, G, 1, tile);
    }
    const prev = t > 0 ? (d[1] + (row - B) * H) * 4 : -1;
    const [cells, tanhCells, hiddens] = [d[1], d[2], d[3]].map((at) => (at + row * H) * 4);
    x.lstmForwardCells((d[0] + row * G) * 4, cells, tanhCells, hiddens, prev, count, H, d[17] * 4);
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
  const { d, B, T, H, sequences, left, tile } = readRecurrent(
    context,
    thread,
    descriptor,
    count,
    4,
    18,
    "LSTM task",
  );
  const x = context.exports[0] as TaskKernelExports & LstmCellKernels;
  const G = 4 * H;
  const [dh, dc] = [(d[6] + first * H) * 4, (d[7] + first * H) * 4];
  for (let t = T - 1; t >= 0; t--) {
    const row = t * B + first; // the task's first row at step t
    // dvalues [B, T, H] adds to every step (mode 1); [B, H] is the last step's dh (mode 2).
    const mode = sequences ? 1 : t === T - 1 ? 2 : 0;
    const dv = (d[4] + (sequences ? first * T + t : first) * H) * 4;
    const prev = t > 0 ? (d[1] + (row - B) * H) * 4 : -1;
    const [gates, tanhCells, dgates] = [(d[0] + row * G) * 4, (d[2] + row * H) * 4]
      .concat([(d[5] + row * G) * 4]);
    const stride = (sequences ? T * H : H) * 4;
    x.lstmBackwardCells(gates, tanhCells, prev, dgates, dh, dc, dv, stride, mode, count, H);
    // h₀ is a constant: nothing flows back from the first step.
    if (t > 0) {
      x.packColsL(dgates, G, count, G, left);
      x.gemm(left, d[8] * 4, dh, count, H, G, H, 0, tile);
    }
  }
}
