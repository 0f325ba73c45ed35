// The reference workloads of ../shared/bench/README.md trained on WebGPU with
// `fitAsync(..., { device: "webgpu" })`: the CPU's models, data and optimizers (the builders
// of _workload_data.ts and _seq_workload_data.ts), the workload's batches in order in one
// data set, `shuffle: false`. Shared by `gpu_workloads.ts` (the command).
//
// Timing. Every fitAsync opens its own device, uploads the data and params and compiles its
// pipelines during its first step, so one fit's time is not a step time. The steady state
// is measured as the difference of two fits on fresh copies of the model, one of S steps and
// one of 2S steps: per step = (t(2S) − t(S)) / S, each t taken from the fit's onTrainBegin
// (data and params on the device) to the end of the call (last results read, params read
// back, device destroyed), so that what both fits share cancels. A 1-step fit runs first, so
// that the process's one-time costs fall on neither.

import {
  accuracy,
  Adam,
  type Optimizer,
  type Sequential,
  SGD,
  SoftmaxCrossEntropy,
  takeRows,
  type Tensor,
} from "../mod.ts";
import type { Result } from "./_workloads.ts";
import {
  type Workload,
  workloadModel,
  workloadPermutation,
  workloadW1,
  workloadW2,
  workloadW3,
  workloadW4,
  workloadW4Model,
} from "./_workload_data.ts";
import {
  idsTensor,
  SEQ,
  seqBatch,
  type SeqWorkload,
  w5FlopsPerStep,
  w6FlopsPerStep,
  workloadW5,
  workloadW5Model,
  workloadW6,
  workloadW6Model,
} from "./_seq_workload_data.ts";

/** The workloads' names. */
export const GPU_WORKLOADS: readonly string[] = ["W1", "W2", "W3", "W4", "W5", "W6"];

/** What to run. */
export interface GpuRunOptions {
  /** Steps S of the shorter fit (the longer one runs 2S); see {@linkcode gpuDefaults}. */
  steps?: number;
  /** W1: epochs E of the shorter fit (the longer one runs 2E); 2001 when omitted. */
  epochs?: number;
}

/** W1's epochs in the reference loop. */
export const W1_EPOCHS = 10001;
/** W2's steps per epoch (468 batches of 128 and one of 96). */
export const W2_STEPS = 469;

/** The shorter fit's default steps (W1: epochs) of each workload. */
export function gpuDefaults(workload: string): number {
  // W3–W6: the longer fit runs exactly the reference's steps (20, 64, 32, 32).
  return { W1: 2001, W2: 100, W3: 10, W4: 32, W5: 16, W6: 16 }[workload] ?? 0;
}

// One workload as the GPU fits run it.
interface Plan {
  name: string;
  model(): Sequential;
  optimizer(): Optimizer;
  batchSize: number;
  // The data of a fit of `steps` steps (the workload's first `steps` batches, in order) and
  // its epochs (W1, W3: one batch, trained `steps` epochs).
  data(steps: number): { x: Tensor; y: Int32Array | Tensor; epochs: number };
  // Untimed, after the longer fit: loss and accuracy of the trained weights, on the CPU.
  evaluate(model: Sequential): { loss: number; acc?: number };
}

interface TimedFit {
  steps: number;
  fitS: number; // the whole fitAsync call
  windowS: number; // onTrainBegin → the call's end
  trainLoss: number; // the last epoch's mean training loss, as the device measured it
  model: Sequential;
}

async function timedFit(plan: Plan, steps: number): Promise<TimedFit> {
  const model = plan.model();
  const { x, y, epochs } = plan.data(steps);
  let begin = NaN;
  const t0 = performance.now();
  const history = await model.fitAsync(x, y, {
    loss: new SoftmaxCrossEntropy(),
    optimizer: plan.optimizer(),
    epochs,
    batchSize: plan.batchSize,
    shuffle: false,
    metrics: [], // the CPU loops measure nothing per step either
    device: "webgpu",
    callbacks: [{ onTrainBegin: () => void (begin = performance.now()) }],
  });
  const end = performance.now();
  return {
    steps,
    fitS: (end - t0) / 1000,
    windowS: (end - begin) / 1000,
    trainLoss: history.loss.at(-1)!,
    model,
  };
}

