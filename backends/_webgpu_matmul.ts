// The tiled product behind gpuMatmul: c[m, n] (+)= op(a)·op(b) (+ bias[n]), batched.
//
// Legend: m rows of c, n columns of c, k the summed dimension; a tile of c is TILE × TILE
// (64 × 64) per workgroup of 16 × 16 invocations, each computing a 4 × 4 register tile; the
// k dimension goes through workgroup memory `tileK` (16) at a time, k ascending, so every
// element of c is summed in the CPU's order by one invocation (the same bits on every run).
//
// Workgroup memory holds op(a)'s tile k-major (`tileA[kk][row]`) and op(b)'s tile k-major
// (`tileB[kk][col]`), both as vec4s: an invocation reads one vec4 of 4 rows and one vec4 of 4
// columns per kk and does 16 multiply-adds. Global reads are vec4s where the operand's rows
// in memory, its batch stride, its offset and the dimension read contiguously are multiples
// of 4 (a vec4 then never straddles an edge: it is wholly inside or wholly out); otherwise
// the same kernel loads scalars. Offsets (elements into a buffer where an operand starts)
// let a product read and write slices of larger buffers, e.g. one time step of a sequence. Edge tiles load zeros outside [m, k] and [k, n] and write nothing
// outside [m, n], so any m, k, n ≥ 1 works.
//
// This file makes the WGSL and the dispatch (a plan); backends/webgpu_ops.ts runs it.
import type { GpuTensor } from "../core/gpu.ts";

/** Rows and columns of c per workgroup. */
export const TILE = 64;
/** Invocations per side of a workgroup (16 × 16 = 256). */
const SIDE = 16;
/** Rows and columns of c per invocation. */
const REG = 4;
/** The default depth of a k-tile in workgroup memory. */
export const TILE_K = 16;
const MAX_GROUPS = 65535; // per dispatch dimension

/** What one generated kernel does: the WGSL differs for each combination. */
export interface TiledMatmulVariant {
  /** `a` is `[k, m]`, read transposed. */
  readonly transA: boolean;
  /** `b` is `[n, k]`, read transposed. */
  readonly transB: boolean;
  /** `c +=` instead of `c =`. */
  readonly accumulate: boolean;
  /** A bias `[n]` is bound (after c) and added to every row. */
  readonly bias: boolean;
  /** `a` is read through `array<vec4<f32>>`. */
  readonly vecA: boolean;
  /** `b` is read through `array<vec4<f32>>`. */
  readonly vecB: boolean;
  /** `c` is read and written through `array<vec4<f32>>`. */
  readonly vecC: boolean;
  /** `a` and `b` are one buffer, bound once (then `vecA === vecB`). */
  readonly shared: boolean;
  /** Depth of a k-tile: 16 or 32 (32 fills 16 KiB of workgroup memory). */
  readonly tileK: number;
}

/** Options of `gpuMatmul` (backends/webgpu_ops.ts). */
export interface GpuMatmulOptions {
  /** Read `a` as `[k, m]` and use its transpose. */
  transA?: boolean;
  /** Read `b` as `[n, k]` and use its transpose. */
  transB?: boolean;
  /** Add into `c` instead of overwriting it. */
  accumulate?: boolean;
  /** `[n]` added to every row of the product. */
  bias?: GpuTensor;
  /** Independent products, each `strideA`, `strideB`, `strideC` elements after the last; 1. */
  batch?: number;
  /** Elements between consecutive products' `a` (default `m·k`). */
  strideA?: number;
  /** Elements between consecutive products' `b` (default `k·n`). */
  strideB?: number;
  /** Elements between consecutive products' `c` (default `m·n`). */
  strideC?: number;
  /**
   * Elements of `a`'s buffer before its first product's `a` (default 0): a product over a
   * slice of a larger tensor, e.g. one time step of `[T, batch, features]`.
   */
  offsetA?: number;
  /** Elements of `b`'s buffer before its first product's `b` (default 0). */
  offsetB?: number;
  /** Elements of `c`'s buffer before its first product's `c` (default 0). */
  offsetC?: number;
}

