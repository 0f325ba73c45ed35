// The wasm backend's 2-D convolution: the arrays are copied into the kernels' memory once,
// then every sample is lowered and multiplied inside its thread's scratch by the tasks of
// backends/_conv_tasks.ts, on the worker pool when there is one (a job of tasks over groups
// of samples) or on the calling thread. Lowering a sample at a time keeps its columns
// (C·KH·KW × OH·OW, 225 KB for W4's second layer) in the core's cache, where a whole
// batch's columns (14 MB) would go through memory three times and be copied in and out.
import type { ConvGeometry } from "../core/backend.ts";
import type { FloatArray } from "../core/tensor.ts";
import { convScratch, DESCRIPTOR_LENGTH, writeConvDescriptor } from "./_conv_tasks.ts";
import type { TaskHost } from "./_task_context.ts";
import { runTasks, spans } from "./_tasks.ts";
import { MAX_TASKS } from "./pool.ts";

// Backward sums the weights' gradient per group of samples, then over the groups in order:
// at most this many elements of per-group sums, and at most MAX_GROUPS groups.
const PARTS_ELEMENTS = 1 << 22;
const MAX_GROUPS = 256;

const align = (floats: number) => (floats + 15) & ~15;
const panels = (n: number, width: number) => Math.ceil(n / width) * width;

/** Samples per backward group, fixed by the sizes alone (so the same on any thread count). */
export function backwardGroup(batch: number, weights: number): number {
  const groups = Math.max(1, Math.min(batch, MAX_GROUPS, Math.floor(PARTS_ELEMENTS / weights)));
  return Math.ceil(batch / groups);
}

/**
 * Lays out `lengths` one after another from `start` (each 16-element aligned), returning
 * their offsets and the end.
 */
export function layout(start: number, lengths: number[]): number[] {
  const offsets: number[] = [];
  let at = start;
  for (const length of lengths) {
    offsets.push(at);
    at += align(length);
  }
  offsets.push(at);
  return offsets;
}

/**
 * An upper bound on the elements of memory {@linkcode convForward} (or, with `backward`,
 * {@linkcode convBackward}) reserves above the host's origin on `threads` threads, every
 * operand counted as copied: what the wasm backend compares with its memory budget.
 */
export function convElements(
  g: ConvGeometry,
  [mr, nr]: readonly [number, number],
  threads: number,
  backward: boolean,
): number {
  const depth = g.channels * g.kernelH * g.kernelW, positions = g.outH * g.outW;
  const scratch = convScratch(depth + 1, positions, g.outChannels, mr, nr);
  const x = g.batch * g.channels * g.height * g.width;
  const y = g.batch * g.outChannels * positions;
  const weights = g.outChannels * depth;
  const packed = panels(g.outChannels, mr) * (depth + 1) + panels(depth, mr) * g.outChannels;
  const fixed = align(mr * nr) + DESCRIPTOR_LENGTH + packed + 2 * g.outChannels + x + y + 8 * 16;
  const groups = Math.ceil(g.batch / backwardGroup(g.batch, weights));
  const sums = backward ? x + (groups + 1) * (weights + g.outChannels) : 0;
  return fixed + sums + Math.max(threads * scratch[scratch.length - 1], weights);
}

/** `y = conv(x, w) + bias` on `host` (see `Backend.conv2dForward`). */
export function convForward(
  host: TaskHost,
  x: FloatArray,
  w: FloatArray,
  bias: FloatArray | undefined,
  y: FloatArray,
  g: ConvGeometry,
): void {
  const [mr, nr] = host.tile;
  const depth = g.channels * g.kernelH * g.kernelW, positions = g.outH * g.outW;
  const rows = depth + (bias ? 1 : 0); // the biases as a first column of the weights
  const scratch = convScratch(rows, positions, g.outChannels, mr, nr);
  const scratchLength = scratch[scratch.length - 1];
  const [xResident, yResident] = [host.residentAt(x), host.residentAt(y)];
  const [descriptor, packedWeights, biasAt, xCopy, yCopy, scratchAt] = layout(
    host.origin + align(mr * nr),
    [
      DESCRIPTOR_LENGTH,
      panels(g.outChannels, mr) * rows,
      bias ? g.outChannels : 0,
      xResident < 0 ? x.length : 0,
      yResident < 0 ? y.length : 0,
    ],
  );
  const weights = g.outChannels * rows;
  const heap = host.reserve(scratchAt + Math.max(host.threads * scratchLength, weights));
  const bytes = heap.BYTES_PER_ELEMENT;
  const xAt = xResident < 0 ? xCopy : xResident, yAt = yResident < 0 ? yCopy : yResident;
  if (xResident < 0) heap.set(x, xAt);
  if (bias) heap.set(bias, biasAt);
  // [bias | w] [O, rows] as the left operand of the products, packed once for every sample
  // (from a spare spot: the scratch, which the tasks overwrite afterwards).
  if (bias) {
    for (let o = 0; o < g.outChannels; o++) {
      heap[scratchAt + o * rows] = bias[o];
      heap.set(w.subarray(o * depth, (o + 1) * depth), scratchAt + o * rows + 1);
    }
  } else heap.set(w, scratchAt);
  host.exports.packColsL(scratchAt * bytes, rows, g.outChannels, rows, packedWeights * bytes);
  writeConvDescriptor(new Int32Array(heap.buffer), descriptor * bytes / 4, g, {
    module: host.module,
    tile: host.tile,
    x: xAt,
    y: yAt,
    packedWeights,
    bias: bias ? biasAt : -1,
    dx: -1,
    weightParts: -1,
    biasParts: -1,
    scratch: scratchAt,
    scratchLength,
    group: 1,
  });
  const tasks = Math.min(g.batch, MAX_TASKS, 8 * host.threads);
  runTasks(host, "convForward", descriptor * bytes, spans(g.batch, Math.ceil(g.batch / tasks)));
  if (yResident < 0) y.set(heap.subarray(yAt, yAt + y.length));
}

