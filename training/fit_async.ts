import { describe } from "../core/_describe.ts";
import type { Chain } from "../core/chain.ts";
import type { Tensor, TensorLike } from "../core/tensor.ts";
import { checkedData, type TargetsLike } from "./batches.ts";
import {
  addValidation,
  checkMetrics,
  checkPlugins,
  checkPositiveInteger,
  endEpoch,
  epochOrder,
  evaluate,
  type EvaluateLogs,
  type EvaluateOptions,
  type FitOptions,
  type FitSetup,
  measure,
  Meter,
  prepareFit,
  trainOneBatch,
} from "./fit.ts";
import type { History } from "./history.ts";
import { checkedInputs, predict, type PredictOptions } from "./predict.ts";
import { evaluateGpu, fitGpu, predictGpu } from "./_gpu_fit.ts";

/** Where an async call runs: `"cpu"` (the default) or `"webgpu"`. */
export type Device = "cpu" | "webgpu";

/** The `device` option of the async calls. */
export interface DeviceOptions {
  /**
   * `"cpu"` (the default): the same computation as the synchronous call, bit for bit,
   * yielding to the event loop between batches. `"webgpu"`: everything on the GPU, float32
   * only (see `webgpuStatus`); results equal the CPU's within float32 noise, dropout masks
   * differ.
   */
  device?: Device;
}

/** Options of `Sequential.fitAsync`: `fit`'s, and the device. */
export interface FitAsyncOptions extends FitOptions, DeviceOptions {}

/** Options of `Sequential.evaluateAsync`: `evaluate`'s, and the device. */
export interface EvaluateAsyncOptions extends EvaluateOptions, DeviceOptions {}

/** Options of `Sequential.predictAsync`: `predict`'s, and the device. */
export interface PredictAsyncOptions extends PredictOptions, DeviceOptions {}

function checkDevice(device: unknown, where: string): Device {
  if (device === undefined) return "cpu";
  if (device === "cpu" || device === "webgpu") return device;
  throw new TypeError(`${where}: device must be "cpu" or "webgpu", got ${describe(device)}`);
}

const YIELD_EVERY_MS = 15; // about a frame: a browser page stays responsive

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

// `fit` on the CPU, yielding to the event loop between batches at most every 15 ms.
async function fitCpu(setup: FitSetup): Promise<void> {
  const { run, callbacks, progress, validation } = setup;
  const { model, options, state } = run;
  let lastYield = performance.now();
  try {
    for (const callback of callbacks) callback.onTrainBegin?.(state);
    for (let epoch = setup.initialEpoch; epoch < options.epochs && !state.stopTraining; epoch++) {
      for (const callback of callbacks) callback.onEpochBegin?.(epoch, state);
      if (state.stopTraining) break;
      const order = epochOrder(setup, epoch);
      const meter = new Meter();
      for (let batch = 0; batch < run.plan.steps && !state.stopTraining; batch++) {
        trainOneBatch(run, meter, epoch, batch, order);
        if (performance.now() - lastYield >= YIELD_EVERY_MS) {
          await yieldToEventLoop();
          lastYield = performance.now();
        }
      }
      const logs = meter.logs(run.metrics ?? []);
      if (validation) {
        const [vx, vy] = validation;
        addValidation(logs, measure(model, vx, vy, options.loss, state.batchSize, run.metrics));
      }
      endEpoch(setup, epoch, logs);
    }
    for (const callback of callbacks) callback.onTrainEnd?.(state);
  } catch (error) {
    progress?.interrupt();
    throw error;
  }
}

/**
 * `fit`, asynchronously, on the CPU or on the GPU; see {@linkcode FitAsyncOptions}.
 *
 * On `"webgpu"` the data, params, gradients, optimizer state and activations stay on the
 * device for the whole call; the losses and metrics are read once per epoch, or at most 10
 * times a second when batch callbacks (other than `TerminateOnNaN`) ask for them, and the
 * batch callbacks then run for those batches in order. The params, buffers and optimizer
 * state are read back when it ends (and at each epoch's end when callbacks are given).
 */
export async function fitAsync(
  model: Chain,
  x: TensorLike,
  y: TargetsLike,
  options: FitAsyncOptions,
): Promise<History> {
  const where = "Sequential.fitAsync";
  const device = checkDevice(options?.device, where);
  const setup = prepareFit(model, x, y, options, where);
  if (device === "cpu") await fitCpu(setup);
  else await fitGpu(setup, where);
  return setup.run.state.history;
}

/** `evaluate`, asynchronously, on the CPU or the GPU. */
export async function evaluateAsync(
  model: Chain,
  x: TensorLike,
  y: TargetsLike,
  options: EvaluateAsyncOptions,
): Promise<EvaluateLogs> {
  const where = "Sequential.evaluateAsync";
  const device = checkDevice(options?.device, where);
  if (device === "cpu") {
    await yieldToEventLoop();
    return evaluate(model, x, y, options);
  }
  checkPlugins(options, where, false);
  const { inputs, y: targets } = checkedData(x, y, model.dtype, where);
  const batchSize = checkPositiveInteger(options.batchSize ?? inputs.shape[0], "batchSize", where);
  const metrics = checkMetrics(options.metrics, where);
  for (const metric of metrics ?? []) metric.prepare?.(targets);
  return await evaluateGpu(model, inputs, targets, options.loss, metrics, batchSize, where);
}

/** `predict`, asynchronously, on the CPU or the GPU. */
export async function predictAsync(
  model: Chain,
  x: TensorLike,
  options: PredictAsyncOptions = {},
): Promise<Tensor> {
  const where = "Sequential.predictAsync";
  const device = checkDevice(options?.device, where);
  if (device === "cpu") {
    await yieldToEventLoop();
    return predict(model, x, options);
  }
  const inputs = checkedInputs(model, x, options, where);
  const samples = inputs.shape[0] ?? 0;
  const batchSize = options.batchSize === undefined
    ? samples
    : checkPositiveInteger(options.batchSize, "batchSize", where);
  return await predictGpu(model, inputs, batchSize, where);
}
