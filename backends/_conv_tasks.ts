// The wasm backend's convolution, one task per group of samples: each task lowers its
// samples with im2col into its thread's own scratch (small enough to stay in the core's
// cache), and runs the wasm products on them there. The caller thread and every worker of
// the pool run these same functions: their source text is copied into the workers' source
// (backends/_worker_source.ts), so, like backends/_lowering.ts, they must stay
// self-contained: function declarations that call only each other, the lowering functions
// and their arguments (no module-level constants, no closures).
//
// A task is fn(context, thread, descriptor, first, count): samples [first, first + count)
// of the convolution that the Int32 descriptor at byte offset `descriptor` of the memory
// describes (written by writeConvDescriptor below; the field order is fixed there).
//
// The same bits on any thread count: every sample's products are summed by the same kernel
// in the same order whichever thread runs it, and the weights' gradient is summed per group
// of samples (groups fixed by the batch, not the threads), then over the groups in order.
import { col2im, im2col, rangeEnd, rangeFirst } from "./_lowering.ts";
import type { ConvGeometry, Window2D } from "../core/backend.ts";
import type { TaskContext, TaskKernelExports } from "./_task_context.ts";
import { taskBuffer } from "./_task_buffer.ts";
import type { WinogradConvShape } from "./_winograd_tasks.ts";
import type { FloatArray } from "../core/tensor.ts";

/** Where a convolution's arrays lie in the memory (element offsets; −1 for none). */
export interface ConvPlacement {
  /** 0: float32, 1: float64. */
  module: number;
  /** The register tile of the module's kernels, [mr, nr]. */
  tile: readonly [number, number];
  /** x [N, C, H, W] */
  x: number;
  /** Forward: y [N, O, OH, OW]; backward: dvalues, the same shape. */
  y: number;
  /** The weights [O, C·KH·KW] packed as the product's left operand. */
  packedWeights: number;
  /** Forward: bias [O], or −1. */
  bias: number;
  /** Backward: dx [N, C, H, W], or −1 when the input gradient is not wanted. */
  dx: number;
  /** Backward: the weights' gradient of each group of samples, [groups, O·C·KH·KW]. */
  weightParts: number;
  /** Backward: the biases' gradient of each group, [groups, O], or −1. */
  biasParts: number;
  /** The first thread's scratch; thread t's starts `scratchLength`·t further. */
  scratch: number;
  /** Elements of one thread's scratch ({@linkcode convScratch}'s last entry). */
  scratchLength: number;
  /** Samples per group (backward), each group one task. */
  group: number;
}

/** Int32 elements of a descriptor. */
export const DESCRIPTOR_LENGTH = 32;

/** Writes the descriptor that the tasks read, at `ints[at, at + DESCRIPTOR_LENGTH)`. */
export function writeConvDescriptor(
  ints: Int32Array,
  at: number,
  g: ConvGeometry,
  p: ConvPlacement,
): void {
  ints.set([
    p.module,
    g.channels,
    g.height,
    g.width,
    g.outChannels,
    g.outH,
    g.outW,
    g.kernelH,
    g.kernelW,
    g.strideH,
    g.strideW,
    g.dilationH,
    g.dilationW,
    g.padTop,
    g.padBottom,
    g.padLeft,
    g.padRight,
    p.tile[0],
    p.tile[1],
    p.x,
    p.y,
    p.packedWeights,
    p.bias,
    p.dx,
    p.weightParts,
    p.biasParts,
    p.scratch,
    p.scratchLength,
    p.group,
    ints.buffer.byteLength / 65536, // pages the tasks' views must cover
  ], at);
}

/**
 * One thread's scratch for a convolution with `depth` = C·KH·KW, `positions` = OH·OW and
 * `out` = O, on kernels with an mr × nr tile, as element offsets: [cols [depth, P], the left
 * panels of dvalues, the right panels (of cols, or of dvalues), dcols [depth, P], the edge
 * tile, P ones (for the biases' gradient), total length]; each 16-element aligned.
 */
