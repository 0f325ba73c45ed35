// BatchNorm's loops (layers/batch_norm.ts) as pool tasks over ranges of planes (a plane is
// one feature of one sample: `positions` values). The sums are per plane, each in float64
// in the order of its values, and the layer adds a feature's planes in the order of the
// samples, as its own loop does; the element-wise passes compute the loop's expressions in
// its order. So the bits are the loop's on any thread count. Like the other task files these
// functions are copied into the workers' source, so they stay self-contained.
//
// A task is fn(context, thread, descriptor, first, count) over planes [first, first + count)
// of the pass that the Int32 descriptor at byte `descriptor` describes (written by
// writeBatchNormDescriptor; the field order is fixed there). x, dvalues and out are element
// offsets in the module's type; the coefficients and the sums are float64 element offsets.
import type { TaskContext } from "./_task_context.ts";
import { taskBuffer } from "./_task_buffer.ts";

/** Where a BatchNorm pass's arrays lie (see the file's header; −1 for none). */
export interface BatchNormPlacement {
  /** 0: float32, 1: float64. */
  module: number;
  batch: number;
  features: number;
  positions: number;
  /** The index of the pass in `BATCH_NORM_PASSES` (core/backend.ts). */
  pass: number;
  x: number;
  dvalues: number;
  out: number;
  /** [k, features] float64: the pass's per-feature coefficients, in the order named above. */
  coefficients: number;
  /** [N·features] float64 each. */
  sums: number;
  dots: number;
}

/** Writes the descriptor that {@linkcode batchNormTask} reads, at `ints[at, at + 32)`. */
export function writeBatchNormDescriptor(
  ints: Int32Array,
  at: number,
  p: BatchNormPlacement,
): void {
  ints.set([
    p.module,
    p.batch,
    p.features,
    p.positions,
    p.pass,
    p.x,
    p.dvalues,
    p.out,
    p.coefficients,
    p.sums,
    p.dots,
    ints.buffer.byteLength / 65536, // field 11: pages the tasks' views must cover
  ], at);
}

/** The task: planes [first, first + count) of the descriptor's pass. */
export function batchNormTask(
  context: TaskContext,
  _thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const buffer = taskBuffer(context, descriptor, 11, "BatchNorm task");
  const d = new Int32Array(buffer, descriptor, 32);
  const features = d[2], positions = d[3], pass = d[4];
  const planes = d[1] * features, length = planes * positions;
  const view = (at: number) =>
    d[0] === 1
      ? new Float64Array(buffer, at * 8, length)
      : new Float32Array(buffer, at * 4, length);
  const x = d[5] >= 0 ? view(d[5]) : null, dv = d[6] >= 0 ? view(d[6]) : null;
  const out = d[7] >= 0 ? view(d[7]) : null;
  const k = new Float64Array(buffer, d[8] * 8, 5 * features);
  const sums = d[9] >= 0 ? new Float64Array(buffer, d[9] * 8, planes) : null;
  const dots = d[10] >= 0 ? new Float64Array(buffer, d[10] * 8, planes) : null;
  for (let plane = first; plane < first + count; plane++) {
    const f = plane % features, start = plane * positions, end = start + positions;
    if (pass === 0) {
      let sum = 0;
      for (let i = start; i < end; i++) sum += x![i];
      sums![plane] = sum;
    } else if (pass === 1) {
      const mu = k[f];
      let sum = 0;
      for (let i = start; i < end; i++) sum += (x![i] - mu) * (x![i] - mu);
      sums![plane] = sum;
    } else if (pass === 2) {
      const mu = k[f];
      let sum = 0, dot = 0;
      for (let i = start; i < end; i++) {
        sum += dv![i];
        dot += dv![i] * (x![i] - mu);
      }
      sums![plane] = sum;
      dots![plane] = dot;
    } else if (pass === 3) {
      const scale = k[f], shift = k[features + f];
      for (let i = start; i < end; i++) out![i] = x![i] * scale + shift;
    } else if (pass === 4) {
      const scale = k[f], meanDv = k[features + f], mu = k[2 * features + f];
      const istd = k[3 * features + f], meanDvXhat = k[4 * features + f];
      for (let i = start; i < end; i++) {
        out![i] = scale * (dv![i] - meanDv - (x![i] - mu) * istd * meanDvXhat);
      }
    } else {
      const scale = k[f];
      for (let i = start; i < end; i++) out![i] = scale * dv![i];
    }
  }
}
