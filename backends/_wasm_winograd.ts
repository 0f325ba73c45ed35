// The wasm backend's whole Winograd F(2×2, 3×3) convolution (float32): x copied into the
// kernels' memory unless it lies there, the 16 transformed kernels packed once, then one job
// of backends/_winograd_tasks.ts's task over units of samples, each unit's tiles and
// products kept in its thread's scratch. The weights' gradient likewise: one job over parts
// of the batch, each summing its units' products in Winograd's domain, then the parts in
// order.
import type { FloatArray } from "../core/tensor.ts";
import type { TaskHost } from "./_task_context.ts";
import { runTasks, spans } from "./_tasks.ts";
import {
  winogradConvScratch,
  type WinogradConvShape,
  winogradWeightsScratch,
  writeWinogradConvDescriptor,
} from "./_winograd_tasks.ts";
import { MAX_TASKS } from "./pool.ts";
import { layout } from "./_wasm_conv.ts";

// The weights' gradient is summed in at most this many parts (each a job's task), their
// sums ([parts, 16, O, C]) holding at most PARTS_ELEMENTS elements; then over the parts.
const MAX_PARTS = 16;
const PARTS_ELEMENTS = 1 << 22;

// Tiles a unit of samples should cover: enough columns that the 16 products per unit run
// near the kernel's speed, few enough that V and M ([16, C + O, tiles]) stay in the cache.
const UNIT_TILES = 96;
const DESCRIPTOR_LENGTH = 32;
const align = (floats: number) => (floats + 15) & ~15;

/** The multiply-adds of a Winograd convolution's 16 products (or its weights' gradient's). */
export function winogradWork(shape: WinogradConvShape): number {
  const tiles = ((shape.outH + 1) >> 1) * ((shape.outW + 1) >> 1);
  return 16 * shape.batch * shape.out * shape.channels * tiles;
}

/** Samples per unit: fixed by the sizes alone (so the same on any thread count). */
export function winogradGroup(shape: WinogradConvShape): number {
  const perSample = ((shape.outH + 1) >> 1) * ((shape.outW + 1) >> 1);
  return Math.max(1, Math.min(shape.batch, Math.round(UNIT_TILES / perSample)));
}

// One thread's scratch, and the elements below it: descriptor, packed kernels, bias, copies.
function sizes(shape: WinogradConvShape, [mr, nr]: readonly [number, number]) {
  const tilesH = (shape.outH + 1) >> 1, tilesW = (shape.outW + 1) >> 1;
  const tiles = winogradGroup(shape) * tilesH * tilesW;
  const scratch = winogradConvScratch(tilesH, tilesW, tiles, shape.channels, shape.out, mr, nr);
  const packed = 16 * Math.ceil(shape.out / mr) * mr * shape.channels;
  return { scratchLength: scratch[scratch.length - 1], packed };
}

/**
 * An upper bound on the elements {@linkcode winogradConvolution} reserves above the host's
 * origin on `threads` threads, x and y counted as copied.
 */
export function winogradConvElements(
  shape: WinogradConvShape,
  tile: readonly [number, number],
  threads: number,
): number {
  const { scratchLength, packed } = sizes(shape, tile);
  const x = shape.batch * shape.channels * shape.height * shape.width;
  const y = shape.batch * shape.out * shape.outH * shape.outW;
  const u = 16 * shape.out * shape.channels;
  return align(tile[0] * tile[1]) + DESCRIPTOR_LENGTH + packed + shape.out + x + y + 6 * 16 +
    Math.max(threads * scratchLength, u);
}

/** y = the convolution of x whose transformed kernels are u [16, O, C], + bias, on `host`. */
export function winogradConvolution(
  host: TaskHost,
  x: FloatArray,
  u: FloatArray,
  y: FloatArray,
  shape: WinogradConvShape,
  bias?: FloatArray,
): void {
  const [mr, nr] = host.tile;
  const { scratchLength, packed } = sizes(shape, host.tile);
  const [xResident, yResident] = [host.residentAt(x), host.residentAt(y)];
  const [descriptor, packedKernels, biasAt, xCopy, yCopy, scratch] = layout(
    host.origin + align(mr * nr),
    [
      DESCRIPTOR_LENGTH,
      packed,
      bias ? shape.out : 0,
      xResident < 0 ? x.length : 0,
      yResident < 0 ? y.length : 0,
    ],
  );
  const xAt = xResident < 0 ? xCopy : xResident, yAt = yResident < 0 ? yCopy : yResident;
  const heap = host.reserve(scratch + Math.max(host.threads * scratchLength, u.length));
  if (xResident < 0) heap.set(x, xAt);
  if (bias) heap.set(bias, biasAt);
  // Each U[ξ] [O, C] as a product's left operand, packed once for every unit (from a spare
  // spot: the scratch, which the tasks overwrite afterwards).
  heap.set(u, scratch);
  const plane = shape.out * shape.channels, panel = Math.ceil(shape.out / mr) * mr * shape.channels;
  for (let xi = 0; xi < 16; xi++) {
    const from = (scratch + xi * plane) * 4, to = (packedKernels + xi * panel) * 4;
    host.exports.packColsL(from, shape.channels, shape.out, shape.channels, to);
  }
  const group = winogradGroup(shape);
  writeWinogradConvDescriptor(new Int32Array(heap.buffer), descriptor, {
    ...shape,
    x: xAt,
    y: yAt,
    packedKernels,
    bias: bias ? biasAt : -1,
    scratch,
    scratchLength,
    group,
    mr,
    nr,
  });
  const units = Math.ceil(shape.batch / group);
  const tasks = Math.min(units, MAX_TASKS, 8 * host.threads);
  runTasks(
    host,
    "winogradConv",
    descriptor * 4,
    spans(shape.batch, group * Math.ceil(units / tasks)),
  );
  if (yResident < 0) y.set(heap.subarray(yAt, yAt + y.length));
}