/** The gradients of {@linkcode convForward} on `host` (see `Backend.conv2dBackward`). */
export function convBackward(
  host: TaskHost,
  x: FloatArray,
  w: FloatArray,
  dvalues: FloatArray,
  dw: FloatArray,
  dbias: FloatArray | undefined,
  dx: FloatArray | null,
  g: ConvGeometry,
): void {
  const [mr, nr] = host.tile;
  const out = g.outChannels;
  const depth = g.channels * g.kernelH * g.kernelW, positions = g.outH * g.outW;
  const scratch = convScratch(depth, positions, out, mr, nr);
  const scratchLength = scratch[scratch.length - 1];
  const group = backwardGroup(g.batch, out * depth);
  const groups = Math.ceil(g.batch / group);
  const xResident = host.residentAt(x), dvResident = host.residentAt(dvalues);
  const dxResident = dx ? host.residentAt(dx) : -1;
  const [
    descriptor,
    packedWeights,
    xCopy,
    dvCopy,
    dxCopy,
    weightParts,
    biasParts,
    dwAt,
    dbAt,
    scratchAt,
  ] = layout(host.origin + align(mr * nr), [
    DESCRIPTOR_LENGTH,
    Math.max(panels(depth, mr) * out, w.length),
    xResident < 0 ? x.length : 0,
    dvResident < 0 ? dvalues.length : 0,
    dx && dxResident < 0 ? dx.length : 0,
    groups * out * depth,
    dbias ? groups * out : 0,
    out * depth,
    dbias ? out : 0,
  ]);
  const heap = host.reserve(scratchAt + Math.max(host.threads * scratchLength, w.length));
  const bytes = heap.BYTES_PER_ELEMENT;
  const xAt = xResident < 0 ? xCopy : xResident;
  const dvAt = dvResident < 0 ? dvCopy : dvResident;
  const dxAt = dxResident < 0 ? dxCopy : dxResident;
  if (xResident < 0) heap.set(x, xAt);
  if (dvResident < 0) heap.set(dvalues, dvAt);
  // w [O, C·KH·KW] as the left operand of wᵀ·dvalues, packed once (from a spare spot).
  heap.set(w, scratchAt);
  host.exports.packRowsL(scratchAt * bytes, depth, out, depth, packedWeights * bytes);
  writeConvDescriptor(new Int32Array(heap.buffer), descriptor * bytes / 4, g, {
    module: host.module,
    tile: host.tile,
    x: xAt,
    y: dvAt,
    packedWeights,
    bias: -1,
    dx: dx ? dxAt : -1,
    weightParts,
    biasParts: dbias ? biasParts : -1,
    scratch: scratchAt,
    scratchLength,
    group,
  });
  runTasks(host, "convBackward", descriptor * bytes, spans(g.batch, group));
  // The groups' sums, added to the gradients in the order of the groups.
  heap.set(dw, dwAt);
  host.exports.sumRows(weightParts * bytes, dwAt * bytes, groups, out * depth);
  dw.set(heap.subarray(dwAt, dwAt + dw.length));
  if (dbias) {
    heap.set(dbias, dbAt);
    host.exports.sumRows(biasParts * bytes, dbAt * bytes, groups, out);
    dbias.set(heap.subarray(dbAt, dbAt + out));
  }
  if (dx && dxResident < 0) dx.set(heap.subarray(dxAt, dxAt + dx.length));
}
