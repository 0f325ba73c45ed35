// The LSTM's float32 forward cell loop, one step over a range of batch rows, written once:
// layers/lstm.ts calls it over all rows on the calling thread, and the pool's task
// (backends/_tasks.ts) over the rows of a task, so every row gets the same bits on any thread
// count (the rows are independent). Copied into the workers' source like backends/_conv_tasks.ts: self-contained
// functions that call each other and the float32 gate functions of core/_fast_math.ts, whose
// tables the workers get from `fastMathSource` (core/_fast_math.ts).
//
// The descriptor at byte `descriptor` (128 bytes, Int32): [gates, cells, tanhCells, hiddens,
// pages, t, B, H, T] (element offsets of the float32 arrays, the pages the views must cover,
// then the sizes).
import { sigmoid32, tanh32 } from "../core/_fast_math.ts";
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

/** Writes the descriptor of {@linkcode lstmForwardTask} at byte `at` of `buffer`. */
export function writeLstmDescriptor(
  buffer: ArrayBufferLike,
  at: number,
  offsets: readonly number[],
  sizes: readonly [t: number, B: number, H: number, T: number],
): void {
  new Int32Array(buffer, at, offsets.length + 5).set([
    ...offsets,
    buffer.byteLength / 65536,
    ...sizes,
  ]);
}

/** Rows [first, first + count) of the forward step the descriptor describes. */
export function lstmForwardTask(
  context: TaskContext,
  _thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const buffer = taskBuffer(context, descriptor, 4, "LSTM forward task");
  const d = new Int32Array(buffer, descriptor, 9);
  const t = d[5], B = d[6], H = d[7], T = d[8];
  const view = (offset: number, length: number) => new Float32Array(buffer, offset * 4, length);
  lstmForwardRows32(
    view(d[0], T * B * 4 * H),
    view(d[1], T * B * H),
    view(d[2], T * B * H),
    view(d[3], T * B * H),
    t,
    B,
    H,
    first,
    count,
  );
}
