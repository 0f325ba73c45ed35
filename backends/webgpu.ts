// WebGPU: finding an adapter, and the context a GPU fit runs in (core/gpu.ts's GpuContext):
// buffers created once and reused, device copies of the model's arrays written back at the
// end, pipelines and bind groups cached, one command encoder per step.
import type { GpuContext, GpuDType, GpuKernel, GpuTensor, GpuWorkgroups } from "../core/gpu.ts";
import type { Param } from "../core/param.ts";
import { type FloatArray, formatShape } from "../core/tensor.ts";

/** What {@linkcode webgpuStatus} found. */
export type WebGpuStatus =
  | {
    /** WebGPU can train here. */
    available: true;
    /** The adapter found (its `info` names the GPU; lavapipe and SwiftShader are software). */
    adapter: GPUAdapter;
  }
  | {
    /** WebGPU cannot train here. */
    available: false;
    /** Why: no `navigator.gpu`, no adapter, or the device request failed, with the details. */
    reason: string;
  };

// deno-lint-ignore no-explicit-any
const gpuOf = (): GPU | undefined => (globalThis as any).navigator?.gpu;

/**
 * Whether WebGPU is available here, and why not when it is not. It asks for an adapter
 * and a device, then frees the device.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { webgpuStatus } from "@chainrule/nn";
 *
 * const status = await webgpuStatus();
 * if (status.available) assert.ok(status.adapter);
 * else assert.match(status.reason, /navigator\.gpu|adapter|device/);
 * ```
 */
export async function webgpuStatus(): Promise<WebGpuStatus> {
  const gpu = gpuOf();
  if (!gpu) {
    return {
      available: false,
      reason: "this runtime has no navigator.gpu (WebGPU): use Deno 2 or a browser with WebGPU",
    };
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (error) {
    return { available: false, reason: `navigator.gpu.requestAdapter() failed: ${error}` };
  }
  if (!adapter) {
    return {
      available: false,
      reason: "navigator.gpu.requestAdapter() found no adapter (no GPU driver; on Debian, " +
        "apt-get install mesa-vulkan-drivers gives a software one)",
    };
  }
  try {
    const device = await adapter.requestDevice();
    device.destroy();
  } catch (error) {
    return { available: false, reason: `the adapter's device request failed: ${error}` };
  }
  // Deno's adapter serves one device: ask again, so the caller gets a fresh one.
  const fresh = await gpu.requestAdapter();
  return fresh ? { available: true, adapter: fresh } : {
    available: false,
    reason: "navigator.gpu.requestAdapter() found no adapter the second time",
  };
}

// One device serves every context of this thread in turn, with its compiled pipelines:
// requesting a device and compiling its kernels cost more than a short fit (seconds on a
// software adapter), and a device per fit left a trail of devices for the driver to tear
// down. It is given up (destroyed) after a device error, and requested afresh when lost.
interface SharedDevice {
  device: GPUDevice;
  pipelines: Map<string, GPUComputePipeline>; // by entry point and WGSL source
  lost?: string; // why the device was lost, once it was
  retired: boolean; // destroyed by a context after a device error
}

let shared: Promise<SharedDevice> | undefined;
let newest: GPUDevice | undefined; // the device `shared` holds or will hold, for unload

async function requestShared(where: string): Promise<SharedDevice> {
  const gpu = gpuOf();
  const fail = (reason: string) =>
    new Error(`${where}: device "webgpu" is not available: ${reason}`);
  if (!gpu) {
    throw fail("this runtime has no navigator.gpu (WebGPU): use Deno 2 or a browser with WebGPU");
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (error) {
    throw fail(`navigator.gpu.requestAdapter() failed: ${error}`);
  }
  if (!adapter) {
    throw fail(
      "navigator.gpu.requestAdapter() found no adapter (no GPU driver; on Debian, " +
        "apt-get install mesa-vulkan-drivers gives a software one)",
    );
  }
  const limits = adapter.limits;
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxStorageBuffersPerShaderStage: Math.min(10, limits.maxStorageBuffersPerShaderStage),
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      },
    });
  } catch (error) {
    throw fail(`the adapter's device request failed: ${error}`);
  }
  const entry: SharedDevice = { device, pipelines: new Map(), retired: false };
  device.lost.then((info) => void (entry.lost = `${info.reason}: ${info.message}`));
  // Freed before the process ends, not left to the driver's own teardown at exit: one
  // listener for whichever device is the newest (a replaced one was destroyed or lost).
  if (!newest) globalThis.addEventListener?.("unload", () => newest?.destroy());
  newest = device;
  return entry;
}

