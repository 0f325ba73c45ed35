/**
 * Helpers for people who write chainrule plugins (layers, losses, optimizers, schedules,
 * metrics, backends): the checks, buffers and loops the built-in plugins use, so that a
 * third-party plugin behaves like a built-in one. Users of the library need only the main
 * entry; import these from `@chainrule/nn/plugin`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Layer, type Param, Sequential, Tensor } from "@chainrule/nn";
 * import { expectLike, expectTensor, Scratch } from "@chainrule/nn/plugin";
 *
 * // A third-party layer that squares its inputs, with the built-ins' checks and buffers.
 * class Square implements Layer {
 *   readonly kind = "Square";
 *   #inputs?: Tensor; // [batch, features]
 *   #outputs = new Scratch();
 *   forward(inputs: Tensor): Tensor {
 *     expectTensor(inputs, "Square.forward");
 *     this.#inputs = inputs;
 *     const out = this.#outputs.get(inputs.dtype, inputs.shape);
 *     for (let i = 0; i < inputs.size; i++) out.data[i] = inputs.data[i] ** 2;
 *     return out;
 *   }
 *   // dinputs = 2·inputs·dvalues
 *   backward(dvalues: Tensor): Tensor {
 *     const inputs = expectLike(dvalues, this.#inputs, "Square.backward");
 *     return new Tensor(inputs.data.map((x, i) => 2 * x * dvalues.data[i]), inputs.shape);
 *   }
 *   params(): Param[] {
 *     return [];
 *   }
 *   config(): Record<string, never> {
 *     return {};
 *   }
 *   toString(): string {
 *     return "Square()";
 *   }
 * }
 * assert.deepEqual(new Sequential([new Square()]).predict([[3, -2]]).toArray(), [[9, 4]]);
 * assert.throws(() => new Square().backward(Tensor.from([[1]])), /Square.backward: call forward first/);
 * ```
 *
 * @module
 */
export { checkHyper, expectLike, expectTensor } from "./core/_checks.ts";
export { describe, describeKind } from "./core/_describe.ts";
export { checkAllocation, formatBytes } from "./core/_allocation.ts";
export { Scratch } from "./core/_scratch.ts";
export {
  copyRowsByGroup,
  groupSumsOf,
  markGroupSums,
  type RowGroups,
  rowGroupsOf,
  sameRows,
  setRowGroups,
  sumRowsByGroup,
} from "./core/row_groups.ts";
export {
  allocate,
  dtypeOf,
  expectMatrix,
  formatShape,
  toTensor,
  withAllocationBudget,
} from "./core/tensor.ts";
export { type JsonLimits, type JsonScan, scanJson } from "./core/json.ts";
export { resolveRandom } from "./core/random.ts";
export { Registry } from "./core/registry.ts";
export {
  checkIgnoreIndex,
  classOutputs,
  type ClassTargets,
  classTargets,
  classTargetsFor,
  type ClassTargetsOptions,
  targetCount,
  valueTargets,
} from "./losses/_targets.ts";
export { clipGradients, type Clipping, resolveClipping } from "./optimizers/_common.ts";
export { getInitializer } from "./initializers/initializers.ts";
export { naiveBackend } from "./backends/naive.ts";
export { adamLoop, jsBackend } from "./backends/js.ts";
export { wasmBackend } from "./backends/wasm.ts";
export { softmaxRows } from "./activations/softmax.ts";
export { resolveSchedule, scheduleConfig, scheduledRate } from "./optimizers/_schedule.ts";
export { elementTargets } from "./training/metric.ts";
export { type BufferSite, bufferSites, type ParamSite, paramSites } from "./io/model_io.ts";
// The GPU side of plugins (see docs/gpu.md): the contracts and the shared kernels.
export * from "./core/gpu.ts";
export * from "./backends/webgpu_ops.ts";
