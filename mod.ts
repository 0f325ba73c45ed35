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
export { accuracy, argmaxRows } from "./core/targets.ts";
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
