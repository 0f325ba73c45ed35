// The GPU operations plugins share: products, elementwise maps, column sums, reductions,
// copies and row gathers, each a WGSL kernel run through a GpuContext. A plugin's own
// kernels stay in its file; what several need is here.
import {
  flatIndex,
  type GpuContext,
  type GpuKernel,
  type GpuTensor,
  gridFor,
} from "../core/gpu.ts";
import { type GpuMatmulOptions, planTiledMatmul } from "./_webgpu_matmul.ts";

export type { GpuMatmulOptions };

const kernels = new Map<string, GpuKernel>();

/** The kernel for `code`, made once per distinct source (its pipeline is cached by the context). */
export function kernel(label: string, code: string): GpuKernel {
  let found = kernels.get(code);
  if (!found) kernels.set(code, found = { label, code });
  return found;
}

// c[m, n] (+)= op(a)·op(b) (+ bias): one invocation per element of c. The tests' reference;
// gpuMatmul uses the tiled kernel.
function naiveMatmulCode(transA: boolean, transB: boolean, accumulate: boolean, bias: boolean) {
  const aAt = transA ? "a[p.offA + kk * p.m + row]" : "a[p.offA + row * p.k + kk]";
  const bAt = transB ? "b[p.offB + col * p.k + kk]" : "b[p.offB + kk * p.n + col]";
  return /* wgsl */ `
struct P { m: u32, k: u32, n: u32, strideA: u32, strideB: u32, strideC: u32, offA: u32, offB: u32,
           offC: u32 };
@group(0) @binding(0) var<uniform> q: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
${bias ? "@group(0) @binding(4) var<storage, read> bias: array<f32>;" : ""}
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row = gid.y;
  let col = gid.x;
  if (row >= q.m || col >= q.n) { return; }
  var p = q;
  p.offA = q.offA + gid.z * q.strideA;
  p.offB = q.offB + gid.z * q.strideB;
  var sum = 0.0;
  for (var kk = 0u; kk < p.k; kk++) { sum += ${aAt} * ${bAt}; }
  let at = q.offC + gid.z * q.strideC + row * q.n + col;
  ${bias ? "sum += bias[col];" : ""}
  ${accumulate ? "c[at] += sum;" : "c[at] = sum;"}
}`;
}

/**
 * The naive product, one invocation per output element: the reference the tiled kernel is
 * tested against. Same arguments as {@linkcode gpuMatmul}.
 */
export function gpuMatmulNaive(
  ctx: GpuContext,
  owner: object,
  key: string,
  a: GpuTensor,
  b: GpuTensor,
  c: GpuTensor,
  m: number,
  k: number,
  n: number,
  options: GpuMatmulOptions = {},
): void {
  const { transA = false, transB = false, accumulate = false, bias, batch = 1 } = options;
  const code = naiveMatmulCode(transA, transB, accumulate, bias !== undefined);
  const tensors = bias ? [a, b, c, bias] : [a, b, c];
  const strides = [options.strideA ?? m * k, options.strideB ?? k * n, options.strideC ?? m * n];
  const offsets = [options.offsetA ?? 0, options.offsetB ?? 0, options.offsetC ?? 0];
  ctx.run(owner, key, kernel("matmul (naive)", code), tensors, [m, k, n, ...strides, ...offsets], [
    Math.ceil(n / 8),
    Math.ceil(m / 8),
    batch,
  ]);
}

/**
 * `c[m, n] (+)= op(a)·op(b) (+ bias)` on the device, where `op(a)` is `a [m, k]` or, with
 * `transA`, the transpose of `a [k, m]`; likewise `b [k, n]` or `b [n, k]` with `transB`.
 * Each operand may start `offsetA`, `offsetB`, `offsetC` elements into its buffer.
 */
export function gpuMatmul(
  ctx: GpuContext,
  owner: object,
  key: string,
  a: GpuTensor,
  b: GpuTensor,
  c: GpuTensor,
  m: number,
  k: number,
  n: number,
  options: GpuMatmulOptions = {},
): void {
  const plan = planTiledMatmul({ ...options, a, b, c, m, k, n });
  if (!plan) return;
  const { label, code, tensors, uniforms, workgroups } = plan;
  ctx.run(owner, key, kernel(label, code), tensors, uniforms, workgroups);
}

/**
 * `out[i] = f(x0[i], x1[i], …)` for `i < count`, where `expression` is WGSL over `x0`, `x1`, …
 * (f32 values) and the uniform scalars `s0`, `s1`, … given in `scalars` (f32), e.g.
 * `"max(x0, 0.0)"` or `"x0 * select(0.0, 1.0, x1 > 0.0)"`. With `accumulate`, adds into `out`.
 */
