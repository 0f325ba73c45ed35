// The built-in plugins, by kind. Add a line here when adding a plugin; nothing in the core
// names a concrete plugin.
import { describe } from "../core/_describe.ts";
import { GELU } from "../activations/gelu.ts";
import { LeakyReLU } from "../activations/leaky_relu.ts";
import { Linear } from "../activations/linear.ts";
import { ReLU } from "../activations/relu.ts";
import { Sigmoid } from "../activations/sigmoid.ts";
import { Softmax } from "../activations/softmax.ts";
import { Tanh } from "../activations/tanh.ts";
import { AvgPool2D } from "../layers/avg_pool2d.ts";
import { BatchNorm } from "../layers/batch_norm.ts";
import { Conv2D } from "../layers/conv2d.ts";
import { Dense } from "../layers/dense.ts";
import { Dropout } from "../layers/dropout.ts";
import { Embedding } from "../layers/embedding.ts";
import { Flatten } from "../layers/flatten.ts";
import { GlobalAvgPool2D } from "../layers/global_avg_pool2d.ts";
import { GRU } from "../layers/gru.ts";
import { LayerNorm } from "../layers/layer_norm.ts";
import { LSTM } from "../layers/lstm.ts";
import { MaxPool2D } from "../layers/max_pool2d.ts";
import { MultiHeadAttention } from "../layers/multi_head_attention.ts";
import { PositionalEmbedding } from "../layers/positional_embedding.ts";
import { Residual } from "../layers/residual.ts";
import { BinaryCrossEntropy } from "../losses/binary_cross_entropy.ts";
import { CategoricalCrossEntropy } from "../losses/categorical_cross_entropy.ts";
import { Huber } from "../losses/huber.ts";
import { MeanAbsoluteError } from "../losses/mean_absolute_error.ts";
import { MeanSquaredError } from "../losses/mean_squared_error.ts";
import { SoftmaxCrossEntropy } from "../losses/softmax_cross_entropy.ts";
import { AdaGrad } from "../optimizers/adagrad.ts";
import { Adam } from "../optimizers/adam.ts";
import { AdamW } from "../optimizers/adamw.ts";
import { RMSprop } from "../optimizers/rmsprop.ts";
import { SGD } from "../optimizers/sgd.ts";
import { CosineDecay } from "../schedules/cosine_decay.ts";
import { ExponentialDecay } from "../schedules/exponential_decay.ts";
import { InverseTimeDecay } from "../schedules/inverse_time_decay.ts";
import { StepDecay } from "../schedules/step_decay.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Loss } from "../core/loss.ts";
import type { Optimizer } from "../core/optimizer.ts";
import type { LearningRateSchedule } from "../core/schedule.ts";
import { Chain } from "../core/chain.ts";

type Entry<T> = [string, (config: JsonObject) => T];

/**
 * A nested model from its config, each layer through `create` (the layer registry): a
 * `Chain`, since the model class that users train sits above the registry.
 */
export function chainFromConfig(
  config: JsonObject,
  create: (kind: string, config: JsonObject) => Layer,
  where = "Sequential.fromConfig",
): Chain {
  const specs = config.layers;
  if (!Array.isArray(specs)) {
    throw new TypeError(`${where}: config.layers must be an array of { kind, config }`);
  }
  return new Chain(specs.map((spec, i) => {
    const { kind, config: layerConfig } = (spec ?? {}) as { kind?: unknown; config?: unknown };
    if (typeof kind !== "string") {
      throw new TypeError(`${where}: layers[${i}].kind must be a string, got ${describe(kind)}`);
    }
    return create(kind, (layerConfig ?? {}) as JsonObject);
  }));
}

/** Built-in layers; `create` builds the layers of a nested model. */
export function builtinLayers(create: (kind: string, config: JsonObject) => Layer): Entry<Layer>[] {
  return [
    ["AvgPool2D", AvgPool2D.fromConfig],
    ["BatchNorm", BatchNorm.fromConfig],
    ["Conv2D", Conv2D.fromConfig],
    ["Dense", Dense.fromConfig],
    ["Dropout", Dropout.fromConfig],
    ["Embedding", Embedding.fromConfig],
    ["Flatten", Flatten.fromConfig],
    ["GELU", GELU.fromConfig],
    ["GlobalAvgPool2D", GlobalAvgPool2D.fromConfig],
    ["GRU", GRU.fromConfig],
    ["LayerNorm", LayerNorm.fromConfig],
    ["LeakyReLU", LeakyReLU.fromConfig],
    ["Linear", Linear.fromConfig],
    ["LSTM", LSTM.fromConfig],
    ["MaxPool2D", MaxPool2D.fromConfig],
    ["MultiHeadAttention", MultiHeadAttention.fromConfig],
    ["PositionalEmbedding", PositionalEmbedding.fromConfig],
    ["ReLU", ReLU.fromConfig],
    [
      "Residual",
      (config) => new Residual(chainFromConfig(config, create, "Residual.fromConfig").layers),
    ],
    ["Sequential", (config) => chainFromConfig(config, create)],
    ["Sigmoid", Sigmoid.fromConfig],
    ["Softmax", Softmax.fromConfig],
    ["Tanh", Tanh.fromConfig],
  ];
}

/** Built-in losses. */
export function builtinLosses(): Entry<Loss>[] {
  return [
    ["BinaryCrossEntropy", BinaryCrossEntropy.fromConfig],
    ["CategoricalCrossEntropy", CategoricalCrossEntropy.fromConfig],
    ["Huber", Huber.fromConfig],
    ["MeanAbsoluteError", MeanAbsoluteError.fromConfig],
    ["MeanSquaredError", MeanSquaredError.fromConfig],
    ["SoftmaxCrossEntropy", SoftmaxCrossEntropy.fromConfig],
  ];
}

/** Built-in optimizers. */
export function builtinOptimizers(): Entry<Optimizer>[] {
  return [
    ["AdaGrad", AdaGrad.fromConfig],
    ["Adam", Adam.fromConfig],
    ["AdamW", AdamW.fromConfig],
    ["RMSprop", RMSprop.fromConfig],
    ["SGD", SGD.fromConfig],
  ];
}

/** Built-in learning-rate schedules. */
export function builtinSchedules(): Entry<LearningRateSchedule>[] {
  return [
    ["CosineDecay", CosineDecay.fromConfig],
    ["ExponentialDecay", ExponentialDecay.fromConfig],
    ["InverseTimeDecay", InverseTimeDecay.fromConfig],
    ["StepDecay", StepDecay.fromConfig],
  ];
}