/**
 * The context of a GPU fit, on this thread's device (requested now when there is none, or
 * it was lost or given up); throws an Error naming `where` and the reason when none.
 */
export async function openWebGpu(where: string): Promise<WebGpuContext> {
  const current = await shared?.catch(() => undefined);
  if (!current || current.lost !== undefined || current.retired) {
    shared = requestShared(where);
    shared.catch(() => (shared = undefined));
  }
  return new WebGpuContext(await shared!);
}

const BYTES = 4; // every GpuDType is 4 bytes

interface CallSite {
  pipeline: GPUComputePipeline;
  uniform: GPUBuffer;
  words: Uint32Array<ArrayBuffer>; // the uniforms last written
  tensors: readonly GpuTensor[];
  bindGroup: GPUBindGroup;
  usedIn: number; // the submit it was last dispatched in (-1: never)
}

interface Mirror {
  data: FloatArray;
  tensor: GpuTensor;
}

type Words = Float32Array | Int32Array | Uint32Array;

// writeBuffer takes views of plain ArrayBuffers; a view of shared memory (the wasm backend's
// resident buffers) is copied first.
function plain(data: Words): Words & { buffer: ArrayBuffer } {
  if (data.buffer instanceof ArrayBuffer) return data as Words & { buffer: ArrayBuffer };
  return data.slice() as Words & { buffer: ArrayBuffer };
}

function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) size *= d;
  return size;
}

/**
 * The context of one GPU fit, predict or evaluate (see `GpuContext` for the contract), on
 * the thread's shared device. Not exported from `mod.ts`: the training loop opens and
 * closes it.
 */
export class WebGpuContext implements GpuContext {
  readonly device: GPUDevice;
  readonly status: GpuTensor;
  step = 0;
  #buffers = new Map<object, Map<string, GpuTensor>>();
  #mirrors = new Map<FloatArray, Mirror>();
  #params = new Map<Param, { value: GpuTensor; grad: GpuTensor }>();
  #shared: SharedDevice;
  #calls = new Map<object, Map<string, CallSite[]>>();
  #submits = 0; // submits so far: a call site's uniforms hold one value per submit
  #created: GPUBuffer[] = [];
  #encoder?: GPUCommandEncoder;
  #pass?: GPUComputePassEncoder;
  #error?: string;
  #destroyed = false;
  #staging = new Map<number, GPUBuffer>(); // readback buffers by size, reused

  constructor(shared: SharedDevice) {
    this.#shared = shared;
    this.device = shared.device;
    this.device.addEventListener("uncapturederror", this.#onError);
    this.status = this.#create([2], "uint32", "status");
  }

  #onError = (event: Event): void => {
    this.#error ??= (event as GPUUncapturedErrorEvent).error.message;
  };

