// The GPU side of losses/_targets.ts and losses/_per_output.ts: which form the (float32)
// targets on the device take, checked against the outputs' shape, and the reduction that
// adds a batch's mean over its counted positions to a sink. Private to the losses and
// metrics.
import {
  f32Bits,
  flatIndex,
  type GpuContext,
  type GpuSink,
  type GpuTensor,
  gridFor,
} from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";
import { formatShape } from "../core/tensor.ts";

/** What a classification loss or metric found its device targets to be. */
export interface GpuClassBatch {
  /** Rows of the outputs: `batch` for `[batch, classes]`, `batch·T` for `[batch, T, classes]`. */
  positions: number;
  /** The last axis of the outputs. */
  classes: number;
  /** True for class indices `[positions]` (as floats), false for rows shaped like the outputs. */
  indices: boolean;
}

/**
 * Reads the form of classification targets on the device, as `classTargetsFor` does on the
 * CPU: class indices shaped like the outputs without their last axis (or flat,
 * `[positions]`), or rows shaped like the outputs (`[positions, classes]` also passes).
 *
 * @throws {TypeError} naming `where` and both shapes when the targets cannot fit the
 * outputs, or when they are not float32.
 */
export function gpuClassBatch(
  outputs: GpuTensor,
  targets: GpuTensor,
  where: string,
): GpuClassBatch {
  const shape = outputs.shape;
  if (shape.length < 2 || outputs.size === 0) {
    throw new TypeError(
      `${where}: outputs must be [batch, classes] or [batch, …, classes], got shape ${
        formatShape(shape)
      }`,
    );
  }
  expectFloat32(targets, where);
  const classes = shape[shape.length - 1];
  const positions = outputs.size / classes;
  const lead = shape.slice(0, -1);
  const rank1 = targets.shape.length === 1;
  if (targets.size === positions && (rank1 || sameShape(targets.shape, lead))) {
    return { positions, classes, indices: true };
  }
  const rows = sameShape(targets.shape, shape) || sameShape(targets.shape, [positions, classes]);
  if (rows) return { positions, classes, indices: false };
  throw new TypeError(
    `${where}: targets have shape ${formatShape(targets.shape)}, expected class indices ${
      formatShape(lead)
    } or one-hot rows ${formatShape(shape)} (outputs shape ${formatShape(shape)})`,
  );
}

/**
 * The uniform words `[hasIgnore, ignore]` of a class kernel's `P` (`hasIgnore: u32, ignore:
 * f32`): `[0, 0]` without an `ignoreIndex`, else 1 and its float32 bits.
 */
export function ignoreWords(ignoreIndex: number | undefined): [number, number] {
  return ignoreIndex === undefined ? [0, 0] : [1, f32Bits(ignoreIndex)];
}

/**
 * The WGSL that ends a cross-entropy kernel's per-position body, given `probabilities` (an
 * array of `[positions, classes]`) and the position's `row` start: `terms[i]` =
 * −log(clip(p_y)) for class indices, or −Σ_j y_j·log(clip(p_j)) for rows; `counted[i]` = 1,
 * or 0 (and terms 0) where the class index is the ignoreIndex. It needs `CLIP_WGSL` and
 * `p.classes`, `p.hasIgnore`, `p.ignore`, `targets`, `terms` and `counted`.
 */
export function crossEntropyTerms(indices: boolean, probabilities: string): string {
  return indices
    ? /* wgsl */ `  let label = targets[i];
  if (p.hasIgnore != 0u && label == p.ignore) {
    terms[i] = 0.0;
    counted[i] = 0.0;
    return;
  }
  terms[i] = -logClip(${probabilities}[row + u32(label)]);
  counted[i] = 1.0;`
    : /* wgsl */ `  var total = 0.0;
  for (var j = row; j < row + p.classes; j++) {
    let y = targets[j];
    if (y != 0.0) { total -= y * logClip(${probabilities}[j]); }
  }
  terms[i] = total;
  counted[i] = 1.0;`;
}

/** What a per-output loss or metric found: `batch` samples of `width` outputs each. */
export interface GpuValueBatch {
  /** Samples in the batch (the outputs' first axis). */
  batch: number;
  /** Outputs per sample (all of a sample's elements). */
  width: number;
}

/**
 * Checks per-output targets on the device (regression values, binary labels), as
 * `perOutputBatch` and `elementTargets` do on the CPU: shaped like the outputs, or
 * `[batch]` when there is one output per sample.
 *
 * @throws {TypeError} naming `where` and both shapes when they disagree, or when the
 * targets are not float32.
 */
