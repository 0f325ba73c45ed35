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
import { col2im, im2col } from "./_lowering.ts";
import type { ConvGeometry, Window2D } from "../core/backend.ts";
import type { ConvKernelExports, TaskContext } from "./_task_context.ts";

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
  ], at);
}

/**
 * One thread's scratch for a convolution with `depth` = C·KH·KW, `positions` = OH·OW and
 * `out` = O, on kernels with an mr × nr tile, as element offsets: [cols [depth, P], the left
 * panels of dvalues, the right panels (of cols, or of dvalues), dcols [depth, P], the edge
 * tile, total length]; each 16-element aligned.
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
  return [cols, left, packedRight, dcols, tile, tile + up(mr * nr)];
}

/** A task's view of its convolution: the descriptor's sizes and its thread's scratch. */
export interface ConvView {
  /** Bytes per element. */
  bytes: number;
  /** The whole memory as elements. */
  heap: Float32Array | Float64Array;
  /** The kernels of the element type. */
  kernels: ConvKernelExports;
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
  /** Element offsets in the memory of this thread's scratch (see {@linkcode convScratch}). */
  cols: number;
  left: number;
  right: number;
  dcols: number;
  tile: number;
  /** The columns of one sample, [depth, positions], in the scratch. */
  colsView: Float32Array | Float64Array;
  /** The inputs from their first element on. */
  x: Float32Array | Float64Array;
}

/** Reads the descriptor at byte `descriptor` for `thread` (see {@linkcode writeConvDescriptor}). */
export function readConv(context: TaskContext, thread: number, descriptor: number): ConvView {
  const buffer = context.memory.buffer;
  const d = new Int32Array(buffer, descriptor, 32);
  const heap = d[0] === 1 ? new Float64Array(buffer) : new Float32Array(buffer);
  const [channels, height, width, out, outH, outW] = [d[1], d[2], d[3], d[4], d[5], d[6]];
  const positions = outH * outW, depth = channels * d[7] * d[8];
  const base = d[26] + thread * d[27];
  const [cols, left, right, dcols, tile] = convScratch(depth, positions, out, d[17], d[18])
    .map((offset) => base + offset);
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
    cols,
    left,
    right,
    dcols,
    tile,
    colsView: heap.subarray(cols, cols + depth * positions),
    x: heap.subarray(d[19]),
  };
}

// y[s] = bias + W·im2col(x[s]) for samples [first, first + count).
/** The forward task: `y[s, O, P] = bias + W[O, C·KH·KW]·cols(s)` for its samples. */
export function convForwardTask(
  context: TaskContext,
  thread: number,
  descriptor: number,
  first: number,
  count: number,
): void {
  const v = readConv(context, thread, descriptor);
  const { bytes, heap, d, out, positions, depth } = v;
  for (let s = first; s < first + count; s++) {
    im2col(v.x, s, 1, v.channels, v.height, v.width, v.window, v.outH, v.outW, v.colsView);
    v.kernels.packRowsR(v.cols * bytes, positions, depth, positions, v.right * bytes);
    // The biases first, then the products added to them (one pass over y instead of two).
    const y = d[20] + s * out * positions, biased = d[22] >= 0 ? 1 : 0;
    for (let o = 0; biased && o < out; o++) {
      heap.fill(heap[d[22] + o], y + o * positions, y + (o + 1) * positions);
    }
    const [w, right, tile] = [d[21] * bytes, v.right * bytes, v.tile * bytes];
    v.kernels.gemm(w, right, y * bytes, out, positions, depth, positions, biased, tile);
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
    im2col(v.x, s, 1, v.channels, v.height, v.width, v.window, v.outH, v.outW, v.colsView);
    kernels.packColsL(dv * bytes, positions, out, positions, left);
    kernels.packColsR(v.cols * bytes, positions, depth, positions, right);
    kernels.gemm(left, right, weightPart * bytes, out, depth, positions, depth, load, tile);
    if (d[25] >= 0) {
      for (let o = 0; o < out; o++) {
        let total = 0;
        for (let p = 0, at = dv + o * positions; p < positions; p++) total += heap[at + p];
        heap[biasPart + o] = load ? heap[biasPart + o] + total : total;
      }
    }
    if (d[23] < 0) continue;
    kernels.packRowsR(dv * bytes, positions, out, positions, right);
    kernels.gemm(d[21] * bytes, right, v.dcols * bytes, depth, positions, out, positions, 0, tile);
    const dx = d[23] + s * v.channels * plane;
    heap.fill(0, dx, dx + v.channels * plane);
    const dcols = heap.subarray(v.dcols, v.dcols + depth * positions);
    col2im(dcols, 0, 1, v.channels, v.height, v.width, v.window, v.outH, v.outW, heap.subarray(dx));
  }
}