/** Samples per part of the weights' gradient: whole units, fixed by the sizes alone. */
export function winogradPartSamples(shape: WinogradConvShape): number {
  const group = winogradGroup(shape), units = Math.ceil(shape.batch / group);
  const most = Math.floor(PARTS_ELEMENTS / (16 * shape.out * shape.channels));
  const parts = Math.max(1, Math.min(units, MAX_PARTS, most));
  return group * Math.ceil(units / parts);
}

// One thread's scratch for the weights' gradient.
function weightSizes(shape: WinogradConvShape, [mr, nr]: readonly [number, number]): number {
  const tilesH = (shape.outH + 1) >> 1, tilesW = (shape.outW + 1) >> 1;
  const tiles = winogradGroup(shape) * tilesH * tilesW, positions = shape.outH * shape.outW;
  const { channels, out } = shape;
  const scratch = winogradWeightsScratch(tilesH, tilesW, tiles, channels, out, mr, nr, positions);
  return scratch[scratch.length - 1];
}

/**
 * An upper bound on the elements {@linkcode winogradWeightGradient} reserves above the
 * host's origin on `threads` threads, x and dvalues counted as copied.
 */
export function winogradWeightElements(
  shape: WinogradConvShape,
  tile: readonly [number, number],
  threads: number,
): number {
  const parts = Math.ceil(shape.batch / winogradPartSamples(shape));
  const weights = 16 * shape.out * shape.channels;
  const x = shape.batch * shape.channels * shape.height * shape.width;
  const dv = shape.batch * shape.out * shape.outH * shape.outW;
  return align(tile[0] * tile[1]) + DESCRIPTOR_LENGTH + (parts + 1) * (weights + shape.out) +
    x + dv + 8 * 16 + threads * weightSizes(shape, tile);
}

/**
 * The weights' gradient in Winograd's domain on `host`: du [16, O, C] = Σ over the tiles of
 * (A·dvalues·Aᵀ)[ξ]·(Bᵀ·x·B)[ξ]ᵀ (overwritten; layers/_winograd.ts turns it into the
 * kernels' gradient), and dbias[o] += Σ dvalues[·, o, ·, ·] when given.
 */
export function winogradWeightGradient(
  host: TaskHost,
  x: FloatArray,
  dvalues: FloatArray,
  du: FloatArray,
  dbias: FloatArray | undefined,
  shape: WinogradConvShape,
): void {
  const [mr, nr] = host.tile;
  const scratchLength = weightSizes(shape, host.tile);
  const partSamples = winogradPartSamples(shape);
  const parts = Math.ceil(shape.batch / partSamples), out = shape.out;
  const [xResident, dvResident] = [host.residentAt(x), host.residentAt(dvalues)];
  const [descriptor, sums, biasSums, duAt, dbAt, xCopy, dvCopy, scratch] = layout(
    host.origin + align(mr * nr),
    [
      DESCRIPTOR_LENGTH,
      parts * du.length,
      dbias ? parts * out : 0,
      du.length,
      dbias ? out : 0,
      xResident < 0 ? x.length : 0,
      dvResident < 0 ? dvalues.length : 0,
    ],
  );
  const xAt = xResident < 0 ? xCopy : xResident;
  const dvAt = dvResident < 0 ? dvCopy : dvResident;
  const heap = host.reserve(scratch + host.threads * scratchLength);
  if (xResident < 0) heap.set(x, xAt);
  if (dvResident < 0) heap.set(dvalues, dvAt);
  writeWinogradConvDescriptor(new Int32Array(heap.buffer), descriptor, {
    ...shape,
    x: xAt,
    y: dvAt,
    packedKernels: -1,
    bias: -1,
    scratch,
    scratchLength,
    group: winogradGroup(shape),
    mr,
    nr,
    parts: sums,
    biasParts: dbias ? biasSums : -1,
    partSamples,
  });
  runTasks(host, "winogradWeights", descriptor * 4, spans(shape.batch, partSamples));
  // The parts' sums, added up in the order of the parts.
  heap.fill(0, duAt, duAt + du.length);
  host.exports.sumRows(sums * 4, duAt * 4, parts, du.length);
  du.set(heap.subarray(duAt, duAt + du.length));
  if (dbias) {
    heap.set(dbias, dbAt);
    host.exports.sumRows(biasSums * 4, dbAt * 4, parts, out);
    dbias.set(heap.subarray(dbAt, dbAt + out));
  }
}
