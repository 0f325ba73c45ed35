// Adam's update as pool tasks, a range of elements each (every element is updated alone, so
// any split gives the same bits). Copied into the workers' source like backends/_conv_tasks.ts:
// self-contained.
//
// The descriptor at byte `descriptor` (128 bytes): Int32 [module, value, grad, momentum, cache,
// pages] (element offsets; the pages the views must cover), then at byte descriptor + 32 the
// eight Float64 scalars of the kernel's call (β₁, 1−β₁, β₂, 1−β₂, −lr, c₁, c₂, ε).
import type { TaskContext } from "./_task_context.ts";
import { taskBuffer } from "./_task_buffer.ts";

/** Writes the descriptor that {@linkcode adamTask} reads, at byte `at` of `buffer`. */
export function writeAdamDescriptor(
  buffer: ArrayBufferLike,
  at: number,
  offsets: readonly [module: number, value: number, grad: number, momentum: number, cache: number],
  scalars: readonly number[],
): void {
  new Int32Array(buffer, at, 6).set([...offsets, buffer.byteLength / 65536]);
  new Float64Array(buffer, at + 32, 8).set(scalars);
}

/** Elements [first, first + count) of the update the descriptor describes. */
export function adamTask(
  context: TaskContext,
  _thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const buffer = taskBuffer(context, descriptor, 5, "Adam task");
  const d = new Int32Array(buffer, descriptor, 5);
  const s = new Float64Array(buffer, descriptor + 32, 8);
  const bytes = d[0] === 1 ? 8 : 4;
  const at = (offset: number) => (offset + first) * bytes;
  context.exports[d[0]].adam(
    at(d[1]),
    at(d[2]),
    at(d[3]),
    at(d[4]),
    count,
    s[0],
    s[1],
    s[2],
    s[3],
    s[4],
    s[5],
    s[6],
    s[7],
  );
}
