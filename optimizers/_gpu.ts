// What the built-in optimizers' GPU sides share: gradient clipping on the device (values,
// then the global norm through a tree reduction, stopping the step on a non-finite norm) and
// the update kernel every optimizer is built from (one invocation per element, skipped when
// the step's status says stop). Not exported from mod.ts.
import {
  f32Bits,
  flatIndex,
  type GpuContext,
  type GpuKernel,
  type GpuTensor,
  gridFor,
} from "../core/gpu.ts";
import type { Param } from "../core/param.ts";
import type { FloatArray } from "../core/tensor.ts";
import { kernel } from "../backends/webgpu_ops.ts";
import type { Clipping } from "./_common.ts";

/**
 * What clipping left for the update kernels to apply to the gradients they read: the value
 * clamp (when no norm was taken, it is fused into the update), or the global norm's factor
 * `scale [1]` (the values were clamped while the norm was summed).
 */
export interface GpuClipped {
  /** Clamp each gradient element to [−clipValue, clipValue] before the update. */
  readonly clipValue?: number;
  /** `[1]`: multiply each gradient by `scale[0]` before the update. */
  readonly scale?: GpuTensor;
}

const GROUP = 256; // invocations per workgroup of every kernel here
const PER_INVOCATION = 16; // elements each invocation of the sum of squares adds, about

// The workgroups summing the squares of a gradient of `size` elements (≤ 256).
function squareGroups(size: number): number {
  return Math.min(GROUP, Math.max(1, Math.ceil(size / (GROUP * PER_INVOCATION))));
}

// partials[offset + group] = Σ g² over the elements of this group's stride (after clamping g
// to [−clip, clip] in place, when clipping values): strided sums, then a tree reduction.
const SQUARES = (clipValues: boolean) => /* wgsl */ `
struct P { count: u32, groups: u32, offset: u32, clip: f32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, ${clipValues ? "read_write" : "read"}> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
var<workgroup> partial: array<f32, ${GROUP}>;
@compute @workgroup_size(${GROUP})
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  var sum = 0.0;
  for (var i = wid.x * ${GROUP}u + lid.x; i < p.count; i += p.groups * ${GROUP}u) {
    var g = grad[i];
    ${
  clipValues ? "g = select(select(g, -p.clip, g < -p.clip), p.clip, g > p.clip); grad[i] = g;" : ""
}
    sum += g * g;
  }
  partial[lid.x] = sum;
  workgroupBarrier();
  for (var width = ${GROUP / 2}u; width > 0u; width >>= 1u) {
    if (lid.x < width) { partial[lid.x] += partial[lid.x + width]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { partials[p.offset + wid.x] = partial[0]; }
}`;

// norm = √Σ partials; scale[0] = min(1, maxNorm / (norm + 1e-6)); a non-finite norm sets
// status to [2, step] (unless a stop is already there) and leaves scale alone.
const NORM = /* wgsl */ `
struct P { count: u32, step: u32, maxNorm: f32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> status: array<u32>;
var<workgroup> partial: array<f32, ${GROUP}>;
@compute @workgroup_size(${GROUP})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var sum = 0.0;
  for (var i = lid.x; i < p.count; i += ${GROUP}u) { sum += partials[i]; }
  partial[lid.x] = sum;
  workgroupBarrier();
  for (var width = ${GROUP / 2}u; width > 0u; width >>= 1u) {
    if (lid.x < width) { partial[lid.x] += partial[lid.x + width]; }
    workgroupBarrier();
  }
  if (lid.x != 0u) { return; }
  let norm = sqrt(partial[0]);
  if ((bitcast<u32>(norm) & 0x7f800000u) == 0x7f800000u) {
    if (status[0] == 0u) {
      status[0] = 2u;
      status[1] = p.step;
    }
    return;
  }
  let coefficient = p.maxNorm / (norm + 1e-6);
  scale[0] = select(1.0, coefficient, coefficient < 1.0);
}`;

/**
 * `clipGradients` on the device: records the kernels that clip the gradients of `params`
 * as `clipping` asks (values first, then the global L2 norm over all of them) and returns
 * what the update kernels must still apply. A non-finite norm sets `ctx.status` to
 * `[2, ctx.step]` (when no stop is there yet), so that the update kernels change nothing.
 */
