// fit, evaluate and predict on WebGPU: the data set, the params, the optimizer's state and
// every activation stay on the device for the whole call; one command encoder per step; the
// batches' losses and metrics accumulate in a results buffer read at most 10 times a second
// (and at each epoch's end), when the batch hooks are replayed in order.
import { openWebGpu, type WebGpuContext } from "../backends/webgpu.ts";
import { gpuGatherRows, kernel } from "../backends/webgpu_ops.ts";
import type { Chain } from "../core/chain.ts";
import type { GpuLoss, GpuMetric, GpuOptimizer, GpuSink, GpuTensor } from "../core/gpu.ts";
import type { Loss, Targets } from "../core/loss.ts";
import type { Optimizer } from "../core/optimizer.ts";
import { formatShape, Tensor } from "../core/tensor.ts";
import { batchOf, sliceRows } from "./batches.ts";
import type { BatchLogs } from "./callback.ts";
import { NonFiniteLossError } from "./callbacks/terminate_on_nan.ts";
import { TerminateOnNaN } from "./callbacks/terminate_on_nan.ts";
import type { EpochLogs } from "./history.ts";
import type { Metric } from "./metric.ts";
import {
  addValidation,
  endEpoch,
  epochOrder,
  type EvaluateLogs,
  type FitSetup,
  inferMetrics,
  Meter,
} from "./fit.ts";

/** Buffers the last GPU fit had created after each epoch (for the tests: flat after the first). */
export const lastGpuFitBuffers: number[] = [];

const READ_INTERVAL_MS = 100; // batch hooks see results at most 10 times a second
const MAX_ROWS = 1024; // batches per results buffer before a read is forced

// Sets status = [1, step] when the step's loss or penalty is not finite, so that no update
// of this step or a later one happens; the loop reads it with the results.
const GUARD = kernel(
  "fitAsync guard",
  /* wgsl */ `
struct P { at: u32, step: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> results: array<f32>;
@group(0) @binding(2) var<storage, read_write> status: array<u32>;
fn bad(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u; }
@compute @workgroup_size(1)
fn main() {
  if (status[0] == 0u && (bad(results[p.at]) || bad(results[p.at + 1u]))) {
    status[0] = 1u;
    status[1] = p.step;
  }
}`,
);

function gpuLossOf(loss: Loss, where: string): Loss & GpuLoss {
  const gpu = loss as Loss & Partial<GpuLoss>;
  if (typeof gpu.gpuForward !== "function" || typeof gpu.gpuBackward !== "function") {
    throw new TypeError(
      `${where}: the loss ${loss.kind} has no GPU side (gpuForward and gpuBackward); use device "cpu"`,
    );
  }
  return gpu as Loss & GpuLoss;
}

function gpuMetricsOf(metrics: readonly Metric[], where: string): (Metric & GpuMetric)[] {
  return metrics.map((metric, i) => {
    if (typeof (metric as Partial<GpuMetric>).gpuMeasure !== "function") {
      throw new TypeError(
        `${where}: metrics[${i}] (${metric.name}) has no GPU side (gpuMeasure); use device "cpu"`,
      );
    }
    return metric as Metric & GpuMetric;
  });
}

function gpuOptimizerOf(optimizer: Optimizer, where: string): Optimizer & GpuOptimizer {
  if (typeof (optimizer as Partial<GpuOptimizer>).gpuStep !== "function") {
    throw new TypeError(
      `${where}: the optimizer ${optimizer.kind} has no GPU side (gpuStep); use device "cpu"`,
    );
  }
  return optimizer as Optimizer & GpuOptimizer;
}

/** Refuses, before anything runs, what cannot run on the device: float64, plugins without a GPU side. */
export function checkGpuModel(model: Chain, where: string): void {
  if (model.dtype !== "float32") {
    throw new TypeError(
      `${where}: the model is ${model.dtype}, and WebGPU has no float64 (WGSL has no f64); ` +
        `train a float32 model on "webgpu", or use device "cpu"`,
    );
  }
  model.checkGpu(where);
}