export function convScratch(
  depth: number,
  positions: number,
  out: number,
  mr: number,
  nr: number,
): number[] {
  const up = (n: number) => (n + 15) & ~15;
  const panels = (n: number, width: number) => Math.ceil(n / width) * width;
  const right = Math.max(
    panels(positions, nr) * Math.max(depth, out),
    panels(depth, nr) * positions,
  );
  const cols = 0;
  const left = cols + up(depth * positions);
  const packedRight = left + up(panels(out, mr) * positions);
  const dcols = packedRight + up(right);
  const tile = dcols + up(depth * positions);
  const ones = tile + up(mr * nr);
  return [cols, left, packedRight, dcols, tile, ones, ones + up(positions)];
}

/** A task's view of its convolution: the descriptor's sizes and its thread's scratch. */
export interface ConvView {
  /** Bytes per element. */
  bytes: number;
  /** The whole memory as elements. */
  heap: Float32Array | Float64Array;
  /** The kernels of the element type. */
  kernels: TaskKernelExports;
  channels: number;
  height: number;
  width: number;
  out: number;
  outH: number;
  outW: number;
  window: Window2D;
  /** OH·OW */
  positions: number;
  /** C·KH·KW */
  depth: number;
  /** The descriptor, as written by {@linkcode writeConvDescriptor}. */
  d: Int32Array;
  /**
   * Element offsets in the memory of this thread's scratch (see {@linkcode convScratch}):
   * forward with biases, a row of P ones (`onesRow`) above the columns (`cols`), else both
   * the columns.
   */
  onesRow: number;
  cols: number;
  left: number;
  right: number;
  dcols: number;
  tile: number;
  ones: number;
  /** Whether a row of columns is the image shifted (stride 1, outputs as wide as the input). */
  contiguous: boolean;
  /** The columns of one sample, [depth, positions], in the scratch. */
  colsView: Float32Array | Float64Array;
  /** The inputs from their first element on. */
  x: Float32Array | Float64Array;
}

/**
 * Reads the descriptor at byte `descriptor` for `thread` (see {@linkcode writeConvDescriptor}).
 *
 * @throws {Error} when the memory's buffer is shorter than the caller's.
 */
export function readConv(context: TaskContext, thread: number, descriptor: number): ConvView {
  const buffer = taskBuffer(context, descriptor, 29, "convolution task");
  const d = new Int32Array(buffer, descriptor, 32);
  const heap = d[0] === 1 ? new Float64Array(buffer) : new Float32Array(buffer);
  const [channels, height, width, out, outH, outW] = [d[1], d[2], d[3], d[4], d[5], d[6]];
  const positions = outH * outW, depth = channels * d[7] * d[8];
  const base = d[26] + thread * d[27];
  // Forward with biases: a row of ones above the columns (see convForwardTask).
  const biasRow = d[22] >= 0 ? 1 : 0;
  const [onesRow, left, right, dcols, tile, ones] = convScratch(
    depth + biasRow,
    positions,
    out,
    d[17],
    d[18],
  ).map((offset) => base + offset);
  const cols = onesRow + biasRow * positions;
  return {
    bytes: d[0] === 1 ? 8 : 4,
    heap,
    kernels: context.exports[d[0]],
    channels,
    height,
    width,
    out,
    outH,
    outW,
    window: {
      kernelH: d[7],
      kernelW: d[8],
      strideH: d[9],
      strideW: d[10],
      dilationH: d[11],
      dilationW: d[12],
      padTop: d[13],
      padBottom: d[14],
      padLeft: d[15],
      padRight: d[16],
    },
    positions,
    depth,
    d,
    onesRow,
    cols,
    left,
    right,
    dcols,
    tile,
    ones,
    contiguous: d[9] === 1 && d[10] === 1 && outW === width,
    colsView: heap.subarray(cols, cols + depth * positions),
    x: heap.subarray(d[19]),
  };
}

// y[s] = [bias | W]·[1; im2col(x[s])] for samples [first, first + count).
/**
 * The forward task: `y[s, O, P] = bias + W[O, C·KH·KW]·cols(s)` for its samples, the biases
 * as the first column of the packed weights against a row of ones above the columns, so that
 * y is written once by the product (a pass setting y to the biases first cost W4's first
 * layer a third of its time) and every sum still starts from its bias.
 */