/** The arguments of a tiled product (gpuMatmul's, as one object). */
export interface TiledMatmulArgs extends GpuMatmulOptions {
  /** `[m, k]`, or `[k, m]` with `transA` (per product of the batch). */
  a: GpuTensor;
  /** `[k, n]`, or `[n, k]` with `transB`. */
  b: GpuTensor;
  /** `[m, n]`: the product, written or added into. */
  c: GpuTensor;
  /** Rows of c. */
  m: number;
  /** The summed dimension. */
  k: number;
  /** Columns of c. */
  n: number;
  /** False forces scalar loads and stores (tests, benchmarks); true uses vec4s where they fit. */
  vec4?: boolean;
  /** Depth of a k-tile, 16 (default) or 32. */
  tileK?: number;
}

/** One dispatch of the tiled kernel, ready for `GpuContext.run`. */
export interface TiledMatmulPlan {
  /** The kernel's variant. */
  readonly variant: TiledMatmulVariant;
  /** A label naming the variant, e.g. `"matmul 64×64×16 transA vec4 a,b,c +bias"`. */
  readonly label: string;
  /** The WGSL (one string per variant, cached). */
  readonly code: string;
  /** The tensors in binding order: a (b unless shared), c, bias if any. */
  readonly tensors: readonly GpuTensor[];
  /**
   * The uniform words: m, k, n, strideA, strideB, strideC, tilesN, tilesM, total, offsetA,
   * offsetB, offsetC.
   */
  readonly uniforms: readonly number[];
  /** Workgroups `[x, y, z]`: `[tilesN, tilesM, batch]`, folded past 65535. */
  readonly workgroups: readonly [number, number, number];
}

function checkCount(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`gpuMatmul: ${name} must be an integer ≥ 0, got ${value}`);
  }
}

function checkTensor(name: string, t: GpuTensor, needed: number, what: string): void {
  if (t.dtype !== "float32") {
    throw new TypeError(`gpuMatmul: ${name} must be float32, got ${t.dtype}`);
  }
  if (t.size < needed) {
    throw new RangeError(
      `gpuMatmul: ${name} has ${t.size} elements (shape [${t.shape.join(", ")}]), ` +
        `${what} needs ${needed}`,
    );
  }
}

// A vec4 view reads whole 16-byte elements: the buffer must hold whole vec4s.
const vec4Buffer = (t: GpuTensor) => t.buffer.size % 16 === 0;

/**
 * Workgroups for `tilesN × tilesM × batch` groups: `[tilesN, tilesM, batch]` when each fits
 * a dispatch dimension, else the linear count folded over x, y and z (the kernel decodes
 * the linear index `x + (y + z·groupsY)·groupsX` either way and skips the surplus).
 */
export function foldWorkgroups(
  tilesN: number,
  tilesM: number,
  batch: number,
): [number, number, number] {
  if (tilesN <= MAX_GROUPS && tilesM <= MAX_GROUPS && batch <= MAX_GROUPS) {
    return [tilesN, tilesM, batch];
  }
  const total = tilesN * tilesM * batch;
  const x = Math.min(total, MAX_GROUPS);
  const rest = Math.ceil(total / x);
  const y = Math.min(rest, MAX_GROUPS);
  const z = Math.ceil(rest / y);
  return [x, y, z];
}

/**
 * Validates a product's arguments and plans its dispatch; undefined when there is nothing to
 * do (m, n or batch is 0). Throws a TypeError for a non-float32 tensor or aliased buffers,
 * a RangeError for a bad count or stride or a tensor too small for them.
 */
