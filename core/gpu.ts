// The GPU side of the plugin contracts: what a layer, loss, metric or optimizer implements to
// train on WebGPU, and the context the training loop hands them. The implementation of the
// context is in backends/webgpu.ts; nothing here touches a device.
import type { Param } from "./param.ts";
import type { FloatArray, Tensor } from "./tensor.ts";

/** Element type of a {@linkcode GpuTensor}: WGSL has no float64. */
export type GpuDType = "float32" | "int32" | "uint32";

/**
 * A tensor that lives in a GPU buffer, row-major like a `Tensor`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { GpuTensor } from "@chainrule/nn/plugin";
 *
 * const describe = (t: GpuTensor) => `${t.dtype} [${t.shape.join(", ")}]`;
 * const tensor = { shape: [2, 3], size: 6, dtype: "float32" } as unknown as GpuTensor;
 * assert.equal(describe(tensor), "float32 [2, 3]");
 * ```
 */
export interface GpuTensor {
  /** The buffer holding the elements from byte 0 (it may be larger than `size` needs). */
  readonly buffer: GPUBuffer;
  /** Its shape, e.g. `[batch, features]`. */
  readonly shape: readonly number[];
  /** Its element count, the product of `shape`. */
  readonly size: number;
  /** Its element type. */
  readonly dtype: GpuDType;
}

/**
 * A WGSL compute kernel. By convention `@binding(0)` is a uniform struct of 4-byte scalars
 * (the `uniforms` of {@linkcode GpuContext.run}, in declaration order) and bindings 1, 2, …
 * are the tensors, in the order given to `run`.
 */
export interface GpuKernel {
  /** A name for errors and debuggers, e.g. `"Dense.forward"`. */
  readonly label: string;
  /** The WGSL source. */
  readonly code: string;
  /** The entry point; `"main"` when omitted. */
  readonly entryPoint?: string;
}

/** Where a loss, metric or penalty adds its batch value: `results[index] += value`. */
export interface GpuSink {
  /** The step's results, float32. */
  readonly results: GpuTensor;
  /** The element of `results` to add into. */
  readonly index: number;
}

/** Options of a layer's GPU forward pass. */
export interface GpuForwardOptions {
  /** True while training (dropout drops, BatchNorm uses batch statistics). */
  training?: boolean;
}

/** Options of a layer's GPU backward pass. */
export interface GpuBackwardOptions {
  /** False when nobody reads d(loss)/d(inputs) (the first layer): it may be skipped. */
  inputGradient?: boolean;
}

/** Workgroup counts of a dispatch: x, or [x, y, z]. */
export type GpuWorkgroups = number | readonly [number, number?, number?];

/**
 * What the training loop gives a plugin's GPU side: buffers that persist for the whole fit,
 * device copies of the model's arrays, and one command stream per step.
 *
 * Every buffer it creates is created once, on first use, and destroyed when the fit ends
 * (pipelines stay compiled for the next fit on the same device); plugins never create or
 * free GPU objects themselves.
 */
export interface GpuContext {
  /** The device (for plugins that need a feature or a limit). */
  readonly device: GPUDevice;
  /**
   * A buffer of this plugin's, `name`, shaped `shape`: created zero-filled on first use and
   * the same one on every later call with the same owner, name and shape.
   */
  buffer(owner: object, name: string, shape: readonly number[], dtype?: GpuDType): GpuTensor;
  /**
   * The device copy of a CPU array (a param's values, BatchNorm's running statistics, an
   * optimizer's moments): uploaded on first use, written back into `data` when the fit
   * ends. float32 only.
   */
  mirror(data: FloatArray, shape: readonly number[]): GpuTensor;
  /** A param's value and gradient on the device (mirrors of `param.value` and `param.grad`). */
  param(param: Param): { value: GpuTensor; grad: GpuTensor };
  /**
   * Records one dispatch of `kernel` into the current step. `uniforms` are 4-byte words
   * (u32, or f32 through {@linkcode f32Bits}); `(owner, key)` names the call site, whose
   * uniform buffer and bind group are created once and reused.
   */
  run(
    owner: object,
    key: string,
    kernel: GpuKernel,
    tensors: readonly GpuTensor[],
    uniforms: readonly number[],
    workgroups: GpuWorkgroups,
  ): void;
  /**
   * The step's status words, `u32` `[stop, batch]`: `stop` is non-zero once a step's loss was
   * not finite (or a clipping norm was not): optimizers and running-statistics updates
   * must then leave their state unchanged.
   */
  readonly status: GpuTensor;
  /** The number of the current training step since the fit began (seeds dropout). */
  readonly step: number;
}

/** The bits of `value` as a float32, for a uniform word read as `f32`. */
export function f32Bits(value: number): number {
  F32[0] = value;
  return U32[0];
}
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Workgroups for `count` invocations of `size` per group, folded into y past 65535 groups. */
export function gridFor(count: number, size = 256): [number, number] {
  const groups = Math.max(1, Math.ceil(count / size));
  if (groups <= 65535) return [groups, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}

/**
 * A WGSL line computing the flat invocation index `i` of a dispatch made with
 * {@linkcode gridFor} and `@workgroup_size(size)`: needs `gid` (global_invocation_id) and
 * `groups` (num_workgroups) builtins.
 */
export function flatIndex(size = 256): string {
  return `let i = gid.x + gid.y * groups.x * ${size}u;`;
}

/** A layer's GPU side: its kernels beside its CPU forward and backward. */
export interface GpuLayer {
  /** Forward on the device: returns outputs, caching what `gpuBackward` needs. */
  gpuForward(ctx: GpuContext, inputs: GpuTensor, options?: GpuForwardOptions): GpuTensor;
  /** Backward on the device: adds into the params' gradients, returns d(inputs). */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor, options?: GpuBackwardOptions): GpuTensor;
  /** Adds the layer's penalty (L1/L2) to `sink`; absent when it has none. */
  gpuRegularization?(ctx: GpuContext, sink: GpuSink): void;
  /**
   * Checks on the CPU, before a GPU run starts, what the layer's kernels cannot report
   * (Embedding: every id an integer in range), when it is the model's first layer;
   * throws as `forward` would.
   */
  gpuCheckInputs?(inputs: Tensor, where: string): void;
}

/**
 * A loss's GPU side. Targets are always float32 on the device: class indices (one per
 * position, `[positions]`, exact as floats; read them with `i32(y)`), or values / one-hot
 * rows shaped like the outputs (or `[batch]` for one output per sample), as the CPU loss
 * takes them. The training loop checks every batch's targets on the CPU before it starts.
 */
export interface GpuLoss {
  /** Adds the batch's mean loss to `sink`, caching what `gpuBackward` needs. */
  gpuForward(ctx: GpuContext, outputs: GpuTensor, targets: GpuTensor, sink: GpuSink): void;
  /** d(mean loss)/d(outputs). */
  gpuBackward(ctx: GpuContext): GpuTensor;
}

/** A metric's GPU side. */
export interface GpuMetric {
  /** Adds the batch's mean score to `sink`. */
  gpuMeasure(ctx: GpuContext, outputs: GpuTensor, targets: GpuTensor, sink: GpuSink): void;
}

/** An optimizer's GPU side. */
export interface GpuOptimizer {
  /**
   * One update of every param on the device, clipping first if asked; skipped on the device
   * when `ctx.status` says stop. Scalars (the update count, the scheduled rate) advance on
   * the CPU as in `step`.
   */
  gpuStep(ctx: GpuContext, params: readonly Param[]): void;
}