export function gpuMap(
  ctx: GpuContext,
  owner: object,
  key: string,
  expression: string,
  inputs: readonly GpuTensor[],
  out: GpuTensor,
  count: number,
  options: { scalars?: readonly number[]; accumulate?: boolean } = {},
): void {
  const scalars = options.scalars ?? [];
  const fields = scalars.map((_, j) => `, s${j}: f32`).join("");
  const bindings = inputs.map((_, j) =>
    `@group(0) @binding(${j + 1}) var<storage, read> in${j}: array<f32>;`
  ).join("\n");
  const loads = inputs.map((_, j) => `let x${j} = in${j}[i];`).join(" ");
  const scalarLets = scalars.map((_, j) => `let s${j} = p.s${j};`).join(" ");
  const code = /* wgsl */ `
struct P { count: u32${fields} };
@group(0) @binding(0) var<uniform> p: P;
${bindings}
@group(0) @binding(${inputs.length + 1}) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.count) { return; }
  ${loads} ${scalarLets}
  ${options.accumulate ? "out[i] += " : "out[i] = "}${expression};
}`;
  const words = [count, ...scalars.map(f32Word)];
  ctx.run(owner, key, kernel(`map ${expression}`, code), [...inputs, out], words, gridFor(count));
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
function f32Word(value: number): number {
  F32[0] = value;
  return U32[0];
}

/** `dst[i] = src[i]` (or `+=` with `accumulate`) for `i < count`. */
export function gpuCopy(
  ctx: GpuContext,
  owner: object,
  key: string,
  src: GpuTensor,
  dst: GpuTensor,
  count: number,
  accumulate = false,
): void {
  gpuMap(ctx, owner, key, "x0", [src], dst, count, { accumulate });
}

// out[col] (+)= Σ_rows x[row, col]: one invocation per column.
// out[col] (+)= Σ_rows x[row, col]: a workgroup per 16 columns; 16 lanes per column each sum
// every 16th row (a row's 16 columns are adjacent in memory), then a tree over the lanes.
// The order of the sum depends on the shape only, so every run gives the same bits.
const SUM_COLUMNS = (accumulate: boolean) => /* wgsl */ `
struct P { rows: u32, cols: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<array<f32, 16>, 16>;
@compute @workgroup_size(16, 16)
fn main(
  @builtin(workgroup_id) group: vec3u,
  @builtin(num_workgroups) groups: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let col = (group.x + group.y * groups.x) * 16u + lid.x;
  var sum = 0.0;
  if (col < p.cols) {
    for (var r = lid.y; r < p.rows; r += 16u) { sum += x[r * p.cols + col]; }
  }
  partial[lid.y][lid.x] = sum;
  workgroupBarrier();
  for (var width = 8u; width > 0u; width >>= 1u) {
    if (lid.y < width) { partial[lid.y][lid.x] += partial[lid.y + width][lid.x]; }
    workgroupBarrier();
  }
  if (lid.y == 0u && col < p.cols) {
    ${accumulate ? "out[col] += partial[0][lid.x];" : "out[col] = partial[0][lid.x];"}
  }
}`;

/** `out[cols] (+)= Σ_rows x[rows, cols]` (a bias gradient). */
export function gpuSumColumns(
  ctx: GpuContext,
  owner: object,
  key: string,
  x: GpuTensor,
  out: GpuTensor,
  rows: number,
  cols: number,
  accumulate = false,
): void {
  const code = SUM_COLUMNS(accumulate);
  const groups = gridFor(cols, 16);
  ctx.run(owner, key, kernel("sum columns", code), [x, out], [rows, cols], groups);
}

// out[index] (+)= scale · Σ x[0..count): one workgroup, a strided sum per invocation, then a
// tree reduction through workgroup memory.
const SUM_ALL = /* wgsl */ `
struct P { count: u32, index: u32, scale: f32, accumulate: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var sum = 0.0;
  for (var i = lid.x; i < p.count; i += 256u) { sum += x[i]; }
  partial[lid.x] = sum;
  workgroupBarrier();
  for (var width = 128u; width > 0u; width >>= 1u) {
    if (lid.x < width) { partial[lid.x] += partial[lid.x + width]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let total = partial[0] * p.scale;
    if (p.accumulate != 0u) { out[p.index] += total; } else { out[p.index] = total; }
  }
}`;

/** `out[index] (+)= scale · Σ x[0..count)` by a tree reduction (a loss or a metric into a sink). */
export function gpuSumAll(
  ctx: GpuContext,
  owner: object,
  key: string,
  x: GpuTensor,
  count: number,
  out: GpuTensor,
  index: number,
  options: { scale?: number; accumulate?: boolean } = {},
): void {
  const words = [count, index, f32Word(options.scale ?? 1), options.accumulate === false ? 0 : 1];
  ctx.run(owner, key, kernel("sum all", SUM_ALL), [x, out], words, 1);
}

const GATHER = (type: string) => /* wgsl */ `
struct P { start: u32, count: u32, rowSize: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> data: array<${type}>;
@group(0) @binding(2) var<storage, read> order: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<${type}>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.count * p.rowSize) { return; }
  let row = i / p.rowSize;
  let source = u32(order[p.start + row]);
  out[i] = data[source * p.rowSize + i % p.rowSize];
}`;

/**
 * `out[r, :] = data[order[start + r], :]` for `r < count`, rows of `rowSize` elements: a
 * (shuffled) batch from a data set on the device.
 */
export function gpuGatherRows(
  ctx: GpuContext,
  owner: object,
  key: string,
  data: GpuTensor,
  order: GpuTensor,
  start: number,
  count: number,
  rowSize: number,
  out: GpuTensor,
): void {
  const type = data.dtype === "float32" ? "f32" : data.dtype === "int32" ? "i32" : "u32";
  const words = [start, count, rowSize];
  ctx.run(
    owner,
    key,
    kernel("gather rows", GATHER(type)),
    [data, order, out],
    words,
    gridFor(count * rowSize),
  );
}