export function convForwardTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const v = readConv(context, thread, descriptor);
  const { bytes, heap, d, out, positions } = v;
  const rows = v.depth + (v.cols - v.onesRow) / positions;
  for (let p = v.onesRow; p < v.cols; p++) heap[p] = 1;
  for (let s = first; s < first + count; s++) {
    lowerSample(v, s);
    v.kernels.packRowsR(v.onesRow * bytes, positions, rows, positions, v.right * bytes);
    const y = d[20] + s * out * positions;
    const [w, right, tile] = [d[21] * bytes, v.right * bytes, v.tile * bytes];
    v.kernels.gemm(w, right, y * bytes, out, positions, rows, positions, 0, tile);
  }
}

// dW(group) = Σ_s dvalues[s]·cols(s)ᵀ   dbias(group) = Σ_s Σ_p dvalues[s]
// dx[s] = col2im(Wᵀ·dvalues[s])
/**
 * The backward task for one group of samples: the group's share of the weights' and biases'
 * gradients, summed over its samples in order, and each sample's input gradient.
 */
export function convBackwardTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const v = readConv(context, thread, descriptor);
  const { bytes, heap, d, out, positions, depth, kernels } = v;
  const [left, right, tile] = [v.left * bytes, v.right * bytes, v.tile * bytes];
  const plane = v.height * v.width;
  const part = Math.floor(first / d[28]);
  const weightPart = d[24] + part * out * depth, biasPart = d[25] + part * out;
  for (let s = first; s < first + count; s++) {
    const dv = d[20] + s * out * positions, load = s === first ? 0 : 1;
    lowerSample(v, s);
    kernels.packColsL(dv * bytes, positions, out, positions, left);
    kernels.packColsR(v.cols * bytes, positions, depth, positions, right);
    kernels.gemm(left, right, weightPart * bytes, out, depth, positions, depth, load, tile);
    // dbias(group)[o] (+)= Σ_p dvalues[s, o, p], as dvalues[s]·onesᵀ.
    if (d[25] >= 0) {
      for (let p = 0; s === first && p < positions; p++) heap[v.ones + p] = 1;
      const [ones, sums] = [v.ones * bytes, biasPart * bytes];
      kernels.dotRows(dv * bytes, ones, sums, out, positions, 1, load);
    }
    if (d[23] < 0) continue;
    kernels.packRowsR(dv * bytes, positions, out, positions, right);
    kernels.gemm(d[21] * bytes, right, v.dcols * bytes, depth, positions, out, positions, 0, tile);
    const dx = d[23] + s * v.channels * plane;
    kernels.zeroBytes(dx * bytes, v.channels * plane * bytes);
    foldSample(v, dx);
  }
}

/**
 * im2col of sample `s` into the thread's columns. Stride 1 with outputs as wide as the
 * inputs (W4's "same" 3×3): a row of columns is the image shifted, one copy within the
 * memory plus the zeros at the edges; anything else goes through `im2col`'s loops. The copy
 * is the kernels' `memory.copy`: a shared memory's `copyWithin` (and `fill`) goes element by
 * element with relaxed atomics, 7–8× slower.
 */
export function lowerSample(v: ConvView, s: number): void {
  const { heap, channels, height, width, positions, bytes } = v;
  if (!v.contiguous) {
    im2col(v.x, s, 1, channels, height, width, v.window, v.outH, v.outW, v.colsView);
    return;
  }
  const sample = v.d[19] + s * channels * height * width;
  forEachShift(v, v.cols, (start, shift, ohFirst, ohEnd, owFirst, owEnd) => {
    const empty = ohEnd <= ohFirst || owEnd <= owFirst;
    const lo = empty ? positions : ohFirst * width + owFirst;
    const hi = empty ? positions : (ohEnd - 1) * width + owEnd;
    const source = sample + shift; // + k for cols[start + k]
    for (let k = 0; k < lo; k++) heap[start + k] = 0;
    if (hi > lo) {
      v.kernels.copyBytes((start + lo) * bytes, (source + lo) * bytes, (hi - lo) * bytes);
    }
    for (let k = hi; k < positions; k++) heap[start + k] = 0;
    zeroWrapped(heap, start, width, ohFirst, ohEnd, owFirst, owEnd);
  });
}