export function planTiledMatmul(args: TiledMatmulArgs): TiledMatmulPlan | undefined {
  const { a, b, c, m, k, n, bias } = args;
  const { transA = false, transB = false, accumulate = false, batch = 1 } = args;
  const strideA = args.strideA ?? m * k;
  const strideB = args.strideB ?? k * n;
  const strideC = args.strideC ?? m * n;
  const { offsetA = 0, offsetB = 0, offsetC = 0 } = args;
  const tileK = args.tileK ?? TILE_K;
  const counts = { m, k, n, batch, strideA, strideB, strideC, offsetA, offsetB, offsetC };
  for (const [name, value] of Object.entries(counts)) checkCount(name, value);
  if (tileK !== 16 && tileK !== 32) {
    throw new RangeError(`gpuMatmul: tileK must be 16 or 32, got ${tileK}`);
  }
  if (batch > 1 && strideC < m * n) {
    throw new RangeError(
      `gpuMatmul: strideC ${strideC} makes the ${batch} products' c overlap (each is m·n = ${
        m * n
      } elements)`,
    );
  }
  // The elements an operand's products reach: offset + (batch − 1)·stride + size.
  const last = (offset: number, stride: number, size: number) =>
    size === 0 ? 0 : offset + (batch - 1) * stride + size;
  const span = (offset: number, stride: number) =>
    (batch > 1 ? `batch ${batch}, stride ${stride}` : "one product") +
    (offset > 0 ? `, offset ${offset}` : "");
  checkTensor(
    "a",
    a,
    last(offsetA, strideA, m * k),
    `m·k = ${m}·${k} with ${span(offsetA, strideA)}`,
  );
  checkTensor(
    "b",
    b,
    last(offsetB, strideB, k * n),
    `k·n = ${k}·${n} with ${span(offsetB, strideB)}`,
  );
  checkTensor(
    "c",
    c,
    last(offsetC, strideC, m * n),
    `m·n = ${m}·${n} with ${span(offsetC, strideC)}`,
  );
  if (bias) checkTensor("bias", bias, n, `n = ${n}`);
  for (const [name, t] of [["a", a], ["b", b], ["bias", bias]] as const) {
    if (t && t.buffer === c.buffer) {
      throw new TypeError(`gpuMatmul: ${name} and c are the same buffer: c must be distinct`);
    }
  }
  if (bias && (bias.buffer === a.buffer || bias.buffer === b.buffer)) {
    throw new TypeError("gpuMatmul: bias shares a buffer with a or b: give it its own");
  }
  if (m === 0 || n === 0 || batch === 0) return undefined;

  // vec4 reads need 4-aligned rows (the dimension read contiguously), batch strides,
  // offsets and buffers of whole vec4s.
  const vec4 = args.vec4 ?? true;
  const aligned = (offset: number, stride: number) =>
    offset % 4 === 0 && (batch === 1 || stride % 4 === 0);
  let vecA = vec4 && (transA ? m : k) % 4 === 0 && aligned(offsetA, strideA) && vec4Buffer(a);
  let vecB = vec4 && (transB ? k : n) % 4 === 0 && aligned(offsetB, strideB) && vec4Buffer(b);
  const vecC = vec4 && n % 4 === 0 && aligned(offsetC, strideC) && vec4Buffer(c);
  const shared = a.buffer === b.buffer;
  if (shared) vecA = vecB = vecA && vecB; // one binding, one view
  const variant: TiledMatmulVariant = {
    transA,
    transB,
    accumulate,
    bias: bias !== undefined,
    vecA,
    vecB,
    vecC,
    shared,
    tileK,
  };
  const tilesN = Math.ceil(n / TILE), tilesM = Math.ceil(m / TILE);
  const total = tilesN * tilesM * batch;
  if (total > 0xffffffff) {
    throw new RangeError(`gpuMatmul: ${total} workgroups of ${TILE}×${TILE} are too many`);
  }
  const workgroups = foldWorkgroups(tilesN, tilesM, batch);
  if (workgroups[2] > MAX_GROUPS) {
    throw new RangeError(`gpuMatmul: ${total} workgroups of ${TILE}×${TILE} are too many`);
  }
  const tensors = [a, ...(shared ? [] : [b]), c, ...(bias ? [bias] : [])];
  return {
    variant,
    label: variantLabel(variant),
    code: tiledMatmulCode(variant),
    tensors,
    uniforms: [
      m,
      k,
      n,
      strideA,
      strideB,
      strideC,
      tilesN,
      tilesM,
      total,
      offsetA,
      offsetB,
      offsetC,
    ],
    workgroups,
  };
}

function variantLabel(v: TiledMatmulVariant): string {
  const vecs = [v.vecA && "a", v.vecB && "b", v.vecC && "c"].filter(Boolean).join(",");
  return [
    `matmul ${TILE}×${TILE}×${v.tileK}`,
    v.transA && "transA",
    v.transB && "transB",
    vecs ? `vec4 ${vecs}` : "scalar",
    v.shared && "a=b",
    v.accumulate && "+=",
    v.bias && "+bias",
  ].filter(Boolean).join(" ");
}

