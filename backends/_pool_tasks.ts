// The wasm backend's max pooling as pool tasks, a range of planes each (a plane is one
// channel of one sample: its outputs depend on it alone, and its gradient goes into it
// alone). Like backends/_conv_tasks.ts, these functions are copied into the workers' source,
// so they stay self-contained.
//
// A task is fn(context, thread, descriptor, first, count): planes [first, first + count) of
// the pooling that the Int32 descriptor at byte `descriptor` describes (written by
// writePoolDescriptor; the field order is fixed there). Every array lies resident in the
// memory; the offsets are in elements of its type (argmax: int32 elements).
import type { PoolGeometry } from "../core/backend.ts";
import type { TaskContext } from "./_task_context.ts";
import { maxPoolBackwardPlanes, maxPoolPlanes } from "./_pooling.ts";
import { taskBuffer } from "./_task_buffer.ts";

/** Where a pooling's arrays lie in the memory (element offsets; −1 for none). */
export interface PoolPlacement {
  /** 0: float32, 1: float64. */
  module: number;
  /** x [planes, H, W] */
  x: number;
  /** y [planes, OH, OW] (forward) */
  y: number;
  /** argmax [planes, OH, OW], int32 elements */
  argmax: number;
  /** dvalues [planes, OH, OW] (backward) */
  dvalues: number;
  /** dx [planes, H, W] (backward) */
  dx: number;
}

/** Writes the descriptor that the tasks read, at `ints[at, at + 32)`. */
export function writePoolDescriptor(
  ints: Int32Array,
  at: number,
  g: PoolGeometry,
  p: PoolPlacement,
): void {
  ints.set([
    p.module,
    g.height,
    g.width,
    g.outH,
    g.outW,
    g.kernelH,
    g.kernelW,
    g.strideH,
    g.strideW,
    g.padTop,
    g.padLeft,
    p.x,
    p.y,
    p.argmax,
    p.dvalues,
    p.dx,
    g.planes,
    ints.buffer.byteLength / 65536, // field 17: pages the tasks' views must cover
  ], at);
}

/** The forward task: y and argmax of planes [first, first + count). */
export function maxPoolForwardTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const buffer = taskBuffer(context, descriptor, 17, "max pooling task");
  const d = new Int32Array(buffer, descriptor, 32);
  const [height, width, outH, outW] = [d[1], d[2], d[3], d[4]];
  const window = {
    kernelH: d[5],
    kernelW: d[6],
    strideH: d[7],
    strideW: d[8],
    padTop: d[9],
    padLeft: d[10],
  };
  const inputs = d[16] * height * width, outputs = d[16] * outH * outW;
  const f64 = d[0] === 1;
  const square = window.kernelH === 2 && window.kernelW === 2 && window.strideH === 2 &&
    window.strideW === 2 && window.padTop === 0 && window.padLeft === 0;
  const kernel = context.exports[0].maxPool2x2;
  if (!f64 && square && kernel) {
    // The wasm kernel, the loop's rule; a range holding a NaN is redone by the loop below.
    const nan = descriptor + 128 + 4 * thread;
    kernel(d[11] * 4, d[12] * 4, d[13] * 4, first, first + count, height, width, outH, outW, nan);
    if (new Int32Array(buffer, nan, 1)[0] === 0) return;
  }
  const x = floatView(buffer, f64, d[11], inputs), y = floatView(buffer, f64, d[12], outputs);
  const keys = f64 ? null : new Int32Array(buffer, d[11] * 4, inputs);
  const argmax = new Int32Array(buffer, d[13] * 4, outputs);
  maxPoolPlanes(x, keys, y, argmax, first, first + count, height, width, outH, outW, window);
}

/** The backward task: dx of planes [first, first + count), zeroed, then the scatter. */
export function maxPoolBackwardTask(
  context: TaskContext,
  _thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const buffer = taskBuffer(context, descriptor, 17, "max pooling task");
  const d = new Int32Array(buffer, descriptor, 32);
  const plane = d[1] * d[2], outPlane = d[3] * d[4];
  const f64 = d[0] === 1, bytes = f64 ? 8 : 4;
  const kernel = context.exports[0].maxPool2x2Backward;
  if (!f64 && kernel && d[5] === 2 && d[6] === 2 && d[7] === 2 && d[8] === 2 && !d[9] && !d[10]) {
    kernel(d[14] * 4, d[15] * 4, d[13] * 4, first, first + count, d[1], d[2], d[3], d[4]);
    return;
  }
  const dvalues = floatView(buffer, f64, d[14], d[16] * outPlane);
  const dx = floatView(buffer, f64, d[15], d[16] * plane);
  const argmax = new Int32Array(buffer, d[13] * 4, d[16] * outPlane);
  // memory.fill: a shared view's fill runs element by element, ~8× slower.
  context.exports[d[0]].zeroBytes((d[15] + first * plane) * bytes, count * plane * bytes);
  maxPoolBackwardPlanes(dvalues, dx, argmax, first, first + count, outPlane);
}

/** `length` elements of the memory from element `at`, as float64 or float32. */
export function floatView(
  buffer: ArrayBufferLike,
  f64: boolean,
  at: number,
  length: number,
): Float32Array | Float64Array {
  return f64 ? new Float64Array(buffer, at * 8, length) : new Float32Array(buffer, at * 4, length);
}