/**
 * col2im of the thread's dcols into the sample at `dx` (zeroed): in the contiguous case a
 * row is one SIMD add into the shifted image (the wrapped columns zeroed first), in
 * `im2col`'s order; else `col2im`'s loops.
 */
export function foldSample(v: ConvView, dx: number): void {
  const { heap, channels, height, width, positions, bytes } = v;
  if (!v.contiguous) {
    const dcols = heap.subarray(v.dcols, v.dcols + v.depth * positions);
    col2im(dcols, 0, 1, channels, height, width, v.window, v.outH, v.outW, heap.subarray(dx));
    return;
  }
  forEachShift(v, v.dcols, (start, shift, ohFirst, ohEnd, owFirst, owEnd) => {
    if (ohEnd <= ohFirst || owEnd <= owFirst) return;
    zeroWrapped(heap, start, width, ohFirst, ohEnd, owFirst, owEnd);
    const lo = ohFirst * width + owFirst, hi = (ohEnd - 1) * width + owEnd;
    v.kernels.addBias((dx + shift + lo) * bytes, (start + lo) * bytes, 1, hi - lo);
  });
}

/**
 * The contiguous case's kernel taps, in im2col's row order: `visit(start, shift, ohFirst,
 * ohEnd, owFirst, owEnd)` for the row of columns at `start` (then `start` + P, …), whose
 * column k reads the sample's element k + `shift`, valid for output rows [ohFirst, ohEnd)
 * and columns [owFirst, owEnd).
 */
export function forEachShift(
  v: ConvView,
  start: number,
  visit: (
    start: number,
    shift: number,
    ohFirst: number,
    ohEnd: number,
    owFirst: number,
    owEnd: number,
  ) => void,
): void {
  const { window, channels, height, width, outH, outW, positions } = v;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < window.kernelH; i++) {
      const dy = i * window.dilationH - window.padTop;
      const ohFirst = rangeFirst(dy, 1, outH), ohEnd = rangeEnd(dy, 1, height, outH);
      for (let j = 0; j < window.kernelW; j++, start += positions) {
        const dx = j * window.dilationW - window.padLeft;
        const owFirst = rangeFirst(dx, 1, outW), owEnd = rangeEnd(dx, 1, width, outW);
        visit(start, (c * height + dy) * width + dx, ohFirst, ohEnd, owFirst, owEnd);
      }
    }
  }
}

/**
 * Zeroes the columns of a row of columns at `start` that wrapped around the image's left or
 * right edge: in output rows [ohFirst, ohEnd), those outside [owFirst, owEnd).
 */
export function zeroWrapped(
  heap: Float32Array | Float64Array,
  start: number,
  width: number,
  ohFirst: number,
  ohEnd: number,
  owFirst: number,
  owEnd: number,
): void {
  if (owFirst === 0 && owEnd === width) return;
  for (let oh = ohFirst; oh < ohEnd; oh++) {
    const row = start + oh * width;
    for (let ow = 0; ow < owFirst; ow++) heap[row + ow] = 0;
    for (let ow = owEnd; ow < width; ow++) heap[row + ow] = 0;
  }
}

// Winograd F(2×2, 3×3)'s transforms (layers/_winograd.ts) on the float32 kernels, one task
// per range of image planes of a chunk of samples: plane p is channel p mod C of sample
// first + ⌊p / C⌋, and each plane's tiles (input) or outputs are written by the task that
// holds it alone, so the bits do not depend on the threads.

/**
 * The transforms a backend may run itself (the wasm backend: float32 SIMD kernels on its
 * worker pool, where the arrays lie resident in its memory), with the arguments of
 * `winogradInputs` and `winogradOutputs` of layers/_winograd.ts; false when it did nothing.
 */