const codes = new Map<string, string>();

/** The WGSL of a variant (made once per variant; the same string object after). */
export function tiledMatmulCode(variant: TiledMatmulVariant): string {
  const key = JSON.stringify(variant);
  let code = codes.get(key);
  if (code === undefined) codes.set(key, code = generate(variant));
  return code;
}

// The WGSL statements that stage one operand's k-tile into workgroup memory. `tile` is the
// shared array (`tileA` or `tileB`, vec4s, index kk·16 + outer/4, component outer % 4); `outer` is
// the operand's other dimension (m for a, n for b) starting at `start`; `kMajor` says the
// operand lies [k, outer] in memory (a transposed, b as is), else [outer, k].
function stage(
  tile: string,
  source: string,
  offset: string,
  outer: string,
  start: string,
  kMajor: boolean,
  vec: boolean,
  tileK: number,
): string {
  const Q = TILE / 4; // vec4s along a tile's outer side
  const invocations = SIDE * SIDE;
  if (vec && kMajor) {
    // tileK rows of Q vec4s, stored as they are.
    return `
    for (var r = 0u; r < ${(tileK * Q) / invocations}u; r++) {
      let e = lid + r * ${invocations}u;
      let kk = e / ${Q}u;
      let q = e % ${Q}u;
      let gk = k0 + kk;
      let go = ${start} + q * 4u;
      var v = vec4<f32>();
      if (gk < p.k && go < p.${outer}) { v = ${source}[(${offset} + gk * p.${outer} + go) / 4u]; }
      ${tile}[kk * ${Q}u + q] = v;
    }`;
  }
  if (vec) {
    // TILE rows of tileK/4 vec4s along k, each spread over 4 k-rows of the tile.
    return `
    for (var r = 0u; r < ${(TILE * tileK) / 4 / invocations}u; r++) {
      let e = lid + r * ${invocations}u;
      let o = e / ${tileK / 4}u;
      let kq = e % ${tileK / 4}u;
      let go = ${start} + o;
      let gk = k0 + kq * 4u;
      var v = vec4<f32>();
      if (go < p.${outer} && gk < p.k) { v = ${source}[(${offset} + go * p.k + gk) / 4u]; }
      let at = kq * ${4 * Q}u + o / 4u;
      let part = o % 4u;
      ${tile}[at][part] = v.x;
      ${tile}[at + ${Q}u][part] = v.y;
      ${tile}[at + ${2 * Q}u][part] = v.z;
      ${tile}[at + ${3 * Q}u][part] = v.w;
    }`;
  }
  // Scalars, consecutive invocations along the operand's rows in memory.
  const [first, second] = kMajor ? ["kk", "o"] : ["o", "kk"];
  const along = kMajor ? TILE : tileK;
  const index = kMajor ? `gk * p.${outer} + go` : `go * p.k + gk`;
  return `
    for (var r = 0u; r < ${(TILE * tileK) / invocations}u; r++) {
      let e = lid + r * ${invocations}u;
      let ${first} = e / ${along}u;
      let ${second} = e % ${along}u;
      let go = ${start} + o;
      let gk = k0 + kk;
      var v = 0.0;
      if (go < p.${outer} && gk < p.k) { v = ${source}[${offset} + ${index}]; }
      ${tile}[kk * ${Q}u + o / 4u][o % 4u] = v;
    }`;
}

