import { describe, describeKind } from "../core/_describe.ts";
import type { Chain } from "../core/chain.ts";
import type { Layer } from "../core/layer.ts";
import type { Loss, Targets } from "../core/loss.ts";
import type { Optimizer } from "../core/optimizer.ts";
import { RandomState } from "../core/random.ts";
import { Tensor, type TensorLike } from "../core/tensor.ts";
import {
  BatchBuffers,
  batchOf,
  checkedData,
  sliceRows,
  sliceTargets,
  type TargetsLike,
} from "./batches.ts";
import type { BatchLogs, Callback, TrainingState } from "./callback.ts";
import { NonFiniteLossError, TerminateOnNaN } from "./callbacks/terminate_on_nan.ts";
import { type EpochLogs, History, validationName } from "./history.ts";
import type { Metric } from "./metric.ts";
import { CategoricalAccuracy } from "./metrics/categorical_accuracy.ts";
import { ProgressBar } from "./progress.ts";

/**
 * Held-out samples that `fit` evaluates after every epoch: `{ x, y }`, or `[x, y]` as Keras
 * users write it.
 */
export type ValidationData =
  | {
    /** Inputs `[samples, …]`. */
    x: TensorLike;
    /** Their targets, in any form the loss takes. */
    y: TargetsLike;
  }
  | readonly [x: TensorLike, y: TargetsLike];

/** Options of `Sequential.evaluate`. */
export interface EvaluateOptions {
  /** The loss to report. */
  loss: Loss;
  /** Samples per forward pass; all at once when omitted. */
  batchSize?: number;
  /**
   * Metrics to report; when omitted, categorical accuracy if the outputs and targets have
   * the shapes of class scores and class indices (or one-hot rows), else none. Sequence
   * outputs `[batch, T, classes]` with targets `[batch, T]` get the fraction of positions
   * right, leaving out those whose target is the loss's `ignoreIndex`.
   */
  metrics?: Metric[];
}

/** What `evaluate` measured: mean data loss, the model's penalty, and each metric by name. */
export interface EvaluateLogs {
  /** Mean data loss over the samples. */
  loss: number;
  /** The model's regularization penalty. */
  regularizationLoss: number;
  /** Metrics, by name. */
  [name: string]: number;
}

/** Options of `Sequential.fit`. */
export interface FitOptions extends EvaluateOptions {
  /** The optimizer that applies the gradients. */
  optimizer: Optimizer;
  /** Passes over the data. */
  epochs: number;
  /**
   * Samples per step; the whole data set (full batch, as the book trains) when omitted. The
   * last batch of an epoch holds the samples left over, so it may be smaller.
   */
  batchSize?: number;
  /**
   * What to do with an epoch's last batch when fewer than `batchSize` samples are left for
   * it: `true` drops it (when shuffling, other samples are left out every epoch); `false`
   * trains on it as it is. When omitted, it is trained on unless it is smaller than a layer
   * needs to train (BatchNorm needs 2 samples; see `Layer.minTrainingBatch`): then it is
   * merged into the batch before, which grows by those samples. Either way `fit` checks the
   * batches before the first step, so it never fails on a last batch after it has started
   * changing the weights.
   */
  dropRemainder?: boolean;
  /** Reshuffle the samples every epoch when mini-batching; true when omitted. */
  shuffle?: boolean;
  /**
   * Seed of the shuffling: epoch e uses `new RandomState(seed + e).permutation(samples)`, so
   * each epoch's order depends only on the seed and the epoch number; 0 when omitted.
   */
  seed?: number;
  /** Number of the first epoch (to resume a run: epochs `initialEpoch … epochs−1` are run); 0. */
  initialEpoch?: number;
  /** Samples to evaluate after every epoch; logged as `valLoss`, `valAccuracy`, …. */
  validationData?: ValidationData;
  /**
   * Fraction in (0, 1) of the samples to hold out for validation instead: the last ones,
   * taken before any shuffling (as Keras does), so shuffle sorted data first.
   */
  validationSplit?: number;
  /** Hooks called during training (see {@linkcode Callback}). */
  callbacks?: Callback[];
  /**
   * 0 (the default): silent. 1: a live progress bar per epoch on a terminal, one line per
   * epoch otherwise. 2: one line per epoch.
   */
  verbose?: 0 | 1 | 2;
  /** Stop with an error when a loss becomes NaN or infinite; true when omitted. */
  terminateOnNaN?: boolean;
  /** Called after every epoch with its index (0-based) and logs. */
  onEpoch?: (epoch: number, logs: EpochLogs) => void;
}