export interface WinogradTransforms {
  winogradInputs(
    x: FloatArray,
    first: number,
    count: number,
    channels: number,
    height: number,
    width: number,
    top: number,
    left: number,
    tilesH: number,
    tilesW: number,
    v: FloatArray,
  ): boolean;
  winogradOutputs(
    m: FloatArray,
    first: number,
    count: number,
    out: number,
    outH: number,
    outW: number,
    tilesH: number,
    tilesW: number,
    y: FloatArray,
    bias?: FloatArray,
  ): boolean;
  /**
   * The whole convolution: y = Winograd's convolution of x whose transformed kernels
   * (`winogradKernels` of layers/_winograd.ts) are u [16, out, channels], + bias; false
   * when it did nothing.
   */
  winogradConvolution(
    x: FloatArray,
    u: FloatArray,
    y: FloatArray,
    shape: WinogradConvShape,
    bias?: FloatArray,
  ): boolean;
  /**
   * The weights' gradient in Winograd's domain: du [16, out, channels] = Σ over the tiles of
   * (A·dvalues·Aᵀ)[ξ]·(Bᵀ·x·B)[ξ]ᵀ (overwritten; `winogradWeightGradient` of
   * layers/_winograd.ts adds Gᵀ·du·G to the kernels' gradient), and dbias[o] += Σ of
   * dvalues' channel o when given; false when it did nothing.
   */
  winogradWeights(
    x: FloatArray,
    dvalues: FloatArray,
    du: FloatArray,
    dbias: FloatArray | undefined,
    shape: WinogradConvShape,
  ): boolean;
  /**
   * Where the backend declines the whole convolution: the most elements of a chunk's tiles
   * V or products M (each [16, channels, tiles]) when the layer goes by chunks of samples,
   * sized for the backend's products (the blas backend's OpenBLAS runs them fastest on
   * chunks that stay in the cache); `WINOGRAD_CHUNK_ELEMENTS` of layers/_winograd.ts when
   * absent.
   */
  winogradChunkElements?: number;
  /**
   * The output transform's gradient of dvalues' samples [first, first + count): dm [16, O,
   * count·tilesH·tilesW] = A·dy·Aᵀ per tile (`winogradGradOutput` of tools/wasm/kernels.ts),
   * for the weights' gradient by chunks; false when it did nothing.
   */
  winogradGradOutputs?(
    dvalues: FloatArray,
    first: number,
    count: number,
    out: number,
    outH: number,
    outW: number,
    tilesH: number,
    tilesW: number,
    dm: FloatArray,
  ): boolean;
}

/** Where a Winograd transform's arrays lie (float32 element offsets; −1 for none). */
export interface WinogradPlacement {
  /** The input transform: x [N, C, H, W]; the output transform: m [16, O, T]. */
  source: number;
  /** The input transform: v [16, C, T]; the output transform: y [N, O, OH, OW]. */
  target: number;
  /** The output transform: a copy of bias [O], or −1. */
  bias: number;
  /** The first thread's scratch; thread t's starts `scratchLength`·t further. */
  scratch: number;
  scratchLength: number;
}

/** A Winograd transform's sizes (see `winogradInputs`/`winogradOutputs` of layers/_winograd.ts). */
export interface WinogradSizes {
  /** Channels per sample of the planes: C (input transform) or O (output transform). */
  channels: number;
  /** The planes' height and width: H, W (input) or OH, OW (output). */
  height: number;
  width: number;
  /** Zeros above and left of the input (negative: cut); 0 for the output transform. */
  top: number;
  left: number;
  tilesH: number;
  tilesW: number;
  /** The chunk: samples [first, first + count). */
  first: number;
  count: number;
}

/** Writes the descriptor that the Winograd tasks read, at `ints[at, at + 32)`. */
export function writeWinogradDescriptor(
  ints: Int32Array,
  at: number,
  z: WinogradSizes,
  p: WinogradPlacement,
): void {
  ints.set([
    0,
    z.channels,
    z.height,
    z.width,
    z.top,
    z.left,
    z.tilesH,
    z.tilesW,
    z.first,
    z.count,
    p.source,
    p.target,
    p.bias,
    p.scratch,
    p.scratchLength,
    ints.buffer.byteLength / 65536, // field 15: pages the tasks' views must cover
  ], at);
}

