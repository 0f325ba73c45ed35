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
export * from "./core/tensor.ts";
export * from "./core/json.ts";
export * from "./core/param.ts";
export * from "./core/layer.ts";
export * from "./core/loss.ts";
export * from "./core/optimizer.ts";
export * from "./core/schedule.ts";
export * from "./core/random.ts";
export * from "./core/backend.ts";
export * from "./core/initializers.ts";
export * from "./core/registry.ts";
export * from "./core/sequential.ts";
export * from "./core/fit.ts";
export * from "./core/history.ts";
export * from "./core/callback.ts";
export * from "./core/metric.ts";
export * from "./core/progress.ts";
export { accuracy, argmaxRows, takeRows } from "./core/targets.ts";
export * from "./core/softmax.ts";
export * from "./core/gradient_check.ts";
export * from "./layers/dense.ts";
export * from "./layers/dropout.ts";
export * from "./activations/relu.ts";
export * from "./activations/leaky_relu.ts";
export * from "./activations/sigmoid.ts";
export * from "./activations/tanh.ts";
export * from "./activations/softmax.ts";
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
export {
  decodeSafetensors,
  MAX_HEADER_BYTES,
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
export * from "./io/model_io.ts";
export * from "./io/torch_state_dict.ts";
export * from "./backends/js.ts";
export { wasmBackend, type WasmSupport, wasmSupport } from "./backends/wasm.ts";
export {
  DEFAULT_THREADS_CAP,
  getThreads,
  MAX_THREADS,
  setThreads,
  threadsUnavailable,
} from "./backends/threads.ts";
export * from "./data/workloads.ts";
export * from "./metrics/categorical_accuracy.ts";
export * from "./metrics/binary_accuracy.ts";
export * from "./metrics/regression_accuracy.ts";
export * from "./callbacks/early_stopping.ts";
export * from "./callbacks/terminate_on_nan.ts";
export * from "./callbacks/learning_rate_scheduler.ts";
export * from "./plot/history_plot.ts";
export * from "./plot/decision_boundary_plot.ts";
export * from "./plot/combine_svg.ts";
export * from "./data/idx.ts";
