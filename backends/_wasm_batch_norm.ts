// The wasm backend's BatchNorm passes: the tasks of backends/_batch_norm_tasks.ts over ranges
// of planes, on the worker pool when there is one, else on the calling thread. Only for
// arrays that lie resident in the kernels' memory (layers' training buffers): each pass is a
// single sweep, so copying its arrays in and out would cost more than the pass.
import { BATCH_NORM_PASSES, type BatchNormArrays, type BatchNormPass } from "../core/backend.ts";
import type { TaskHost } from "./_task_context.ts";
import { writeBatchNormDescriptor } from "./_batch_norm_tasks.ts";
import { runTasks, spans } from "./_tasks.ts";
import { MAX_TASKS } from "./pool.ts";

/** One BatchNorm pass on `host`; false when an array it names is not resident there. */
export function batchNormPass(
  host: TaskHost,
  pass: BatchNormPass,
  batch: number,
  features: number,
  positions: number,
  arrays: BatchNormArrays,
): boolean {
  const at = (array?: Float32Array | Float64Array) => array ? host.residentAt(array) : -1;
  const [x, dvalues, out] = [at(arrays.x), at(arrays.dvalues), at(arrays.out)];
  if ((arrays.x && x < 0) || (arrays.dvalues && dvalues < 0) || (arrays.out && out < 0)) {
    return false;
  }
  const planes = batch * features;
  // Above the origin, in float64 elements: the descriptor (32 int32s), five coefficient
  // rows, then the sums and the dots.
  const bytes = host.module === 1 ? 8 : 4;
  const start = Math.ceil((host.origin * bytes) / 8);
  const coefficients = start + 16, sums = coefficients + 5 * features, dots = sums + planes;
  const end = dots + planes;
  const heap = host.reserve(Math.ceil((end * 8) / bytes));
  const wide = new Float64Array(heap.buffer, 0, end);
  arrays.coefficients?.forEach((row, k) => wide.set(row, coefficients + k * features));
  writeBatchNormDescriptor(new Int32Array(heap.buffer), start * 2, {
    module: host.module,
    batch,
    features,
    positions,
    pass: BATCH_NORM_PASSES.indexOf(pass),
    x,
    dvalues,
    out,
    coefficients,
    sums: arrays.sums ? sums : -1,
    dots: arrays.dots ? dots : -1,
  });
  const tasks = Math.min(planes, MAX_TASKS, 8 * host.threads);
  runTasks(host, "batchNorm", start * 8, spans(planes, Math.ceil(planes / tasks)));
  arrays.sums?.set(wide.subarray(sums, sums + planes));
  arrays.dots?.set(wide.subarray(dots, dots + planes));
  return true;
}