/** The input transform's task: the tiles of planes [first, first + count) into v. */
export function winogradInputsTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const buffer = taskBuffer(context, descriptor, 15, "Winograd input task");
  const d = new Int32Array(buffer, descriptor, 32);
  const [channels, height, width, top, left, tilesH, tilesW] = [
    d[1],
    d[2],
    d[3],
    d[4],
    d[5],
    d[6],
    d[7],
  ];
  const perSample = tilesH * tilesW, tiles = d[9] * perSample;
  const padW = 8 * Math.ceil(tilesW / 4) + 2, padH = 2 * tilesH + 2;
  const [rLo, rHi] = [Math.max(0, top), Math.min(padH, top + height)];
  const [qLo, qHi] = [Math.max(0, left), Math.min(padW, left + width)];
  const pad = (d[13] + thread * d[14]) * 4, stride = channels * tiles * 4;
  const kernel = context.exports[0].winogradInput!;
  for (let p = first; p < first + count; p++) {
    const s = Math.floor(p / channels), c = p - s * channels;
    const image = d[10] + ((d[8] + s) * channels + c) * height * width;
    const origin = (image - top * width - left) * 4; // may be negative: i32 wraps
    const v = (d[11] + c * tiles + s * perSample) * 4;
    kernel(origin, width, pad, rLo, rHi, qLo, qHi, padW, v, stride, tilesH, tilesW);
  }
}

/**
 * The sizes of an output-side transform's job (the output transform, its gradient) from its
 * descriptor, and the offsets in bytes of this thread's stage, its row length and a plane's
 * stride in m or dm.
 */
export function readOutputSide(
  context: TaskContext,
  thread: number,
  descriptor: number,
  what: string,
): {
  buffer: ArrayBufferLike;
  d: Int32Array;
  out: number;
  outH: number;
  outW: number;
  tilesH: number;
  tilesW: number;
  perSample: number;
  tiles: number;
  stage: number;
  stageW: number;
  stride: number;
} {
  const buffer = taskBuffer(context, descriptor, 15, what);
  const d = new Int32Array(buffer, descriptor, 32);
  const [out, outH, outW, tilesH, tilesW] = [d[1], d[2], d[3], d[6], d[7]];
  const perSample = tilesH * tilesW, tiles = d[9] * perSample;
  const stage = (d[13] + thread * d[14]) * 4, stageW = 8 * Math.ceil(tilesW / 4);
  return {
    buffer,
    d,
    out,
    outH,
    outW,
    tilesH,
    tilesW,
    perSample,
    tiles,
    stage,
    stageW,
    stride: out * tiles * 4,
  };
}

/**
 * The output transform's gradient task: the tiles dm [16, O, T] = A·dy·Aᵀ of the dvalues
 * planes [first, first + count) (float32 build only).
 */
export function winogradGradOutputsTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const z = readOutputSide(context, thread, descriptor, "Winograd output gradient task");
  const { d, out, outH, outW, tilesH, tilesW, perSample, tiles, stage, stageW, stride } = z;
  const positions = outH * outW;
  const kernel = context.exports[0].winogradGradOutput!;
  for (let p = first; p < first + count; p++) {
    const s = Math.floor(p / out), o = p - s * out;
    const dy = (d[10] + ((d[8] + s) * out + o) * positions) * 4;
    const dm = (d[11] + o * tiles + s * perSample) * 4;
    kernel(dy, outH, outW, stage, stageW, tilesH, tilesW, dm, stride);
  }
}

/** The output transform's task: the outputs of planes [first, first + count) into y. */
export function winogradOutputsTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const z = readOutputSide(context, thread, descriptor, "Winograd output task");
  const { d, out, outH, outW, tilesH, tilesW, perSample, tiles, stage, stageW, stride } = z;
  const heap = new Float32Array(z.buffer);
  const kernel = context.exports[0].winogradOutput!;
  for (let p = first; p < first + count; p++) {
    const s = Math.floor(p / out), o = p - s * out;
    const m = (d[10] + o * tiles + s * perSample) * 4;
    const y = (d[11] + ((d[8] + s) * out + o) * outH * outW) * 4;
    const bias = d[12] >= 0 ? heap[d[12] + o] : 0;
    kernel(m, stride, bias, stage, stageW, tilesH, tilesW, y, outH, outW);
  }
}
