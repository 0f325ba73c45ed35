/**
 * chainrule: neural networks in TypeScript, trained by backpropagation done honestly.
 *
 * Every layer is a plugin with its forward and backward side by side; gradients are proved
 * by {@linkcode checkGradients}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Adam, Dense, ReLU, Sequential, SoftmaxCrossEntropy, spiralData } from "@chainrule/nn";
 *
 * const { x, y } = spiralData(100, 3);
 * const model = new Sequential([new Dense(2, 64, { seed: 1 }), new ReLU(), new Dense(64, 3, { seed: 2 })]);
 * const history = model.fit(x, y, {
 *   loss: new SoftmaxCrossEntropy(),
 *   optimizer: new Adam({ learningRate: 0.05, decay: 5e-7 }),
 *   epochs: 1000,
 * });
 * assert.ok(history.accuracy.at(-1)! > 0.8);
 * ```
 *
 * @module
 */
// The core: contracts and the runner.
export {
  type DType,
  type FloatArray,
  type NestedArray,
  Tensor,
  type TensorLike,
  type TensorOptions,
} from "./core/tensor.ts";
export type { JsonObject, JsonValue } from "./core/json.ts";
export * from "./core/param.ts";
export * from "./core/layer.ts";
export * from "./core/loss.ts";
export * from "./core/optimizer.ts";
export * from "./core/schedule.ts";
export {
  type RandomOptions,
  RandomState,
  type RandomStateSnapshot,
  setGlobalSeed,
} from "./core/random.ts";
export {
  getAllocationLimit,
  RUNTIME_BUFFER_BYTES,
  setAllocationLimit,
} from "./core/_allocation.ts";
export * from "./core/backend.ts";
export type { Factory } from "./core/registry.ts";
export * from "./core/chain.ts";
export type {
  GpuBackwardOptions,
  GpuContext,
  GpuDType,
  GpuForwardOptions,
  GpuKernel,
  GpuLayer,
  GpuLoss,
  GpuMetric,
  GpuOptimizer,
  GpuSink,
  GpuTensor,
  GpuWorkgroups,
} from "./core/gpu.ts";
export * from "./core/gradient_check.ts";
// Where the products run.
export * from "./backends/selection.ts";
export { type WasmSupport, wasmSupport } from "./backends/wasm.ts";
export { type WebGpuStatus, webgpuStatus } from "./backends/webgpu.ts";
export {
  DEFAULT_THREADS_CAP,
  getThreads,
  MAX_THREADS,
  setThreads,
  threadsUnavailable,
} from "./backends/threads.ts";
// The plugins.
export { type Initializer, initializers } from "./initializers/initializers.ts";
export * from "./layers/dense.ts";
export * from "./layers/dropout.ts";
export * from "./layers/conv2d.ts";
export * from "./layers/max_pool2d.ts";
export * from "./layers/avg_pool2d.ts";
export * from "./layers/global_avg_pool2d.ts";
export * from "./layers/flatten.ts";
export * from "./layers/batch_norm.ts";
export * from "./layers/embedding.ts";
export * from "./layers/positional_embedding.ts";
export * from "./layers/layer_norm.ts";
export * from "./layers/lstm.ts";
export * from "./layers/gru.ts";
export * from "./layers/multi_head_attention.ts";
export * from "./layers/residual.ts";
export * from "./activations/relu.ts";
export * from "./activations/leaky_relu.ts";
export * from "./activations/sigmoid.ts";
export * from "./activations/tanh.ts";
export * from "./activations/gelu.ts";
export { Softmax, softmax } from "./activations/softmax.ts";
export * from "./activations/linear.ts";
export * from "./losses/softmax_cross_entropy.ts";
export * from "./losses/categorical_cross_entropy.ts";
export * from "./losses/binary_cross_entropy.ts";
export * from "./losses/mean_squared_error.ts";
export * from "./losses/mean_absolute_error.ts";
export * from "./losses/huber.ts";
export * from "./optimizers/sgd.ts";
export * from "./optimizers/adagrad.ts";
export * from "./optimizers/rmsprop.ts";
export * from "./optimizers/adam.ts";
export * from "./optimizers/adamw.ts";
export * from "./schedules/inverse_time_decay.ts";
export * from "./schedules/step_decay.ts";
export * from "./schedules/exponential_decay.ts";
export * from "./schedules/cosine_decay.ts";
export * from "./data/spiral.ts";
export * from "./data/idx.ts";
export * from "./data/char_tokenizer.ts";
export * from "./catalog/registry.ts";
// Training.
export type { EvaluateLogs, EvaluateOptions, FitOptions, ValidationData } from "./training/fit.ts";
export { takeRows, type TargetsLike } from "./training/batches.ts";
export type { PredictOptions } from "./training/predict.ts";
export type {
  Device,
  DeviceOptions,
  EvaluateAsyncOptions,
  FitAsyncOptions,
  PredictAsyncOptions,
} from "./training/fit_async.ts";
export { type EpochLogs, History } from "./training/history.ts";
export * from "./training/callback.ts";
export type { Metric } from "./training/metric.ts";
export * from "./training/progress.ts";
export * from "./training/generate.ts";
export * from "./training/metrics/categorical_accuracy.ts";
export * from "./training/metrics/binary_accuracy.ts";
export * from "./training/metrics/regression_accuracy.ts";
export * from "./training/callbacks/early_stopping.ts";
export * from "./training/callbacks/terminate_on_nan.ts";
export * from "./training/callbacks/learning_rate_scheduler.ts";
// Files and pictures.
export {
  decodeSafetensors,
  MAX_HEADER_BYTES,
  MAX_HEADER_VALUES,
  MAX_TENSORS,
  readSafetensors,
  type SafetensorsData,
  type SafetensorsDType,
  type SafetensorsEntry,
  SafetensorsError,
  type SafetensorsErrorCode,
  type SafetensorsFile,
  type TensorSource,
} from "./io/safetensors.ts";
export { encodeSafetensors, type NamedTensors, writeSafetensors } from "./io/safetensors_writer.ts";
export { writeFileAtomic } from "./io/write_file_atomic.ts";
export {
  bufferNames,
  type LoadModelOptions,
  MAX_LAYERS,
  MAX_MODEL_DEPTH,
  MODEL_METADATA_KEY,
  modelToBytes,
  OPTIMIZER_METADATA_KEY,
  paramNames,
  saveModel,
  type SaveModelOptions,
  VERSION_METADATA_KEY,
} from "./io/model_io.ts";
export * from "./io/torch_state_dict.ts";
export * from "./plot/history_plot.ts";
export * from "./plot/decision_boundary_plot.ts";
export * from "./plot/combine_svg.ts";
// The model users build.
export * from "./models/sequential.ts";
export * from "./models/load_model.ts";
