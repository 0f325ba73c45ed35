// What the GPU tests share: a test that is skipped, with a warning, where no WebGPU adapter
// exists; and a comparison of a layer's GPU forward and backward against its CPU ones.
import assert from "node:assert/strict";
import { openWebGpu, type WebGpuContext, webgpuStatus } from "../backends/webgpu.ts";
import type { GpuLayer, GpuTensor } from "../core/gpu.ts";
import type { Layer } from "../core/layer.ts";
import { Tensor } from "../core/tensor.ts";

const status = await webgpuStatus();
/** Whether this machine has a WebGPU adapter (lavapipe counts). */
export const GPU_AVAILABLE: boolean = status.available;
let warned = false;

/**
 * A Deno test that gets a fresh GPU context and destroys it after; reported as ignored, with
 * a warning, where WebGPU is not available.
 */
export function gpuTest(
  name: string,
  fn: (ctx: WebGpuContext, t: Deno.TestContext) => Promise<void> | void,
): void {
  if (!status.available && !warned) {
    warned = true;
    console.warn(`warning: GPU tests skipped: ${status.reason}`);
  }
  Deno.test({
    name,
    ignore: !status.available,
    async fn(t) {
      const ctx = await openWebGpu(name);
      try {
        await fn(ctx, t);
      } finally {
        await ctx.close();
      }
    },
  });
}

/** Uploads a float32 tensor. */
export function toGpu(ctx: WebGpuContext, tensor: Tensor): GpuTensor {
  const data = tensor.data instanceof Float32Array ? tensor.data : Float32Array.from(tensor.data);
  return ctx.upload(data, tensor.shape, "float32");
}

/** Reads tensors back as float32 arrays (submitting what was recorded). */
export async function fromGpu(
  ctx: WebGpuContext,
  ...tensors: GpuTensor[]
): Promise<Float32Array[]> {
  const buffers = await ctx.read(tensors, "test");
  return buffers.map((b) => new Float32Array(b));
}

/** The largest |a − b| over the largest |b| (or 1, if smaller): float32 noise is ~1e-6. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths differ");
  let diff = 0, scale = 1e-30;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1);
}

/** The errors of one layer's GPU pass against its CPU pass, by what was compared. */
export type LayerErrors = Record<string, number>;

/**
 * Runs `layer` forward and backward on the GPU and on the CPU (float32, the same params and
 * inputs; grads zeroed first) and returns the relative error of the outputs, d(inputs) and
 * every param gradient. The GPU runs first, so that the CPU pass cannot change what it
 * reads; with `training` false only the outputs are compared.
 */
export async function compareLayer(
  ctx: WebGpuContext,
  layer: Layer & GpuLayer,
  inputs: Tensor,
  dvalues: Tensor,
  options: { training?: boolean } = {},
): Promise<LayerErrors> {
  const training = options.training ?? true;
  for (const p of layer.params()) p.zeroGrad();
  const out = layer.gpuForward(ctx, toGpu(ctx, inputs), { training });
  const tensors = [out];
  if (training) {
    tensors.push(layer.gpuBackward(ctx, toGpu(ctx, dvalues)));
    for (const p of layer.params()) tensors.push(ctx.param(p).grad);
  }
  const gpu = await fromGpu(ctx, ...tensors);
  const errors: LayerErrors = {};
  const cpuOut = layer.forward(inputs, { training });
  errors.outputs = relativeError(gpu[0], cpuOut.data);
  if (training) {
    const cpuD = layer.backward(dvalues);
    errors.dinputs = relativeError(gpu[1], cpuD.data);
    layer.params().forEach((p, i) => errors[p.name] = relativeError(gpu[2 + i], p.grad.data));
  }
  return errors;
}

/** Asserts every error is below `tolerance` (float32 noise: 1e-4 by default). */
export function assertClose(errors: LayerErrors, tolerance = 1e-4, what = ""): void {
  for (const [name, error] of Object.entries(errors)) {
    assert.ok(
      error <= tolerance,
      `${what}${name}: GPU vs CPU relative error ${error.toExponential(2)} > ${tolerance}`,
    );
  }
}

/** A float32 tensor of `shape` with seeded values in [−1, 1). */
export function randomTensor(shape: number[], seed: number): Tensor {
  const t = Tensor.zeros(shape, { dtype: "float32" });
  let s = seed >>> 0 || 1;
  for (let i = 0; i < t.size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    t.data[i] = s / 2 ** 31 - 1;
  }
  return t;
}