export function gpuValueBatch(
  outputs: GpuTensor,
  targets: GpuTensor,
  where: string,
): GpuValueBatch {
  const shape = outputs.shape;
  const batch = shape[0] ?? 1;
  if (outputs.size === 0) {
    throw new TypeError(`${where}: outputs is an empty batch (shape ${formatShape(shape)})`);
  }
  expectFloat32(targets, where);
  const single = outputs.size === batch;
  const fits = sameShape(targets.shape, shape) ||
    (single && targets.shape.length === 1 && targets.size === batch);
  if (!fits) {
    throw new TypeError(
      `${where}: targets have shape ${formatShape(targets.shape)}, expected ${
        formatShape(shape)
      } like the outputs${single ? ` or ${formatShape([batch])}` : ""} (outputs shape ${
        formatShape(shape)
      })`,
    );
  }
  return { batch, width: outputs.size / batch };
}

function expectFloat32(targets: GpuTensor, where: string): void {
  if (targets.dtype !== "float32") {
    throw new TypeError(
      `${where}: targets must be float32 on the device (class indices as floats), got ${targets.dtype} of shape ${
        formatShape(targets.shape)
      }`,
    );
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let d = 0; d < a.length; d++) if (a[d] !== b[d]) return false;
  return true;
}

// count[0] = Σ counted   results[index] += Σ terms / count (0 when count is 0): one workgroup,
// a strided sum per invocation, then a tree reduction of both sums through workgroup memory.
const MEAN_INTO_SINK = /* wgsl */ `
struct P { positions: u32, index: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> terms: array<f32>;
@group(0) @binding(2) var<storage, read> counted: array<f32>;
@group(0) @binding(3) var<storage, read_write> count: array<f32>;
@group(0) @binding(4) var<storage, read_write> results: array<f32>;
var<workgroup> partialTerms: array<f32, 256>;
var<workgroup> partialCounts: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var total = 0.0;
  var n = 0.0;
  for (var i = lid.x; i < p.positions; i += 256u) {
    total += terms[i];
    n += counted[i];
  }
  partialTerms[lid.x] = total;
  partialCounts[lid.x] = n;
  workgroupBarrier();
  for (var width = 128u; width > 0u; width >>= 1u) {
    if (lid.x < width) {
      partialTerms[lid.x] += partialTerms[lid.x + width];
      partialCounts[lid.x] += partialCounts[lid.x + width];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let counts = partialCounts[0];
    count[0] = counts;
    if (counts != 0.0) { results[p.index] += partialTerms[0] / counts; }
  }
}`;

/**
 * Adds `Σ terms / Σ counted` (the mean over the counted positions; nothing when none is
 * counted) to `sink`, and leaves `Σ counted` in `count` `[1]` for a backward pass. Counts
 * are exact in float32 up to 2^24 positions.
 */
export function gpuMeanIntoSink(
  ctx: GpuContext,
  owner: object,
  key: string,
  terms: GpuTensor, // [positions]
  counted: GpuTensor, // [positions], 1 or 0
  count: GpuTensor, // [1]
  positions: number,
  sink: GpuSink,
): void {
  const tensors = [terms, counted, count, sink.results];
  ctx.run(
    owner,
    key,
    kernel("mean into sink", MEAN_INTO_SINK),
    tensors,
    [positions, sink.index],
    1,
  );
}

/** The `@workgroup_size` of the losses' and metrics' per-row kernels. */
export const ROW_GROUP = 64;

/**
 * The WGSL entry point of a kernel with one invocation per row (or element) `i` below
 * `p.${limit}`, up to its opening brace and the early return; dispatch it with
 * {@linkcode rowGrid}.
 */
export function rowMain(limit: string): string {
  return `@compute @workgroup_size(${ROW_GROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex(ROW_GROUP)}
  if (i >= p.${limit}) { return; }`;
}

/** The workgroups of a {@linkcode rowMain} kernel over `count` rows. */
export function rowGrid(count: number): [number, number] {
  return gridFor(count, ROW_GROUP);
}

/**
 * The float32 `t'` for which `x > t'` holds exactly when `x > t` does, for every float32 `x`
 * (a threshold compared on the device as the CPU compares it in float64): `t` rounded down.
 */
export function f32Below(t: number): number {
  const f = Math.fround(t);
  return f <= t ? f : nextF32(f, -1);
}

/** The float32 `t'` for which `x < t'` holds exactly when `x < t` does: `t` rounded up. */
export function f32Above(t: number): number {
  const f = Math.fround(t);
  return f >= t ? f : nextF32(f, 1);
}

// The float32 next to `f` (a float32) towards ±∞.
function nextF32(f: number, direction: 1 | -1): number {
  const bits = new Float32Array([f]);
  const words = new Int32Array(bits.buffer);
  if (f === 0) {
    words[0] = 1;
    return direction * bits[0];
  }
  words[0] += (f > 0) === (direction > 0) ? 1 : -1;
  return bits[0];
}
