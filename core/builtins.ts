// The built-in plugins, by kind. Add a line here when adding a plugin; nothing else in the
// core names a concrete plugin.
import { ReLU } from "../activations/relu.ts";
import { Dense } from "../layers/dense.ts";
import { SoftmaxCrossEntropy } from "../losses/softmax_cross_entropy.ts";
import { Adam } from "../optimizers/adam.ts";
import { SGD } from "../optimizers/sgd.ts";
import type { JsonObject } from "./json.ts";
import type { Layer } from "./layer.ts";
import type { Loss } from "./loss.ts";
import type { Optimizer } from "./optimizer.ts";
import { Sequential } from "./sequential.ts";

type Entry<T> = [string, (config: JsonObject) => T];

/** Built-in layers. */
export function builtinLayers(): Entry<Layer>[] {
  return [
    ["Dense", Dense.fromConfig],
    ["ReLU", ReLU.fromConfig],
    ["Sequential", Sequential.fromConfig],
  ];
}

/** Built-in losses. */
export function builtinLosses(): Entry<Loss>[] {
  return [
    ["SoftmaxCrossEntropy", SoftmaxCrossEntropy.fromConfig],
  ];
}

/** Built-in optimizers. */
export function builtinOptimizers(): Entry<Optimizer>[] {
  return [
    ["Adam", Adam.fromConfig],
    ["SGD", SGD.fromConfig],
  ];
}