  get #lost(): string | undefined {
    return this.#shared.lost;
  }

  #create(shape: readonly number[], dtype: GpuDType, label: string): GpuTensor {
    const size = sizeOf(shape);
    const buffer = this.device.createBuffer({
      label,
      // At least 16 bytes: a binding must not be empty, and copies move 4-byte multiples.
      size: Math.max(16, Math.ceil((size * BYTES) / 16) * 16),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.#created.push(buffer);
    return { buffer, shape: [...shape], size, dtype };
  }

  buffer(
    owner: object,
    name: string,
    shape: readonly number[],
    dtype: GpuDType = "float32",
  ): GpuTensor {
    let named = this.#buffers.get(owner);
    if (!named) this.#buffers.set(owner, named = new Map());
    const key = `${name}:${dtype}:${shape.join("x")}`;
    let tensor = named.get(key);
    if (!tensor) named.set(key, tensor = this.#create(shape, dtype, name));
    return tensor;
  }

  /** A tensor filled from `data` now (data sets, targets): created once per call. */
  upload(
    data: Float32Array | Int32Array | Uint32Array,
    shape: readonly number[],
    dtype: GpuDType,
  ): GpuTensor {
    const tensor = this.#create(shape, dtype, "data");
    this.device.queue.writeBuffer(tensor.buffer, 0, plain(data));
    return tensor;
  }

  /** Writes `data` into `tensor` (a permutation, a batch of targets) before the next step. */
  write(tensor: GpuTensor, data: Words): void {
    this.device.queue.writeBuffer(tensor.buffer, 0, plain(data));
  }

  mirror(data: FloatArray, shape: readonly number[]): GpuTensor {
    let mirror = this.#mirrors.get(data);
    if (!mirror) {
      if (!(data instanceof Float32Array)) {
        throw new TypeError(
          `GpuContext.mirror: WebGPU has no float64; got a ${data.constructor.name} of shape ${
            formatShape(shape)
          }`,
        );
      }
      const tensor = this.#create(shape, "float32", "mirror");
      this.device.queue.writeBuffer(tensor.buffer, 0, plain(data));
      this.#mirrors.set(data, mirror = { data, tensor });
    }
    return mirror.tensor;
  }

  param(param: Param): { value: GpuTensor; grad: GpuTensor } {
    let pair = this.#params.get(param);
    if (!pair) {
      const shape = param.value.shape;
      pair = {
        value: this.mirror(param.value.data, shape),
        grad: this.mirror(param.grad.data, shape),
      };
      this.#params.set(param, pair);
    }
    return pair;
  }

  /** GPU buffers created so far (data, tensors, uniforms, readback): flat in a steady state. */
  get buffersCreated(): number {
    return this.#created.length;
  }

  /** The gradients of every param used so far, to clear at the start of a step. */
  get grads(): GpuTensor[] {
    return [...this.#params.values()].map((pair) => pair.grad);
  }

  #pipeline(kernel: GpuKernel): GPUComputePipeline {
    const entryPoint = kernel.entryPoint ?? "main";
    const key = `${entryPoint}\n${kernel.code}`;
    const pipelines = this.#shared.pipelines;
    let pipeline = pipelines.get(key);
    if (!pipeline) {
      const module = this.device.createShaderModule({ label: kernel.label, code: kernel.code });
      pipeline = this.device.createComputePipeline({
        label: kernel.label,
        layout: "auto",
        compute: { module, entryPoint },
      });
      pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  // The call site of (owner, key) for this pipeline, these tensors and these uniforms: one
  // already made when they match, unless it was dispatched in this step with other
  // uniforms (a uniform buffer holds one value per submit), else a new one. So a step's
  // dispatches never share a uniform buffer, and alternating shapes (an epoch's shorter
  // last batch) reuse what they made the first time.
  #callSite(
    owner: object,
    key: string,
    kernel: GpuKernel,
    tensors: readonly GpuTensor[],
    uniforms: readonly number[],
  ): CallSite {
    let sites = this.#calls.get(owner);
    if (!sites) this.#calls.set(owner, sites = new Map());
    let list = sites.get(key);
    if (!list) sites.set(key, list = []);
    const pipeline = this.#pipeline(kernel);
    const words = Math.max(1, uniforms.length);
    const same = (site: CallSite) =>
      site.pipeline === pipeline && site.words.length === words &&
      site.tensors.length === tensors.length &&
      site.tensors.every((t, i) => t.buffer === tensors[i].buffer) &&
      (site.usedIn !== this.#submits || uniforms.every((u, i) => site.words[i] === u >>> 0));
    const found = list.find(same);
    if (found) return found;
    const uniform = this.device.createBuffer({
      label: `${kernel.label} uniforms`,
      size: Math.max(16, Math.ceil((words * 4) / 16) * 16),
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.#created.push(uniform);
    const bindGroup = this.device.createBindGroup({
      label: kernel.label,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniform } },
        ...tensors.map((t, i) => ({ binding: i + 1, resource: { buffer: t.buffer } })),
      ],
    });
    const site: CallSite = {
      pipeline,
      uniform,
      words: new Uint32Array(words).fill(0xffffffff),
      tensors: [...tensors],
      bindGroup,
      usedIn: -1,
    };
    list.push(site);
    return site;
  }

  run(
    owner: object,
    key: string,
    kernel: GpuKernel,
    tensors: readonly GpuTensor[],
    uniforms: readonly number[],
    workgroups: GpuWorkgroups,
  ): void {
    const site = this.#callSite(owner, key, kernel, tensors, uniforms);
    let changed = site.usedIn === -1;
    for (let i = 0; i < uniforms.length; i++) {
      if (site.words[i] !== uniforms[i] >>> 0) changed = true;
      site.words[i] = uniforms[i] >>> 0;
    }
    if (changed) this.device.queue.writeBuffer(site.uniform, 0, site.words);
    site.usedIn = this.#submits;
    const pass = this.#currentPass();
    pass.setPipeline(site.pipeline);
    pass.setBindGroup(0, site.bindGroup);
    const [x, y = 1, z = 1] = typeof workgroups === "number" ? [workgroups] : workgroups;
    if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
  }

  #currentPass(): GPUComputePassEncoder {
    this.#encoder ??= this.device.createCommandEncoder();
    this.#pass ??= this.#encoder.beginComputePass();
    return this.#pass;
  }

  /** Clears `tensors` (the step's gradients, its results row) before the step's kernels. */
  clear(tensors: readonly GpuTensor[]): void {
    this.#endPass();
    this.#encoder ??= this.device.createCommandEncoder();
    for (const t of tensors) this.#encoder.clearBuffer(t.buffer, 0, t.buffer.size);
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = undefined;
  }

  /** Submits what was recorded (the end of a step). */
  submit(): void {
    this.#endPass();
    if (this.#encoder) this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = undefined;
    this.#submits++;
  }

  /** Throws the device's first error, if any (out of memory, validation, device lost). */
  check(where: string): void {
    const problem = this.#lost ? `the GPU device was lost (${this.#lost})` : this.#error;
    if (problem) throw new Error(`${where}: WebGPU failed: ${problem}`);
  }

  /**
   * Reads tensors back (one copy and one map for all of them), after everything recorded so
   * far. Throws the device's first error, if any.
   */
  async read(tensors: readonly GpuTensor[], where: string): Promise<ArrayBuffer[]> {
    this.#endPass();
    this.#encoder ??= this.device.createCommandEncoder();
    let total = 0;
    const offsets = tensors.map((t) => {
      const offset = total;
      total += Math.ceil((t.size * BYTES) / 4) * 4;
      return offset;
    });
    const size = Math.max(16, total);
    let staging = this.#staging.get(size);
    if (!staging) {
      staging = this.device.createBuffer({
        label: "readback",
        size,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      this.#staging.set(size, staging);
      this.#created.push(staging);
    }
    const target = staging;
    try {
      tensors.forEach((t, i) => {
        if (t.size > 0) {
          this.#encoder!.copyBufferToBuffer(t.buffer, 0, target, offsets[i], t.size * BYTES);
        }
      });
      this.submit();
      try {
        await target.mapAsync(GPUMapMode.READ);
      } catch (error) {
        // The device's own error event (which names the cause) may come a task later.
        await new Promise((resolve) => setTimeout(resolve, 0));
        this.check(where);
        throw new Error(`${where}: WebGPU readback failed: ${error}`);
      }
      this.check(where);
      const mapped = target.getMappedRange();
      return tensors.map((t, i) => mapped.slice(offsets[i], offsets[i] + t.size * BYTES));
    } finally {
      if (target.mapState === "mapped") target.unmap();
    }
  }

  /** Writes every mirror back into its CPU array (params, grads, optimizer state, statistics). */
  async syncBack(where: string): Promise<void> {
    const mirrors = [...this.#mirrors.values()];
    const data = await this.read(mirrors.map((m) => m.tensor), where);
    mirrors.forEach((m, i) => m.data.set(new Float32Array(data[i])));
  }

  /**
   * Waits for the work already submitted (so that nothing in flight outlives its buffers),
   * then frees every buffer. A lost device resolves at once.
   */
  async close(): Promise<void> {
    if (this.#destroyed) return;
    this.#endPass();
    this.#encoder = undefined; // recorded but never submitted: dropped
    if (!this.#lost) {
      await Promise.race([this.device.queue.onSubmittedWorkDone(), this.device.lost]);
    }
    this.destroy();
  }

  /**
   * Frees every buffer now. The device stays for the next context, unless this one saw a
   * device error: then it is destroyed, and the next context requests a new one.
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.device.removeEventListener("uncapturederror", this.#onError);
    for (const buffer of this.#created) buffer.destroy();
    if (this.#error !== undefined && !this.#shared.retired) {
      this.#shared.retired = true;
      this.device.destroy();
    }
  }
}