// A data set on the device: inputs [samples, …] and, when given, targets (float32: class
// indices as floats, or values) with as many elements per sample in each.
class DeviceData {
  readonly x: GpuTensor;
  readonly xRow: number; // elements per sample
  readonly xShape: readonly number[]; // [samples, …]
  readonly y?: GpuTensor;
  readonly yRow: number;
  readonly yTensorShape?: readonly number[]; // the targets tensor's shape, if a tensor
  readonly identity: GpuTensor; // [samples] int32: the samples in their order

  constructor(ctx: WebGpuContext, inputs: Tensor, y?: Targets) {
    const samples = inputs.shape[0];
    this.xShape = inputs.shape;
    this.xRow = inputs.size / samples;
    this.x = ctx.upload(floats(inputs.data), inputs.shape, "float32");
    this.identity = ctx.upload(identity(samples), [samples], "int32");
    this.yRow = 0;
    if (y === undefined) return;
    const values = y instanceof Tensor ? y.data : y;
    this.yRow = values.length / samples;
    this.yTensorShape = y instanceof Tensor ? y.shape : undefined;
    this.y = ctx.upload(floats(values), [values.length], "float32");
  }

  // The shape a batch of `count` samples' targets has (as `batchOf` would slice them).
  targetShape(count: number): number[] {
    return this.yTensorShape ? [count, ...this.yTensorShape.slice(1)] : [count * this.yRow];
  }
}