// The write of an invocation's 4 × 4 register tile (acc0..acc3, rows row0.., columns col0..).
function store(v: TiledMatmulVariant): string {
  const lines: string[] = [];
  const op = v.accumulate ? "+=" : "=";
  if (v.vecC) {
    // n % 4 = 0 and col0 % 4 = 0: the 4 columns are all inside or all outside.
    lines.push(`if (col0 < p.n) {`);
    if (v.bias) {
      lines.push(
        `  let bv = vec4<f32>(bias[col0], bias[col0 + 1u], bias[col0 + 2u], bias[col0 + 3u]);`,
      );
    }
    for (let i = 0; i < REG; i++) {
      const value = v.bias ? `acc${i} + bv` : `acc${i}`;
      lines.push(
        `  if (row0 + ${i}u < p.m) { c[(offC + (row0 + ${i}u) * p.n + col0) / 4u] ${op} ${value}; }`,
      );
    }
    lines.push(`}`);
    return lines.join("\n  ");
  }
  const parts = ["x", "y", "z", "w"];
  for (let i = 0; i < REG; i++) {
    lines.push(`if (row0 + ${i}u < p.m) {`);
    lines.push(`  let at = offC + (row0 + ${i}u) * p.n + col0;`);
    for (let j = 0; j < REG; j++) {
      const value = v.bias ? `acc${i}.${parts[j]} + bias[col0 + ${j}u]` : `acc${i}.${parts[j]}`;
      lines.push(`  if (col0 + ${j}u < p.n) { c[at + ${j}u] ${op} ${value}; }`);
    }
    lines.push(`}`);
  }
  return lines.join("\n  ");
}

function generate(v: TiledMatmulVariant): string {
  const Q = TILE / 4;
  const type = (vec: boolean) => vec ? "array<vec4<f32>>" : "array<f32>";
  const bindings = [`@group(0) @binding(1) var<storage, read> a: ${type(v.vecA)};`];
  if (!v.shared) bindings.push(`@group(0) @binding(2) var<storage, read> b: ${type(v.vecB)};`);
  const cAt = v.shared ? 2 : 3;
  bindings.push(`@group(0) @binding(${cAt}) var<storage, read_write> c: ${type(v.vecC)};`);
  if (v.bias) bindings.push(`@group(0) @binding(${cAt + 1}) var<storage, read> bias: array<f32>;`);
  const sourceB = v.shared ? "a" : "b";
  return /* wgsl */ `// ${variantLabel(v)}
struct P { m: u32, k: u32, n: u32, strideA: u32, strideB: u32, strideC: u32,
           tilesN: u32, tilesM: u32, total: u32, offsetA: u32, offsetB: u32, offsetC: u32 };
@group(0) @binding(0) var<uniform> p: P;
${bindings.join("\n")}
var<workgroup> tileA: array<vec4<f32>, ${v.tileK * Q}>; // [tileK][${TILE} rows / 4]
var<workgroup> tileB: array<vec4<f32>, ${v.tileK * Q}>; // [tileK][${TILE} columns / 4]

@compute @workgroup_size(${SIDE}, ${SIDE})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) groups: vec3u,
  @builtin(local_invocation_id) local: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = wid.x + (wid.y + wid.z * groups.y) * groups.x;
  if (w >= p.total) { return; }
  let tn = w % p.tilesN;
  let tm = (w / p.tilesN) % p.tilesM;
  let batch = w / (p.tilesN * p.tilesM);
  let offA = p.offsetA + batch * p.strideA;
  let offB = p.offsetB + batch * p.strideB;
  let offC = p.offsetC + batch * p.strideC;
  let m0 = tm * ${TILE}u;
  let n0 = tn * ${TILE}u;
  let tx = local.x;
  let ty = local.y;
  var acc0 = vec4<f32>();
  var acc1 = vec4<f32>();
  var acc2 = vec4<f32>();
  var acc3 = vec4<f32>();
  for (var k0 = 0u; k0 < p.k; k0 += ${v.tileK}u) {
    ${stage("tileA", "a", "offA", "m", "m0", v.transA, v.vecA, v.tileK)}
    ${stage("tileB", sourceB, "offB", "n", "n0", !v.transB, v.vecB, v.tileK)}
    workgroupBarrier();
    for (var kk = 0u; kk < ${v.tileK}u; kk++) {
      let av = tileA[kk * ${Q}u + ty];
      let bv = tileB[kk * ${Q}u + tx];
      acc0 += av.x * bv;
      acc1 += av.y * bv;
      acc2 += av.z * bv;
      acc3 += av.w * bv;
    }
    workgroupBarrier();
  }
  let row0 = m0 + ty * ${REG}u;
  let col0 = n0 + tx * ${REG}u;
  ${store(v)}
}`;
}