function evaluateOn(model: Sequential, x: Tensor, y: Int32Array | Tensor, batchSize?: number) {
  const outputs = model.predict(x, batchSize ? { batchSize } : {});
  return {
    loss: new SoftmaxCrossEntropy().forward(outputs, y),
    acc: accuracy(outputs, y),
  };
}

// The rows of `x` (and their labels) that batches 0 … batches − 1 hold (`rowsOf`), in order.
function batchRows(
  x: Tensor,
  y: Int32Array,
  batches: number,
  rowsOf: (batch: number) => ArrayLike<number>,
): { x: Tensor; y: Int32Array } {
  const rows: number[] = [];
  for (let b = 0; b < batches; b++) rows.push(...Array.from(rowsOf(b)));
  const order = Int32Array.from(rows);
  const labels = new Int32Array(order.length);
  for (let i = 0; i < order.length; i++) labels[i] = y[order[i]];
  return { x: takeRows(x, order), y: labels };
}

function densePlan(workload: Workload, optimizer: () => Optimizer): Omit<Plan, "data"> {
  return {
    name: workload.name,
    model: () => workloadModel(workload, "float32"),
    optimizer,
    batchSize: workload.x.shape[0],
    evaluate: (model) => evaluateOn(model, workload.x, workload.y),
  };
}

function planW1(): Plan {
  const workload = workloadW1();
  return {
    ...densePlan(workload, () => new Adam({ learningRate: 0.05, decay: 5e-7 })),
    data: (epochs) => ({ x: workload.x, y: workload.y, epochs }),
  };
}

function planW2(): Plan {
  const workload = workloadW2();
  const batch = 128, perm = workloadPermutation(workload.x.shape[0], 0);
  return {
    ...densePlan(workload, () => new Adam({ learningRate: 1e-3 })),
    batchSize: batch,
    data: (steps) => ({
      ...batchRows(
        workload.x,
        workload.y,
        steps,
        (b) => perm.subarray(b * batch, b * batch + batch),
      ),
      epochs: 1,
    }),
    evaluate: (model) => evaluateOn(model, workload.x, workload.y, 10_000),
  };
}

function planW3(): Plan {
  const workload = workloadW3();
  return {
    ...densePlan(workload, () => new SGD({ learningRate: 0.01 })),
    data: (steps) => ({ x: workload.x, y: workload.y, epochs: steps }),
  };
}

function planW4(): Plan {
  const workload = workloadW4(), batch = 64;
  const batches = workload.x.shape[0] / batch;
  return {
    name: "W4",
    model: () => workloadW4Model(workload, "float32"),
    optimizer: () => new Adam({ learningRate: 1e-3 }),
    batchSize: batch,
    data: (steps) => ({
      // Step s trains on images [64·(s mod 64), …+64), as the CPU loop does.
      ...batchRows(workload.x, workload.y, steps, (s) => {
        const first = (s % batches) * batch;
        return Int32Array.from({ length: batch }, (_, i) => first + i);
      }),
      epochs: 1,
    }),
    evaluate: (model) => evaluateOn(model, workload.x, workload.y, 512),
  };
}

function sequencePlan(workload: SeqWorkload, model: () => Sequential): Plan {
  const { B, T } = SEQ;
  // The ids of batches 0 … steps − 1 of the stream, concatenated: [steps·B, T].
  const ids = (steps: number, which: "x" | "y") => {
    const out = new Int32Array(steps * B * T);
    for (let s = 0; s < steps; s++) out.set(seqBatch(workload.stream, s, B, T)[which], s * B * T);
    return idsTensor(out, steps * B, T, "float32");
  };
  let last = 0; // the longer fit's steps: its last batch is the one evaluated
  return {
    name: workload.name,
    model,
    optimizer: () => new Adam({ learningRate: 1e-3 }),
    batchSize: B,
    data: (steps) => {
      last = Math.max(last, steps);
      return { x: ids(steps, "x"), y: ids(steps, "y"), epochs: 1 };
    },
    evaluate: (net) => {
      const { x, y } = seqBatch(workload.stream, last - 1, B, T);
      return evaluateOn(net, idsTensor(x, B, T, "float32"), idsTensor(y, B, T, "float32"));
    },
  };
}