function floats(values: ArrayLike<number>): Float32Array {
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

// The batch [start, start + count) of `data` in `order`, gathered into the loop's buffers.
function gatherBatch(
  ctx: WebGpuContext,
  owner: object,
  data: DeviceData,
  order: GpuTensor,
  start: number,
  count: number,
): [GpuTensor, GpuTensor | undefined] {
  const x = ctx.buffer(owner, "x", [count, ...data.xShape.slice(1)]);
  gpuGatherRows(ctx, owner, "x", data.x, order, start, count, data.xRow, x);
  if (!data.y) return [x, undefined];
  const y = ctx.buffer(owner, "y", data.targetShape(count));
  gpuGatherRows(ctx, owner, "y", data.y, order, start, count, data.yRow, y);
  return [x, y];
}

function identity(samples: number): Int32Array {
  const order = new Int32Array(samples);
  for (let i = 0; i < samples; i++) order[i] = i;
  return order;
}

// Runs every batch's targets through the CPU loss (and metrics) on zero outputs of the
// model's output shape, so that a bad target fails before the device does anything, with
// the CPU's message.
function checkTargets(
  model: Chain,
  inputs: Tensor,
  y: Targets,
  loss: Loss,
  metrics: readonly Metric[] | undefined,
  batchSize: number,
  where: string,
): number[] {
  const samples = inputs.shape[0];
  model.gpuCheckInputs(inputs, where);
  const probe = model.forward(sliceRows(inputs, 0, 1), { training: false });
  const outputShape = probe.shape.slice(1);
  for (let start = 0; start < samples; start += batchSize) {
    const count = Math.min(batchSize, samples - start);
    const [, yb] = batchOf(inputs, y, start, count);
    const zeros = Tensor.zeros([count, ...outputShape], { dtype: "float32" });
    loss.forward(zeros, yb);
    for (const metric of metrics ?? []) metric.measure(zeros, yb);
  }
  return outputShape;
}

interface Window {
  results: GpuTensor; // [MAX_ROWS, slots]
  rows: number; // rows written since the last read
  firstStep: number; // the global step of row 0
  epochs: number[]; // the epoch of each row
  batches: number[]; // the batch index of each row
  counts: number[]; // the samples of each row
  lasts: boolean[]; // whether the row is its epoch's last batch
}

/** Trains on the device; see `fitAsync`. */
export async function fitGpu(setup: FitSetup, where: string): Promise<void> {
  const { run, callbacks, progress, validation } = setup;
  const { model, options, state } = run;
  checkGpuModel(model, where);
  const loss = gpuLossOf(options.loss, where);
  const optimizer = gpuOptimizerOf(options.optimizer, where);
  const outputShape = checkTargets(
    model,
    run.inputs,
    run.y,
    loss,
    run.metrics,
    state.batchSize,
    where,
  );
  run.metrics ??= inferMetrics(
    { shape: [1, ...outputShape] },
    batchOf(run.inputs, run.y, 0, 1)[1],
    loss,
  );
  const metrics = gpuMetricsOf(run.metrics, where);
  if (validation) {
    checkTargets(model, validation[0], validation[1], loss, metrics, state.batchSize, where);
  }
  const terminate = options.terminateOnNaN ?? true;
  // Batch hooks besides TerminateOnNaN (which the device's guard stands for) want reads.
  const eager = run.hooks.some((hook) => !(hook instanceof TerminateOnNaN));
  const slots = 2 + metrics.length;
  const loop = {}; // owner of the loop's buffers and call sites
  const ctx = await openWebGpu(where);
  lastGpuFitBuffers.length = 0;
  let stopped = false; // a non-finite step: the device state is the last finite one
  try {
    const data = new DeviceData(ctx, run.inputs, run.y);
    const validationData = validation && new DeviceData(ctx, validation[0], validation[1]);
    const order = ctx.buffer(loop, "order", [state.samples], "int32");
    const params = model.params();
    for (const param of params) ctx.param(param);
    const window: Window = {
      results: ctx.buffer(loop, "results", [MAX_ROWS, slots]),
      rows: 0,
      firstStep: 0,
      epochs: [],
      batches: [],
      counts: [],
      lasts: [],
    };
    const finished: [number, EpochLogs][] = []; // epochs read but not yet recorded
    let step = 0;
    let lastRead = performance.now();
    const meterOf = { meter: new Meter() };

    // Reads the window's rows and replays them into the meter and the hooks, in order.
    const drain = async () => {
      if (window.rows === 0) return;
      const [rows, status] = await ctx.read([window.results, ctx.status], where);
      const values = new Float32Array(rows);
      const [stop, stopStep] = new Uint32Array(status);
      for (let r = 0; r < window.rows; r++) {
        const at = r * slots;
        const batch = window.batches[r], epoch = window.epochs[r];
        if (stop !== 0 && window.firstStep + r >= stopStep) {
          stopped = true;
          const skipped = step - stopStep; // steps queued from the failing one on
          const counted = optimizer as Partial<{ iterations: number }>;
          if (typeof counted.iterations === "number") counted.iterations -= skipped;
          if (stop === 2) {
            throw new RangeError(
              `${optimizer.kind}.step: the global gradient norm is not finite at epoch ${epoch}, ` +
                `batch ${batch}, so globalClipNorm cannot rescale it; the step was not taken (a ` +
                "gradient holds NaN or ±Infinity: lower the learning rate or look for a bad value " +
                "in the data)",
            );
          }
          const [what, value] = Number.isFinite(values[at])
            ? ["regularization loss", values[at + 1]]
            : ["loss", values[at]];
          throw new NonFiniteLossError(epoch, batch, what, value, state.history);
        }
        const metricValues = metrics.map((_, i) => values[at + 2 + i]);
        const meter = meterOf.meter;
        meter.addValues(window.counts[r], values[at], values[at + 1], metricValues);
        if (run.hooks.length > 0) {
          const logs: BatchLogs = {
            size: window.counts[r],
            batchLoss: values[at],
            batchRegularizationLoss: values[at + 1],
            ...meter.logs(metrics),
          };
          for (const callback of run.hooks) callback.onBatchEnd!(batch, logs, state);
        }
        if (window.lasts[r]) {
          finished.push([epoch, meter.logs(metrics)]);
          meterOf.meter = new Meter();
        }
      }
      window.rows = 0;
      window.epochs = [];
      window.batches = [];
      window.counts = [];
      window.lasts = [];
      lastRead = performance.now();
    };

    // With nothing to see an epoch's figures as it ends (no validation, onEpoch, progress, or
    // callback with onEpochEnd or onBatchEnd besides TerminateOnNaN), the results are read
    // across epochs, at most 10 times a second, and the epochs recorded then: many short
    // epochs do not each wait for a readback.
    const deferred = !validationData && !options.onEpoch && !progress &&
      callbacks.every((callback) =>
        callback instanceof TerminateOnNaN || (!callback.onEpochEnd && !callback.onBatchEnd)
      );
    const recordFinished = () => {
      for (const [epoch, logs] of finished.splice(0)) {
        endEpoch(setup, epoch, logs);
        lastGpuFitBuffers.push(ctx.buffersCreated);
      }
    };
    for (const callback of callbacks) callback.onTrainBegin?.(state);
    for (let epoch = setup.initialEpoch; epoch < options.epochs && !state.stopTraining; epoch++) {
      for (const callback of callbacks) callback.onEpochBegin?.(epoch, state);
      if (state.stopTraining) break;
      ctx.write(order, epochOrder(setup, epoch) ?? identity(state.samples));
      const { steps, last } = run.plan;
      for (let batch = 0; batch < steps && !state.stopTraining; batch++) {
        if (window.rows === 0) {
          window.firstStep = step;
          ctx.clear([window.results]);
        }
        const count = batch === steps - 1 ? last : state.batchSize;
        ctx.step = step;
        ctx.clear(ctx.grads);
        const [xb, yb] = gatherBatch(ctx, loop, data, order, batch * state.batchSize, count);
        const outputs = model.gpuForward(ctx, xb, { training: true });
        const row = window.rows;
        const sink = (slot: number): GpuSink => ({
          results: window.results,
          index: row * slots + slot,
        });
        loss.gpuForward(ctx, outputs, yb!, sink(0));
        model.gpuRegularization(ctx, sink(1));
        metrics.forEach((metric, i) => metric.gpuMeasure(ctx, outputs, yb!, sink(2 + i)));
        if (terminate) {
          ctx.run(loop, "guard", GUARD, [window.results, ctx.status], [row * slots, step], 1);
        }
        model.gpuBackward(ctx, loss.gpuBackward(ctx), { inputGradient: false });
        optimizer.gpuStep(ctx, params);
        ctx.submit();
        window.epochs.push(epoch);
        window.batches.push(batch);
        window.counts.push(count);
        window.lasts.push(batch === steps - 1);
        window.rows++;
        step++;
        const due = eager && performance.now() - lastRead >= READ_INTERVAL_MS;
        if (due || window.rows === MAX_ROWS) await drain();
      }
      if (deferred) {
        // Nothing reads this epoch's figures now: record the epochs read so far and go on.
        if (performance.now() - lastRead >= READ_INTERVAL_MS) await drain();
        recordFinished();
        continue;
      }
      await drain();
      const logs: EpochLogs = finished.shift()?.[1] ?? meterOf.meter.logs(metrics);
      if (validationData) {
        const batch = state.batchSize;
        addValidation(
          logs,
          await measureGpu(ctx, model, validationData, loss, metrics, batch, where),
        );
      }
      // Callbacks may read the weights (EarlyStopping keeps the best ones).
      if (options.callbacks?.some((callback) => callback.onEpochEnd)) await ctx.syncBack(where);
      endEpoch(setup, epoch, logs);
      lastGpuFitBuffers.push(ctx.buffersCreated);
    }
    await drain();
    recordFinished();
    await ctx.syncBack(where);
    for (const callback of callbacks) callback.onTrainEnd?.(state);
  } catch (error) {
    progress?.interrupt();
    // After a non-finite step the device holds the last finite weights, as `fit` keeps them.
    if (stopped) await ctx.syncBack(where).catch(() => {});
    throw error;
  } finally {
    await ctx.close();
  }
}

/**
 * Mean loss, penalty and metrics of `model` on `inputs`, batch by batch on the device, as
 * the CPU's `measure` computes them.
 */
async function measureGpu(
  ctx: WebGpuContext,
  model: Chain,
  data: DeviceData,
  loss: GpuLoss,
  metrics: readonly (Metric & GpuMetric)[],
  batchSize: number,
  where: string,
): Promise<EvaluateLogs> {
  const owner = data;
  const samples = data.xShape[0];
  const order = data.identity;
  const batches = Math.ceil(samples / batchSize);
  const slots = 1 + metrics.length;
  const results = ctx.buffer(owner, "results", [batches + 1, slots]);
  ctx.clear([results]);
  for (let b = 0; b < batches; b++) {
    const start = b * batchSize;
    const count = Math.min(batchSize, samples - start);
    const [xb, yb] = gatherBatch(ctx, owner, data, order, start, count);
    const outputs = model.gpuForward(ctx, xb, { training: false });
    const sink = (slot: number): GpuSink => ({ results, index: b * slots + slot });
    loss.gpuForward(ctx, outputs, yb!, sink(0));
    metrics.forEach((metric, i) => metric.gpuMeasure(ctx, outputs, yb!, sink(1 + i)));
    ctx.submit();
  }
  model.gpuRegularization(ctx, { results, index: batches * slots });
  const [read] = await ctx.read([results], where);
  const values = new Float32Array(read);
  const meter = new Meter();
  for (let b = 0; b < batches; b++) {
    const count = Math.min(batchSize, samples - b * batchSize);
    meter.addValues(count, values[b * slots], 0, metrics.map((_, i) => values[b * slots + 1 + i]));
  }
  const logs = meter.logs([...metrics]) as EvaluateLogs;
  logs.regularizationLoss = values[batches * slots];
  return logs;
}

/** Evaluates on the device; see `evaluateAsync`. */
export async function evaluateGpu(
  model: Chain,
  inputs: Tensor,
  y: Targets,
  loss: Loss,
  metrics: Metric[] | undefined,
  batchSize: number,
  where: string,
): Promise<EvaluateLogs> {
  checkGpuModel(model, where);
  const gpuLoss = gpuLossOf(loss, where);
  const outputShape = checkTargets(model, inputs, y, loss, metrics, batchSize, where);
  metrics ??= inferMetrics({ shape: [1, ...outputShape] }, batchOf(inputs, y, 0, 1)[1], loss);
  const gpuMetrics = gpuMetricsOf(metrics, where);
  const ctx = await openWebGpu(where);
  try {
    const data = new DeviceData(ctx, inputs, y);
    return await measureGpu(ctx, model, data, gpuLoss, gpuMetrics, batchSize, where);
  } finally {
    await ctx.close();
  }
}

/** Predicts on the device; see `predictAsync`. */
export async function predictGpu(
  model: Chain,
  inputs: Tensor,
  batchSize: number,
  where: string,
): Promise<Tensor> {
  checkGpuModel(model, where);
  model.gpuCheckInputs(inputs, where);
  const samples = inputs.shape[0];
  const ctx = await openWebGpu(where);
  const owner = predictGpu;
  try {
    const data = new DeviceData(ctx, inputs);
    const order = data.identity;
    let out: Tensor | undefined;
    for (let start = 0; start < samples; start += batchSize) {
      const count = Math.min(batchSize, samples - start);
      const [xb] = gatherBatch(ctx, owner, data, order, start, count);
      const outputs = model.gpuForward(ctx, xb, { training: false });
      const [read] = await ctx.read([outputs], where);
      out ??= Tensor.zeros([samples, ...outputs.shape.slice(1)], { dtype: "float32" });
      if (outputs.size !== count * (out.size / samples)) {
        throw new Error(
          `${where}: the model's GPU outputs have shape ${formatShape(outputs.shape)}, expected ` +
            `${count} samples like ${formatShape(out.shape)}`,
        );
      }
      out.data.set(new Float32Array(read), start * (out.size / samples));
    }
    return out!;
  } finally {
    await ctx.close();
  }
}