export function checkPositiveInteger(value: number, name: string, where: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${where}: ${name} must be a positive integer, got ${describe(value)}`);
  }
  return value;
}

export function checkPlugins(
  options: FitOptions | EvaluateOptions,
  where: string,
  training: boolean,
): void {
  if (!options || typeof options !== "object") {
    throw new TypeError(
      `${where}: options must be an object with a loss, got ${describe(options)}`,
    );
  }
  if (typeof options.loss?.forward !== "function") {
    throw new TypeError(`${where}: options.loss must be a Loss, got ${describe(options.loss)}`);
  }
  const optimizer = (options as FitOptions).optimizer;
  if (training && typeof optimizer?.step !== "function") {
    throw new TypeError(
      `${where}: options.optimizer must be an Optimizer, got ${describe(optimizer)}`,
    );
  }
}

const RESERVED = new Set(["loss", "regularizationLoss", "batchLoss", "batchRegularizationLoss"]);

export function checkMetrics(
  metrics: readonly Metric[] | undefined,
  where: string,
): Metric[] | undefined {
  if (metrics === undefined) return undefined;
  if (!Array.isArray(metrics)) {
    throw new TypeError(
      `${where}: metrics must be an array of metrics, got ${describeKind(metrics)}`,
    );
  }
  const names = new Set<string>();
  metrics.forEach((metric, i) => {
    if (typeof metric?.name !== "string" || typeof metric.measure !== "function") {
      throw new TypeError(
        `${where}: metrics[${i}] must be a Metric (a name and a measure method), got ${
          describe(metric)
        }`,
      );
    }
    if (RESERVED.has(metric.name) || names.has(metric.name)) {
      throw new RangeError(
        `${where}: metrics[${i}] is named "${metric.name}", which is ${
          names.has(metric.name) ? "already taken by another metric" : "reserved"
        }; give it another { name }`,
      );
    }
    names.add(metric.name);
  });
  return [...metrics];
}

// Categorical accuracy is inferred for class scores [batch, …, classes ≥ 2] against class
// indices (shaped like the outputs without their last axis, or a flat array) or, for
// [batch, classes], one-hot rows as wide as the outputs; anything else needs explicit
// metrics. The accuracy leaves out the positions the loss ignores (its `ignoreIndex`).
export function inferMetrics(
  outputs: { readonly shape: readonly number[] },
  y: Targets,
  loss: Loss,
): Metric[] {
  const rank = outputs.shape.length;
  const size = outputs.shape.reduce((a, b) => a * b, 1);
  const classes = outputs.shape[rank - 1];
  if (rank < 2 || classes < 2) return [];
  let indices: boolean;
  if (!(y instanceof Tensor)) indices = rank === 2 || y.length === size / classes;
  else indices = y.rank === rank - 1 && y.shape.every((d, i) => d === outputs.shape[i]);
  const oneHot = rank === 2 && y instanceof Tensor && y.rank === 2 && y.shape[1] === classes;
  if (!indices && !oneHot) return [];
  const ignoreIndex = (loss as { ignoreIndex?: unknown }).ignoreIndex;
  return [new CategoricalAccuracy(typeof ignoreIndex === "number" ? { ignoreIndex } : {})];
}

// Sums a run of batches into sample-weighted means.
export class Meter {
  samples = 0;
  steps = 0;
  #loss = 0;
  #penalty = 0;
  #metrics: number[] = [];

  add(
    count: number,
    loss: number,
    penalty: number,
    outputs: Tensor,
    y: Targets,
    metrics: Metric[],
  ): void {
    this.addValues(count, loss, penalty, metrics.map((metric) => metric.measure(outputs, y)));
  }

  /** Adds a batch of `count` samples whose metrics were measured already (on the device). */
  addValues(count: number, loss: number, penalty: number, values: readonly number[]): void {
    this.samples += count;
    this.steps++;
    this.#loss += loss * count;
    this.#penalty += penalty;
    values.forEach((value, i) => this.#metrics[i] = (this.#metrics[i] ?? 0) + value * count);
  }

  logs(metrics: Metric[]): EpochLogs {
    const logs: EpochLogs = {
      loss: this.#loss / this.samples,
      regularizationLoss: this.#penalty / this.steps,
    };
    metrics.forEach((metric, i) => logs[metric.name] = this.#metrics[i] / this.samples);
    return logs;
  }
}

// Mean loss and metrics of `model` on `inputs` at inference, `batchSize` rows at a time.
export function measure(
  model: Chain,
  inputs: Tensor,
  y: Targets,
  loss: Loss,
  batchSize: number,
  metrics: Metric[] | undefined,
): EvaluateLogs {
  const samples = inputs.shape[0];
  const meter = new Meter();
  for (let start = 0; start < samples; start += batchSize) {
    const count = Math.min(batchSize, samples - start);
    const [xb, yb] = batchOf(inputs, y, start, count);
    const outputs = model.forward(xb, { training: false });
    metrics ??= inferMetrics(outputs, yb, loss);
    meter.add(count, loss.forward(outputs, yb), 0, outputs, yb, metrics);
  }
  const logs = meter.logs(metrics ?? []);
  logs.regularizationLoss = model.regularizationLoss();
  return logs;
}

/** Mean loss and metrics of `model` on `x`, `y`; see {@linkcode EvaluateOptions}. */
export function evaluate(
  model: Chain,
  x: TensorLike,
  y: TargetsLike,
  options: EvaluateOptions,
): EvaluateLogs {
  const where = "Sequential.evaluate";
  checkPlugins(options, where, false);
  const { inputs, y: targets } = checkedData(x, y, model.dtype, where);
  const batchSize = checkPositiveInteger(
    options.batchSize ?? inputs.shape[0],
    "batchSize",
    where,
  );
  const metrics = checkMetrics(options.metrics, where);
  for (const metric of metrics ?? []) metric.prepare?.(targets);
  return measure(model, inputs, targets, options.loss, batchSize, metrics);
}

interface Split {
  inputs: Tensor;
  y: Targets;
  validation?: [Tensor, Targets];
}

// The validation samples as [x, y], from either form of ValidationData.
export function validationPair(data: ValidationData, where: string): [TensorLike, TargetsLike] {
  if (Array.isArray(data) && data.length === 2) return [data[0], data[1]];
  if (data && typeof data === "object" && "x" in data && "y" in data) return [data.x, data.y];
  throw new TypeError(
    `${where}: validationData must be { x, y } or [x, y], got ${describeKind(data)}`,
  );
}

function splitData(model: Chain, inputs: Tensor, y: Targets, options: FitOptions): Split {
  const where = "Sequential.fit";
  const { validationData, validationSplit } = options;
  if (validationData !== undefined && validationSplit !== undefined) {
    throw new TypeError(`${where}: give validationData or validationSplit, not both`);
  }
  if (validationData !== undefined) {
    const [vx, vy] = validationPair(validationData, where);
    const checked = checkedData(vx, vy, model.dtype, `${where} (validationData)`);
    return { inputs, y, validation: [checked.inputs, checked.y] };
  }
  if (validationSplit === undefined) return { inputs, y };
  if (typeof validationSplit !== "number" || !(validationSplit > 0 && validationSplit < 1)) {
    throw new RangeError(
      `${where}: validationSplit must be in (0, 1), got ${describe(validationSplit)}`,
    );
  }
  const samples = inputs.shape[0];
  const kept = Math.floor(samples * (1 - validationSplit));
  if (kept === 0 || kept === samples) {
    throw new RangeError(
      `${where}: validationSplit ${validationSplit} of ${samples} samples leaves ${kept} for ` +
        `training and ${samples - kept} for validation; both need at least one`,
    );
  }
  return {
    inputs: sliceRows(inputs, 0, kept),
    y: sliceTargets(y, 0, kept),
    validation: [sliceRows(inputs, kept, samples - kept), sliceTargets(y, kept, samples - kept)],
  };
}

function checkCallbacks(callbacks: readonly Callback[] | undefined): Callback[] {
  if (callbacks === undefined) return [];
  if (!Array.isArray(callbacks)) {
    throw new TypeError(
      `Sequential.fit: callbacks must be an array, got ${describeKind(callbacks)}`,
    );
  }
  callbacks.forEach((callback, i) => {
    if (!callback || typeof callback !== "object") {
      throw new TypeError(
        `Sequential.fit: callbacks[${i}] must be an object with hook methods (onEpochEnd, …), ` +
          `got ${describeKind(callback)}`,
      );
    }
  });
  return [...callbacks];
}

function progressFor(verbose: number | undefined): ProgressBar | undefined {
  if (verbose === undefined || verbose === 0) return undefined;
  if (verbose === 1) return new ProgressBar();
  if (verbose === 2) return new ProgressBar({ live: false });
  throw new RangeError(`Sequential.fit: verbose must be 0, 1 or 2, got ${describe(verbose)}`);
}

// The layer of `model` (nested models included) that needs the most samples in a training
// batch, and how many; 1 and undefined when none needs more than one.
function largestMinBatch(model: Layer): [number, Layer | undefined] {
  let best: [number, Layer | undefined] = [1, undefined];
  const visit = (layer: Layer) => {
    const min = layer.minTrainingBatch;
    if (typeof min === "number" && min > best[0]) best = [min, layer];
    const inner = (layer as { layers?: unknown }).layers;
    if (Array.isArray(inner)) { for (const child of inner) if (child) visit(child); }
  };
  visit(model);
  return best;
}

/** An epoch's batches: `steps` of `batchSize` samples, the last of `last` samples. */
interface BatchPlan {
  steps: number;
  last: number;
}

// How `samples` are cut into batches of `batchSize` (see FitOptions.dropRemainder), checked
// against the fewest samples the model trains on, so that no step fails on a batch's size.
function planBatches(
  model: Chain,
  samples: number,
  batchSize: number,
  dropRemainder: boolean | undefined,
  where: string,
): BatchPlan {
  if (dropRemainder !== undefined && typeof dropRemainder !== "boolean") {
    throw new TypeError(
      `${where}: dropRemainder must be true or false (or left out), got ${describe(dropRemainder)}`,
    );
  }
  const [min, layer] = largestMinBatch(model);
  const needs = () => `${layer} needs at least ${min} samples in a training batch`;
  const full = Math.floor(samples / batchSize);
  const rest = samples - full * batchSize;
  if (batchSize < min && full > 0) {
    throw new RangeError(`${where}: batchSize is ${batchSize}, and ${needs()}; use a larger one`);
  }
  if (rest === 0) return { steps: full, last: batchSize };
  const leftover = `the last batch of each epoch holds ${rest} of the ${samples} samples ` +
    `(batchSize ${batchSize})`;
  if (dropRemainder === true) {
    if (full === 0) {
      throw new RangeError(
        `${where}: dropRemainder true drops every sample: ${samples} samples make no full batch ` +
          `of ${batchSize}; use a smaller batchSize`,
      );
    }
    return { steps: full, last: batchSize };
  }
  if (rest >= min) return { steps: full + 1, last: rest };
  if (dropRemainder === false || full === 0) {
    const fix = full === 0
      ? "give more samples"
      : "leave dropRemainder out to merge it into the batch before, give dropRemainder: true " +
        "to drop it, or choose another batchSize";
    throw new RangeError(`${where}: ${leftover}, and ${needs()}; ${fix}`);
  }
  return { steps: full, last: batchSize + rest }; // merged into the batch before
}

/** A fit in progress: what its epochs share. */
export interface EpochRun {
  model: Chain;
  inputs: Tensor;
  y: Targets;
  options: FitOptions;
  state: TrainingState;
  hooks: Callback[]; // the callbacks with onBatchEnd
  metrics?: Metric[]; // inferred from the first batch when not given
  buffers: BatchBuffers; // shuffled batches
  plan: BatchPlan; // the batches' sizes
}

// With terminateOnNaN (the default), a step whose loss or penalty is not finite stops before
// backward and the optimizer run, so the weights keep their last finite values.
export function finiteLossGuard(
  run: EpochRun,
  epoch: number,
  batch: number,
): ((loss: number, penalty: number) => void) | undefined {
  if (!(run.options.terminateOnNaN ?? true)) return undefined;
  return (loss, penalty) => {
    if (Number.isFinite(loss) && Number.isFinite(penalty)) return;
    const [what, value] = Number.isFinite(loss) ? ["regularization loss", penalty] : ["loss", loss];
    throw new NonFiniteLossError(epoch, batch, what, value, run.state.history);
  };
}

// One step of an epoch: the batch's training step, its figures into `meter`, the hooks.
export function trainOneBatch(
  run: EpochRun,
  meter: Meter,
  epoch: number,
  batch: number,
  order?: Int32Array,
): void {
  const { model, inputs, y, options, state, hooks } = run;
  const { steps, last } = run.plan;
  const count = batch === steps - 1 ? last : state.batchSize;
  const [xb, yb] = batchOf(inputs, y, batch * state.batchSize, count, order, run.buffers);
  const result = model.trainBatch(xb, yb, options, finiteLossGuard(run, epoch, batch));
  const metrics = run.metrics ??= inferMetrics(result.outputs, yb, options.loss);
  meter.add(count, result.loss, result.regularizationLoss, result.outputs, yb, metrics);
  if (hooks.length === 0) return;
  const logs: BatchLogs = {
    size: count,
    batchLoss: result.loss,
    batchRegularizationLoss: result.regularizationLoss,
    ...meter.logs(metrics),
  };
  for (const callback of hooks) callback.onBatchEnd!(batch, logs, state);
}

// One pass over the training samples in `order` (or as stored), a batch per step.
export function trainEpoch(run: EpochRun, epoch: number, order?: Int32Array): EpochLogs {
  const meter = new Meter();
  for (let batch = 0; batch < run.plan.steps && !run.state.stopTraining; batch++) {
    trainOneBatch(run, meter, epoch, batch, order);
  }
  return meter.logs(run.metrics ?? []);
}

/** Everything a fit needs, checked before its first step (shared by fit and fitAsync). */
export interface FitSetup {
  run: EpochRun;
  callbacks: Callback[];
  progress?: ProgressBar;
  validation?: [Tensor, Targets];
  shuffle: boolean;
  seed: number;
  initialEpoch: number;
}

/** Checks `fit`'s arguments and builds its state, callbacks and batch plan. */
export function prepareFit(
  model: Chain,
  x: TensorLike,
  y: TargetsLike,
  options: FitOptions,
  where = "Sequential.fit",
): FitSetup {
  checkPlugins(options, where, true);
  checkPositiveInteger(options.epochs, "epochs", where);
  const initialEpoch = options.initialEpoch ?? 0;
  if (!Number.isSafeInteger(initialEpoch) || initialEpoch < 0) {
    throw new RangeError(
      `${where}: initialEpoch must be an integer ≥ 0, got ${describe(initialEpoch)}`,
    );
  }
  const checked = checkedData(x, y, model.dtype, where);
  const data = splitData(model, checked.inputs, checked.y, options);
  const { inputs, validation } = data;
  const samples = inputs.shape[0];
  const batchSize = checkPositiveInteger(options.batchSize ?? samples, "batchSize", where);
  const plan = planBatches(model, samples, batchSize, options.dropRemainder, where);
  const shuffle = (options.shuffle ?? true) && batchSize < samples;
  const seed = options.seed ?? 0;
  const metrics = checkMetrics(options.metrics, where);
  for (const metric of metrics ?? []) metric.prepare?.(data.y);
  const progress = progressFor(options.verbose);
  const callbacks: Callback[] = [
    ...(options.terminateOnNaN ?? true ? [new TerminateOnNaN()] : []),
    ...checkCallbacks(options.callbacks),
    ...(progress ? [progress] : []),
  ];
  const state: TrainingState = {
    model,
    optimizer: options.optimizer,
    loss: options.loss,
    initialEpoch,
    epochs: options.epochs,
    samples,
    batchSize,
    steps: plan.steps,
    history: new History(),
    stopTraining: false,
  };
  const hooks = callbacks.filter((callback) => callback.onBatchEnd);
  const run: EpochRun = {
    model,
    inputs,
    y: data.y,
    options,
    state,
    hooks,
    metrics,
    buffers: new BatchBuffers(),
    plan,
  };
  return { run, callbacks, progress, validation, shuffle, seed, initialEpoch };
}

/** Epoch `epoch`'s sample order: a seeded permutation when shuffling, else none. */
export function epochOrder(setup: FitSetup, epoch: number): Int32Array | undefined {
  return setup.shuffle
    ? new RandomState(setup.seed + epoch).permutation(setup.run.state.samples)
    : undefined;
}

/** Adds the validation figures to an epoch's logs, as `valLoss`, `valAccuracy`, …. */
export function addValidation(logs: EpochLogs, measured: EvaluateLogs): void {
  for (const [name, value] of Object.entries(measured)) logs[validationName(name)] = value;
}

/** Records an epoch's logs and tells `onEpoch` and the callbacks. */
export function endEpoch(setup: FitSetup, epoch: number, logs: EpochLogs): void {
  const { state, options } = setup.run;
  state.history.record(epoch, logs);
  options.onEpoch?.(epoch, logs);
  for (const callback of setup.callbacks) callback.onEpochEnd?.(epoch, logs, state);
}

/** Trains `model` on `x`, `y`; see {@linkcode FitOptions}. */
export function fit(model: Chain, x: TensorLike, y: TargetsLike, options: FitOptions): History {
  const setup = prepareFit(model, x, y, options);
  const { run, callbacks, progress, validation } = setup;
  const { state } = run;
  try {
    for (const callback of callbacks) callback.onTrainBegin?.(state);
    for (let epoch = setup.initialEpoch; epoch < options.epochs && !state.stopTraining; epoch++) {
      for (const callback of callbacks) callback.onEpochBegin?.(epoch, state);
      if (state.stopTraining) break;
      const logs = trainEpoch(run, epoch, epochOrder(setup, epoch));
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
  return state.history;
}