export function gpuClipGradients(
  ctx: GpuContext,
  owner: object,
  params: readonly Param[],
  clipping: Clipping,
): GpuClipped {
  const { clipValue, globalClipNorm } = clipping;
  if (globalClipNorm === undefined) return { clipValue };
  const groups = params.map((param) => squareGroups(param.value.size));
  const total = groups.reduce((a, b) => a + b, 0);
  const partials = ctx.buffer(owner, "clip partials", [total]);
  const scale = ctx.buffer(owner, "clip scale", [1]);
  const squares = kernel("clip: sum of squares", SQUARES(clipValue !== undefined));
  let offset = 0;
  params.forEach((param, i) => {
    const { grad } = ctx.param(param);
    const words = [grad.size, groups[i], offset, f32Bits(clipValue ?? 0)];
    ctx.run(owner, `clip squares ${i}`, squares, [grad, partials], words, groups[i]);
    offset += groups[i];
  });
  const words = [total, ctx.step, f32Bits(globalClipNorm)];
  ctx.run(owner, "clip norm", kernel("clip: norm", NORM), [partials, scale, ctx.status], words, 1);
  return { scale };
}

/**
 * An optimizer's element-wise update, as WGSL: `body` reads the clipped gradient `g` and the
 * uniform scalars `p.<name>`, and assigns `value` and the slots (WGSL variables named as
 * `slots`), which are stored back after it.
 */
export interface GpuUpdate {
  /** A name for errors, e.g. `"Adam.update"`. */
  readonly label: string;
  /** The per-parameter state arrays the body reads and assigns, e.g. `["momentum", "cache"]`. */
  readonly slots: readonly string[];
  /** The f32 uniforms the body reads as `p.<name>`, in the order their values are passed. */
  readonly scalars: readonly string[];
  /** The WGSL statements of one element's update. */
  readonly body: string;
}

type ClipMode = "none" | "value" | "scale";
const updateKernels = new WeakMap<GpuUpdate, Map<ClipMode, GpuKernel>>();

function updateCode(update: GpuUpdate, mode: ClipMode): string {
  const { slots, scalars, body } = update;
  const fields = scalars.map((name) => `, ${name}: f32`).join("");
  const slotBindings = slots.map((name, j) =>
    `@group(0) @binding(${j + 4}) var<storage, read_write> ${name}Data: array<f32>;`
  ).join("\n");
  const scaleBinding = mode === "scale"
    ? `@group(0) @binding(${slots.length + 4}) var<storage, read> scale: array<f32>;`
    : "";
  const clip = mode === "value"
    ? "g = select(select(g, -p.clip, g < -p.clip), p.clip, g > p.clip); grad[i] = g;"
    : mode === "scale"
    ? "g = g * scale[0]; grad[i] = g;"
    : "";
  const loads = slots.map((name) => `var ${name} = ${name}Data[i];`).join("\n  ");
  const stores = slots.map((name) => `${name}Data[i] = ${name};`).join("\n  ");
  return /* wgsl */ `
struct P { count: u32, clip: f32${fields} };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> status: array<u32>;
@group(0) @binding(2) var<storage, read_write> valueData: array<f32>;
@group(0) @binding(3) var<storage, ${mode === "none" ? "read" : "read_write"}> grad: array<f32>;
${slotBindings}
${scaleBinding}
@compute @workgroup_size(${GROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex(GROUP)}
  if (i >= p.count || status[0] != 0u) { return; }
  var g = grad[i];
  ${clip}
  var value = valueData[i];
  ${loads}
  ${body}
  valueData[i] = value;
  ${stores}
}`;
}

/**
 * Records `update` of one param on the device: one invocation per element, which returns at
 * once when `ctx.status` says stop. `slots` are the CPU arrays of the param's state (mirrored
 * on the device, in the order of `update.slots`), `scalars` the values of `update.scalars`
 * (f32), `clipped` what {@linkcode gpuClipGradients} left to apply.
 */
export function gpuUpdate(
  ctx: GpuContext,
  owner: object,
  key: string,
  update: GpuUpdate,
  param: Param,
  slots: readonly FloatArray[],
  scalars: readonly number[],
  clipped: GpuClipped,
): void {
  const mode: ClipMode = clipped.scale
    ? "scale"
    : clipped.clipValue !== undefined
    ? "value"
    : "none";
  let variants = updateKernels.get(update);
  if (!variants) updateKernels.set(update, variants = new Map());
  let found = variants.get(mode);
  if (!found) variants.set(mode, found = kernel(update.label, updateCode(update, mode)));
  const { value, grad } = ctx.param(param);
  const shape = param.value.shape;
  const tensors = [ctx.status, value, grad, ...slots.map((slot) => ctx.mirror(slot, shape))];
  if (clipped.scale) tensors.push(clipped.scale);
  const words = [value.size, f32Bits(clipped.clipValue ?? 0), ...scalars.map(f32Bits)];
  ctx.run(owner, key, found, tensors, words, gridFor(value.size, GROUP));
}
