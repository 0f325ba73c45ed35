// The memory as a pool task sees it (self-contained: its source is copied into the workers',
// see backends/_tasks.ts).
import type { TaskContext } from "./_task_context.ts";

/**
 * The memory's buffer for a task whose 32-element Int32 descriptor at byte `descriptor`
 * gives, in field `pagesField`, the pages its views must cover. A worker's `memory.buffer`
 * can lag behind a grow on the calling thread (the wasm code sees the new pages at once, a
 * JavaScript view only what that buffer covers); `grow(0)` refreshes it. The descriptor
 * itself lies above the resident blocks, so it may be beyond a lagging buffer too.
 *
 * @throws {Error} naming `what` when the refreshed buffer is still too short.
 */
export function taskBuffer(
  context: TaskContext,
  descriptor: number,
  pagesField: number,
  what: string,
): ArrayBufferLike {
  let buffer = context.memory.buffer;
  const pages = () => new Int32Array(buffer, descriptor, 32)[pagesField] * 65536;
  const short = () => buffer.byteLength < descriptor + 128 || buffer.byteLength < pages();
  if (short()) {
    context.memory.grow(0);
    buffer = context.memory.buffer;
    if (short()) {
      const wanted = buffer.byteLength < descriptor + 128 ? descriptor + 128 : pages();
      throw new Error(`${what}: the memory is ${buffer.byteLength} bytes, expected ${wanted}`);
    }
  }
  return buffer;
}
