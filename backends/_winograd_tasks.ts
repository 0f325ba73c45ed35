// Winograd F(2×2, 3×3)'s whole convolution (layers/_winograd.ts) as one pool job on the
// float32 kernels: each task takes units of `group` samples through the three stages in its
// thread's scratch (input tiles V [16, C, n], the 16 products M[ξ] = U[ξ]·V[ξ] into
// M [16, O, n], the output tiles), so that V and M, n = group·tilesH·tilesW tiles, stay in
// the core's cache; done a whole chunk at a time they went through memory (6 and 13 MB for
// W4's second layer), and the 16 products were 16 pool jobs. Units are fixed by the sizes,
// and each output element is summed by the same kernels in the same order whichever thread
// takes its unit: the same bits on any thread count.
//
// Self-contained, as every task file (see backends/_tasks.ts): function declarations that
// call only each other and their arguments.
import type { TaskContext } from "./_task_context.ts";
import { taskBuffer } from "./_task_buffer.ts";

/** The sizes of one Winograd convolution (forward, or the input gradient's). */
export interface WinogradConvShape {
  /** N */
  batch: number;
  /** Channels of `x` (the reduction). */
  channels: number;
  height: number;
  width: number;
  /** Channels of `y`. */
  out: number;
  outH: number;
  outW: number;
  /** Zeros above and left of `x` (negative: rows or columns cut). */
  top: number;
  left: number;
}

/** The sizes and places of a whole Winograd convolution (element offsets; −1 for none). */
export interface WinogradConvDescriptor {
  /** Channels of x (the products' depth), its height and width. */
  channels: number;
  height: number;
  width: number;
  /** Zeros above and left of x (negative: rows or columns cut). */
  top: number;
  left: number;
  /** Channels of y, its height and width. */
  out: number;
  outH: number;
  outW: number;
  /** x [N, C, H, W] and y [N, O, OH, OW]. */
  x: number;
  y: number;
  /** The 16 kernels U[ξ] [O, C], each packed as a product's left operand, one after another. */
  packedKernels: number;
  /** bias [O], or −1. */
  bias: number;
  /** The first thread's scratch; thread t's starts `scratchLength`·t further. */
  scratch: number;
  scratchLength: number;
  /** Samples a task takes through the three stages at once. */
  group: number;
  /** The kernels' register tile. */
  mr: number;
  nr: number;
  /**
   * The weights' gradient (`y` then holds dvalues): each part's sums dU [16, O, C] of
   * `partSamples` samples, [parts, 16, O, C], and of the biases' gradient, [parts, O], or −1.
   */
  parts?: number;
  biasParts?: number;
  partSamples?: number;
}

/** Writes the descriptor that the tasks below read, at `ints[at, at + 32)`. */
export function writeWinogradConvDescriptor(
  ints: Int32Array,
  at: number,
  z: WinogradConvDescriptor,
): void {
  ints.set([
    0,
    z.channels,
    z.height,
    z.width,
    z.top,
    z.left,
    z.out,
    z.outH,
    z.outW,
    z.x,
    z.y,
    z.packedKernels,
    z.bias,
    z.scratch,
    z.scratchLength,
    z.group,
    z.mr,
    z.nr,
    ints.buffer.byteLength / 65536, // field 18: pages the tasks' views must cover
    z.parts ?? -1,
    z.biasParts ?? -1,
    z.partSamples ?? 0,
  ], at);
}

/**
 * Elements of a thread's scratch the Winograd transforms of one plane of tiles [tilesH,
 * tilesW] use: its padded copy (input) or staged outputs (output), 16-element aligned.
 */
export function winogradPlaneScratch(tilesH: number, tilesW: number): number {
  const groupsW = Math.ceil(tilesW / 4);
  const plane = Math.max((8 * groupsW + 2) * (2 * tilesH + 2), 8 * groupsW * 2 * tilesH);
  return (plane + 15) & ~15;
}

/**
 * One thread's scratch for units of `tiles` tiles (tilesH × tilesW each sample) with
 * `channels` in and `out` out, on an mr × nr tile, as element offsets: [the transforms'
 * padded plane or staged outputs, V [16, channels, tiles], one packed V[ξ], M [16, out,
 * tiles], the products' edge tile, total length]; each 16-element aligned.
 */