function planOf(name: string): Plan {
  switch (name) {
    case "W1":
      return planW1();
    case "W2":
      return planW2();
    case "W3":
      return planW3();
    case "W4":
      return planW4();
    case "W5": {
      const workload = workloadW5();
      return sequencePlan(workload, () => workloadW5Model(workload, "float32"));
    }
    case "W6": {
      const workload = workloadW6();
      return sequencePlan(workload, () => workloadW6Model(workload, "float32"));
    }
  }
  throw new RangeError(`gpuWorkload: workload must be W1, W2, W3, W4, W5 or W6, got ${name}`);
}

// Nominal FLOPs of one step, as ../shared/bench/README.md counts them (W1: irrelevant).
function flopsPerStep(name: string): number {
  switch (name) {
    case "W2":
      return 6 * (784 * 128 + 128 * 10) * 128;
    case "W3":
      return 6 * 2048 * (1024 * 1024 + 1024 * 1024 + 1024 * 10);
    case "W4":
      return 3 * (2 * 784 * 32 * 9 + 2 * 196 * 64 * 288 + 2 * 3136 * 128 + 2 * 128 * 10) * 64;
    case "W5":
      return w5FlopsPerStep();
    case "W6":
      return w6FlopsPerStep();
  }
  return 0;
}

/**
 * Runs `name` on WebGPU as two fits of S and 2S steps and returns the RESULT fields, with
 * the workload's metric (W1 `wall_s`, W2 `per_epoch_s`, W3–W6 `per_step_ms`) first. Throws
 * what fitAsync throws (a TypeError naming the layer when one has no GPU side).
 */
export async function runGpuWorkload(name: string, options: GpuRunOptions = {}): Promise<Result> {
  const plan = planOf(name);
  const steps = (name === "W1" ? options.epochs : options.steps) ?? gpuDefaults(name);
  if (!Number.isSafeInteger(steps) || steps < 1) {
    throw new RangeError(`gpuWorkload: ${name}'s steps must be a positive integer, got ${steps}`);
  }
  if (name === "W2" && 2 * steps > W2_STEPS - 1) {
    throw new RangeError(
      `gpuWorkload: W2's --steps must be at most ${(W2_STEPS - 1) >> 1} (2S full batches of ` +
        `the epoch's first 468), got ${steps}`,
    );
  }
  // The process's first fit also pays one-time costs (V8 compiling the loop, the driver's
  // start-up): a 1-step fit first, so that the S- and 2S-step fits differ only by S steps.
  const cold = await timedFit(plan, 1);
  const short = await timedFit(plan, steps);
  const long = await timedFit(plan, 2 * steps);
  const perStep = (long.windowS - short.windowS) / steps; // seconds
  const { loss, acc } = plan.evaluate(long.model);
  const common = {
    steps,
    fit_s: short.fitS.toFixed(4),
    fit_2x_s: long.fitS.toFixed(4),
    setup_s: (short.fitS - short.windowS).toFixed(4),
    cold_fit_s: cold.fitS.toFixed(4),
    train_loss: long.trainLoss.toFixed(6),
    loss: loss.toFixed(6),
    ...(acc === undefined || name === "W5" || name === "W6" ? {} : { acc: acc.toFixed(4) }),
  };
  if (name === "W1") {
    // One fitAsync of 10,001 epochs: the E-epoch fit, setup included, plus the remaining
    // epochs at the steady rate (measured outright when E is 10,001).
    const wall = short.fitS + (W1_EPOCHS - steps) * perStep;
    return {
      workload: name,
      wall_s: wall.toFixed(4),
      per_epoch_ms: (perStep * 1e3).toFixed(5),
      epochs: steps,
      ...common,
    };
  }
  const gflops = (flopsPerStep(name) / perStep / 1e9).toFixed(3);
  if (name === "W2") {
    const perEpoch = perStep * W2_STEPS; // as the peer's --max-steps extrapolates
    return {
      workload: name,
      per_epoch_s: perEpoch.toFixed(4),
      per_step_ms: (perStep * 1e3).toFixed(3),
      samples_per_s: (60_000 / perEpoch).toFixed(1),
      gflops,
      ...common,
    };
  }
  return {
    workload: name,
    per_step_ms: (perStep * 1e3).toFixed(3),
    gflops,
    ...(name === "W4" ? { samples_per_s: (plan.batchSize / perStep).toFixed(1) } : {}),
    ...(name === "W5" || name === "W6"
      ? { tokens_per_s: (SEQ.B * SEQ.T / perStep).toFixed(1) }
      : {}),
    ...common,
  };
}
