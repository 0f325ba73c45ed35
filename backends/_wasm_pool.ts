// The wasm backend's max pooling: the tasks of backends/_pool_tasks.ts over ranges of planes,
// on the worker pool when there is one, else on the calling thread. Only for arrays that lie
// resident in the kernels' memory (layers' training buffers): pooling is a single pass, so
// copying its arrays in and out would cost more than the pass itself.
import type { PoolGeometry } from "../core/backend.ts";
import type { FloatArray } from "../core/tensor.ts";
import { type PoolPlacement, writePoolDescriptor } from "./_pool_tasks.ts";
import type { JsTaskName, TaskHost } from "./_task_context.ts";
import { runTasks, spans } from "./_tasks.ts";
import { MAX_TASKS } from "./pool.ts";
import { MAX_THREADS } from "./threads.ts";

/** Max pooling's forward pass on `host`; false when an array is not resident there. */
export function maxPoolForward(
  host: TaskHost,
  x: FloatArray,
  y: FloatArray,
  argmax: Int32Array,
  g: PoolGeometry,
): boolean {
  const [xAt, yAt, argmaxAt] = [host.residentAt(x), host.residentAt(y), host.residentAt(argmax)];
  if (xAt < 0 || yAt < 0 || argmaxAt < 0) return false;
  const placement = { module: host.module, x: xAt, y: yAt, argmax: argmaxAt, dvalues: -1, dx: -1 };
  run(host, "maxPoolForward", g, placement);
  return true;
}

/** Max pooling's backward pass on `host`; false when an array is not resident there. */
export function maxPoolBackward(
  host: TaskHost,
  dvalues: FloatArray,
  dx: FloatArray,
  argmax: Int32Array,
  g: PoolGeometry,
): boolean {
  const [dvAt, dxAt, argmaxAt] = [
    host.residentAt(dvalues),
    host.residentAt(dx),
    host.residentAt(argmax),
  ];
  if (dvAt < 0 || dxAt < 0 || argmaxAt < 0) return false;
  const placement = {
    module: host.module,
    x: -1,
    y: -1,
    argmax: argmaxAt,
    dvalues: dvAt,
    dx: dxAt,
  };
  run(host, "maxPoolBackward", g, placement);
  return true;
}

// The descriptor at the start of the host's scratch (then each thread's i32 of NaN windows,
// from byte 128), then a job over ranges of planes.
function run(host: TaskHost, task: JsTaskName, g: PoolGeometry, placement: PoolPlacement): void {
  const heap = host.reserve(host.origin + 32 + MAX_THREADS);
  const at = host.origin * heap.BYTES_PER_ELEMENT;
  writePoolDescriptor(new Int32Array(heap.buffer), at / 4, g, placement);
  const tasks = Math.min(g.planes, MAX_TASKS, 8 * host.threads);
  runTasks(host, task, at, spans(g.planes, Math.ceil(g.planes / tasks)));
}