export function winogradConvScratch(
  tilesH: number,
  tilesW: number,
  tiles: number,
  channels: number,
  out: number,
  mr: number,
  nr: number,
): number[] {
  const up = (n: number) => (n + 15) & ~15;
  const v = winogradPlaneScratch(tilesH, tilesW);
  const packed = v + up(16 * channels * tiles);
  const m = packed + up(Math.ceil(tiles / nr) * nr * channels);
  const tile = m + up(16 * out * tiles);
  return [0, v, packed, m, tile, tile + up(mr * nr)];
}

/**
 * One thread's scratch for the weights' gradient, units of `tiles` tiles, as element
 * offsets: [the transforms' padded plane or stage, V [16, channels, tiles], dM [16, out,
 * tiles], the packed dM[ξ] and V[ξ], the products' edge tile, outH·outW ones, total length].
 */
export function winogradWeightsScratch(
  tilesH: number,
  tilesW: number,
  tiles: number,
  channels: number,
  out: number,
  mr: number,
  nr: number,
  positions: number,
): number[] {
  const up = (n: number) => (n + 15) & ~15;
  const v = winogradPlaneScratch(tilesH, tilesW);
  const dm = v + up(16 * channels * tiles);
  const left = dm + up(16 * out * tiles);
  const right = left + up(Math.ceil(out / mr) * mr * tiles);
  const tile = right + up(Math.ceil(channels / nr) * nr * tiles);
  const ones = tile + up(mr * nr);
  return [0, v, dm, left, right, tile, ones, ones + up(positions)];
}

/** A task's view of its Winograd job: the descriptor's sizes, as written above. */
export interface WinogradView {
  d: Int32Array;
  heap: Float32Array;
  kernels: TaskContext["exports"][number];
  channels: number;
  height: number;
  width: number;
  top: number;
  left: number;
  out: number;
  outH: number;
  outW: number;
  tilesH: number;
  tilesW: number;
  /** Samples per unit. */
  group: number;
  mr: number;
  nr: number;
  /** The first element of this thread's scratch. */
  base: number;
}

/**
 * Reads the descriptor at byte `descriptor` for `thread`.
 *
 * @throws {Error} naming `what` when the memory's buffer is shorter than the caller's.
 */
export function readWinograd(
  context: TaskContext,
  thread: number,
  descriptor: number,
  what: string,
): WinogradView {
  const buffer = taskBuffer(context, descriptor, 18, what);
  const d = new Int32Array(buffer, descriptor, 32);
  return {
    d,
    heap: new Float32Array(buffer),
    kernels: context.exports[0],
    channels: d[1],
    height: d[2],
    width: d[3],
    top: d[4],
    left: d[5],
    out: d[6],
    outH: d[7],
    outW: d[8],
    tilesH: (d[7] + 1) >> 1,
    tilesW: (d[8] + 1) >> 1,
    group: d[15],
    mr: d[16],
    nr: d[17],
    base: d[13] + thread * d[14],
  };
}

/**
 * V [16, C, tiles] at byte `v` = the input tiles of samples [unit, unit + samples) of x
 * (tiles = samples·tilesH·tilesW), through the padded plane at byte `pad`.
 */
export function transformInputs(
  w: WinogradView,
  unit: number,
  samples: number,
  pad: number,
  v: number,
): void {
  const { channels, height, width, top, left, tilesH, tilesW } = w;
  const perSample = tilesH * tilesW, tiles = samples * perSample, stride = channels * tiles * 4;
  const padW = 8 * Math.ceil(tilesW / 4) + 2, padH = 2 * tilesH + 2;
  const [rLo, rHi] = [Math.max(0, top), Math.min(padH, top + height)];
  const [qLo, qHi] = [Math.max(0, left), Math.min(padW, left + width)];
  for (let s = 0; s < samples; s++) {
    for (let c = 0; c < channels; c++) {
      const image = w.d[9] + ((unit + s) * channels + c) * height * width;
      const origin = (image - top * width - left) * 4; // may be negative: i32 wraps
      const at = v + (c * tiles + s * perSample) * 4;
      w.kernels.winogradInput!(
        origin,
        width,
        pad,
        rLo,
        rHi,
        qLo,
        qHi,
        padW,
        at,
        stride,
        tilesH,
        tilesW,
      );
    }
  }
}

