// The GRU's float32 recurrence split by batch rows, as the LSTM's (backends/_recurrent_tasks.ts):
// the samples of a batch are independent, so a task takes a range of rows through all T steps
// by itself (each step's product for its rows, h_{t−1}·U + b_h forward or dh += drec_t·Uᵀ
// backward, against U packed once, then its rows' cells), one job per pass, and every row gets
// the same bits whichever thread runs it and however the rows are grouped (the products sum
// each element in the same order; the cells are per-element code). The cells are the
// functions below, which the layer's own loop (layers/gru.ts) calls on all rows, so they are
// its reference too. Copied into the workers' source like backends/_conv_tasks.ts:
// self-contained functions that call each other, the gate functions of core/_fast_math.ts and
// the kernels.
//
// Dimension letters: B batch, T time steps, H hidden, G = 3·H gate columns (r | z | n).
//
// The descriptor at byte `descriptor` (128 bytes), Int32: [gates, recurrent, hiddens, dvalues,
// dgates, drecurrent, dh, packedU, biases, B, T, H, sequences, scratch, scratchLength, mr, nr,
// pages], element offsets of float32 arrays (−1 for those a pass does not use), then sizes.
import { sigmoid, tanh } from "../core/_fast_math.ts";
import type { FloatArray } from "../core/tensor.ts";
import type { TaskContext } from "./_task_context.ts";
import { addStepGradientRows, readRecurrent } from "./_recurrent_tasks.ts";

/**
 * Step t's gates and h, rows [first, first + count) of the batch: `gates` (x·W + b_i) become
 * r, z, n in place, with `recurrent` (h_{t−1}·U + b_h) added; h is written at step t of
 * `hiddens`.
 */
export function gruForwardRows(
  gates: FloatArray, // [T, B, G]
  recurrent: FloatArray, // [T, B, G]
  hiddens: FloatArray, // [T, B, H]
  t: number,
  B: number,
  H: number,
  first: number,
  count: number,
): void {
  const G = 3 * H, BH = B * H;
  for (let b = first; b < first + count; b++) {
    const row = (t * B + b) * G, at = t * BH + b * H, prev = at - BH;
    for (let q = row; q < row + 2 * H; q++) gates[q] = sigmoid(gates[q] + recurrent[q]); // r, z
    for (let j = 0; j < H; j++) {
      const r = gates[row + j], z = gates[row + H + j];
      const n = tanh(gates[row + 2 * H + j] + r * recurrent[row + 2 * H + j]);
      const hPrev = t > 0 ? hiddens[prev + j] : 0; // h₀ = 0
      gates[row + 2 * H + j] = n;
      hiddens[at + j] = (1 - z) * n + z * hPrev;
    }
  }
}

// dpre_n = dh⊙(1−z)⊙(1−n²)  dpre_z = dh⊙(h_{t−1}−n)⊙z(1−z)  dpre_r = dpre_n⊙(h·U_n + b_hn)⊙r(1−r)  dgates = [dpre_r, dpre_z, dpre_n]  drec = [dpre_r, dpre_z, dpre_n⊙r]
/**
 * Step t's gate gradients, rows [first, first + count), from dh (d(loss)/d(h_t), in; its
 * direct part dh⊙z of d(loss)/d(h_{t−1}), out).
 */
export function gruBackwardRows(
  gates: FloatArray, // [T, B, G]: r, z, n
  recurrent: FloatArray, // [T, B, G]
  hiddens: FloatArray, // [T, B, H]
  dgates: FloatArray, // [T, B, G]
  drecurrent: FloatArray, // [T, B, G]
  dh: FloatArray, // [B, H]
  t: number,
  B: number,
  H: number,
  first: number,
  count: number,
): void {
  const G = 3 * H, BH = B * H;
  for (let b = first; b < first + count; b++) {
    const row = (t * B + b) * G, at = t * BH + b * H, prev = at - BH, own = b * H;
    for (let j = 0; j < H; j++) {
      const r = gates[row + j], z = gates[row + H + j], n = gates[row + 2 * H + j];
      const hPrev = t > 0 ? hiddens[prev + j] : 0;
      const dhj = dh[own + j];
      const dn = dhj * (1 - z) * (1 - n * n);
      const dz = dhj * (hPrev - n) * z * (1 - z);
      const dr = dn * recurrent[row + 2 * H + j] * r * (1 - r);
      dgates[row + j] = dr;
      dgates[row + H + j] = dz;
      dgates[row + 2 * H + j] = dn;
      drecurrent[row + j] = dr;
      drecurrent[row + H + j] = dz;
      drecurrent[row + 2 * H + j] = dn * r;
      dh[own + j] = dhj * z;
    }
  }
}

// recurrent_t = b_h (+ h_{t−1}·U for t > 0), then the cells, every step, rows [first, first + count)
/** The forward task: the recurrence of its batch rows through all T steps. */
export function gruForwardTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const view = readRecurrent(context, thread, descriptor, count, 3, 17, "GRU task");
  const { buffer, d, B, T, H, left, tile } = view;
  const x = context.exports[0];
  const G = 3 * H;
  const gates = new Float32Array(buffer, d[0] * 4, T * B * G); // [T, B, G]
  const recurrent = new Float32Array(buffer, d[1] * 4, T * B * G); // [T, B, G]
  const hiddens = new Float32Array(buffer, d[2] * 4, T * B * H); // [T, B, H]
  const biases = new Float32Array(buffer, d[8] * 4, G); // [G]: b_h
  for (let t = 0; t < T; t++) {
    const row = t * B + first; // the task's first row at step t
    for (let r = row; r < row + count; r++) recurrent.set(biases, r * G);
    // h₀ = 0: the first step's recurrent term is b_h alone.
    if (t > 0) {
      x.packColsL((d[2] + (row - B) * H) * 4, H, count, H, left);
      x.gemm(left, d[7] * 4, (d[1] + row * G) * 4, count, G, H, G, 1, tile);
    }
    gruForwardRows(gates, recurrent, hiddens, t, B, H, first, count);
  }
}

// dh_t += dvalues_t   (dgates_t, drec_t) = cell′(dh_t)   dh_{t−1} = dh_t⊙z + drec_t·Uᵀ, rows [first, first + count)
/** The backward task: dgates and drecurrent of its batch rows through all T steps, backwards. */
export function gruBackwardTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const view = readRecurrent(context, thread, descriptor, count, 3, 17, "GRU task");
  const { buffer, d, B, T, H, sequences, left, tile } = view;
  const x = context.exports[0];
  const G = 3 * H;
  const [gates, recurrent, dgates, drecurrent] = [d[0], d[1], d[4], d[5]]
    .map((at) => new Float32Array(buffer, at * 4, T * B * G)); // [T, B, G] each
  const hiddens = new Float32Array(buffer, d[2] * 4, T * B * H); // [T, B, H]
  const dv = new Float32Array(buffer, d[3] * 4, sequences ? B * T * H : B * H); // [B, T, H] or [B, H]
  const dh = new Float32Array(buffer, d[6] * 4, B * H); // [B, H]
  for (let t = T - 1; t >= 0; t--) {
    addStepGradientRows(dv, dh, t, T, H, sequences, first, count);
    gruBackwardRows(gates, recurrent, hiddens, dgates, drecurrent, dh, t, B, H, first, count);
    // h₀ is a constant: nothing flows back from the first step.
    if (t > 0) {
      x.packColsL((d[5] + (t * B + first) * G) * 4, G, count, G, left);
      x.gemm(left, d[7] * 4, (d[6] + first * H) * 4, count, H, G, H, 1, tile);
    }
  }
}