// y[s] = bias + Aᵀ·(U[ξ]·(Bᵀ·x[s]·B)[ξ])_ξ·A for the units of samples in [first, first + count)
/** The task: samples [first, first + count), `group` at a time from `first`. */
export function winogradConvTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const w = readWinograd(context, thread, descriptor, "Winograd convolution task");
  const { d, heap, kernels, channels, out, outH, outW, tilesH, tilesW, group, mr } = w;
  const perSample = tilesH * tilesW, stageW = 8 * Math.ceil(tilesW / 4);
  const [pad, v, packed, m, tile] = winogradConvScratch(
    tilesH,
    tilesW,
    group * perSample,
    channels,
    out,
    mr,
    w.nr,
  ).map((offset) => (w.base + offset) * 4);
  const kernelPanel = Math.ceil(out / mr) * mr * channels * 4;
  for (let unit = first; unit < first + count; unit += group) {
    const samples = Math.min(group, first + count - unit), tiles = samples * perSample;
    const vStride = channels * tiles * 4, mStride = out * tiles * 4;
    transformInputs(w, unit, samples, pad, v);
    for (let xi = 0; xi < 16; xi++) {
      kernels.packRowsR(v + xi * vStride, tiles, channels, tiles, packed);
      const kernel = d[11] * 4 + xi * kernelPanel, product = m + xi * mStride;
      kernels.gemm(kernel, packed, product, out, tiles, channels, tiles, 0, tile);
    }
    for (let s = 0; s < samples; s++) {
      for (let o = 0; o < out; o++) {
        const at = m + (o * tiles + s * perSample) * 4;
        const y = (d[10] + ((unit + s) * out + o) * outH * outW) * 4;
        const bias = d[12] >= 0 ? heap[d[12] + o] : 0;
        kernels.winogradOutput!(at, mStride, bias, pad, stageW, tilesH, tilesW, y, outH, outW);
      }
    }
  }
}

// dU(part)[ξ] = Σ_units dM[ξ]·V[ξ]ᵀ with dM = A·dy·Aᵀ and V = Bᵀ·x·B by tiles
// dbias(part) = Σ_samples Σ_p dvalues
/**
 * The weights' gradient task for one part (samples [first, first + count), `partSamples`
 * of them from a multiple of it): its sums dU [16, O, C] and the biases', a unit at a time.
 */
export function winogradWeightsTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const w = readWinograd(context, thread, descriptor, "Winograd weight gradient task");
  const { d, heap, kernels, channels, out, outH, outW, tilesH, tilesW, group } = w;
  const perSample = tilesH * tilesW, positions = outH * outW, stageW = 8 * Math.ceil(tilesW / 4);
  const offsets = winogradWeightsScratch(
    tilesH,
    tilesW,
    group * perSample,
    channels,
    out,
    w.mr,
    w.nr,
    positions,
  ).map((offset) => w.base + offset);
  const [pad, v, dm, packedL, packedR, tile, ones] = offsets.map((offset) => offset * 4);
  for (let p = 0; p < positions; p++) heap[offsets[6] + p] = 1;
  const part = Math.floor(first / d[21]), weights = 16 * out * channels;
  const sums = (d[19] + part * weights) * 4, biasSums = (d[20] + part * out) * 4;
  for (let unit = first; unit < first + count; unit += group) {
    const samples = Math.min(group, first + count - unit), tiles = samples * perSample;
    const vStride = channels * tiles * 4, mStride = out * tiles * 4;
    const load = unit === first ? 0 : 1;
    transformInputs(w, unit, samples, pad, v);
    for (let s = 0; s < samples; s++) {
      const dv = (d[10] + (unit + s) * out * positions) * 4;
      for (let o = 0; o < out; o++) {
        const dy = dv + o * positions * 4, at = dm + (o * tiles + s * perSample) * 4;
        kernels.winogradGradOutput!(dy, outH, outW, pad, stageW, tilesH, tilesW, at, mStride);
      }
      if (d[20] >= 0) {
        kernels.dotRows(dv, ones, biasSums, out, positions, 1, load | (s > 0 ? 1 : 0));
      }
    }
    for (let xi = 0; xi < 16; xi++) {
      kernels.packColsL(dm + xi * mStride, tiles, out, tiles, packedL);
      kernels.packColsR(v + xi * vStride, tiles, channels, tiles, packedR);
      const at = sums + xi * out * channels * 4;
      kernels.gemm(packedL, packedR, at, out, channels, tiles, channels, load, tile);
    }
  }
}
