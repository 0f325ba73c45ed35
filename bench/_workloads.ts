// The four reference workloads of ../shared/bench/README.md, run by chainrule exactly as the
// peers run them: same data, same initial weights, same hyper-parameters, same loop, same
// timing window. Shared by `workloads.ts` (the command) and `workloads_bench.ts`.

import {
  accuracy,
  Adam,
  type DType,
  type Optimizer,
  type Sequential,
  SGD,
  SoftmaxCrossEntropy,
  takeRows,
  type Tensor,
} from "../mod.ts";
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

/** One measured run, printed as `RESULT key=value …` like the NumPy peer prints it. */
export type Result = Record<string, string | number>;

/** What to run. */
export interface RunOptions {
  dtype: DType;
  /** W1 epochs (10,001). */
  epochs?: number;
  /** W3 steps (20), W4 steps (64). */
  steps?: number;
  /** W2: stop the epoch after this many steps and extrapolate, as the peer's --max-steps. */
  maxSteps?: number;
  /** Steps over which to measure the heap growth after the timed run (0: skip). */
  heapSteps?: number;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Heap and external (typed array) growth over `steps` more training steps, in KiB. */
function heapGrowth(steps: number, step: (i: number) => void): Result {
  if (steps <= 0) return {};
  step(0); // the shape has been seen: from here on the steady state
  gc();
  const before = Deno.memoryUsage();
  for (let i = 1; i <= steps; i++) step(i);
  gc();
  const after = Deno.memoryUsage();
  return {
    heap_steps: steps,
    heap_growth_kib: ((after.heapUsed - before.heapUsed) / 1024).toFixed(1),
    external_growth_kib: ((after.external - before.external) / 1024).toFixed(1),
  };
}

function model(workload: Workload, dtype: DType): [Sequential, Tensor] {
  return [workloadModel(workload, dtype), workload.x.clone({ dtype })];
}

/** W1 spiral: 10,001 full-batch Adam epochs; loss/acc of the last epoch's forward pass. */
export function runW1(options: RunOptions): Result {
  const epochs = options.epochs ?? 10001;
  const workload = workloadW1();
  const [net, x] = model(workload, options.dtype);
  const loss = new SoftmaxCrossEntropy();
  const optimizer = new Adam({ learningRate: 0.05, decay: 5e-7 });
  const step = { loss, optimizer };
  let loss0 = 0, finalLoss = 0, acc = 0;
  const t0 = performance.now();
  for (let epoch = 0; epoch < epochs; epoch++) {
    const result = net.trainBatch(x, workload.y, step);
    if (epoch === 0) loss0 = result.loss;
    if (epoch === epochs - 1) {
      finalLoss = result.loss;
      acc = accuracy(result.outputs, workload.y);
    }
  }
  const wall = (performance.now() - t0) / 1000;
  return {
    workload: "W1",
    wall_s: wall.toFixed(4),
    per_epoch_ms: (wall / epochs * 1e3).toFixed(5),
    loss: finalLoss.toFixed(9),
    acc: acc.toFixed(4),
    epochs,
    wall_s_10001: (wall / epochs * 10001).toFixed(4),
    loss0: loss0.toFixed(9),
    ...heapGrowth(options.heapSteps ?? 0, () => net.trainBatch(x, workload.y, step)),
  };
}

/**
 * W2 MNIST-shaped MLP: one shuffled epoch of 469 Adam steps of batch 128. The shuffle is
 * done as `fit` does it: each batch's rows, in the permutation's order, are gathered into a
 * reused batch buffer just before its step, inside the timed window; `gather_s` is the sum
 * of those gathers (the peer gathers all of X[perm] at once into a fresh array; the first
 * writes into a fresh 188 MB typed array cost ~0.6 s of page faults in V8, docs/speed.md).
 */
export function runW2(options: RunOptions): Result {
  const workload = workloadW2();
  const [net, x] = model(workload, options.dtype);
  const samples = x.shape[0], batch = 128;
  const perm = workloadPermutation(samples, 0); // untimed: the data pipeline
  const loss = new SoftmaxCrossEntropy();
  const optimizer: Optimizer = new Adam({ learningRate: 1e-3 });
  const step = { loss, optimizer };
  const fullSteps = Math.ceil(samples / batch);
  const maxSteps = options.maxSteps || fullSteps;
  // One [rows, labels] buffer pair per batch size (128, and 96 for the last batch).
  const buffers = new Map<number, [Tensor, Int32Array]>();
  const gatherBatch = (s: number) => {
    const start = s * batch, count = Math.min(batch, samples - start);
    const rows = perm.subarray(start, start + count);
    let pair = buffers.get(count);
    if (!pair) buffers.set(count, pair = [takeRows(x, rows), new Int32Array(count)]);
    else takeRows(x, rows, pair[0]);
    const labels = pair[1];
    for (let i = 0; i < count; i++) labels[i] = workload.y[rows[i]];
    return pair;
  };

  let gather = 0;
  const t0 = performance.now();
  let steps = 0;
  for (; steps < Math.min(maxSteps, fullSteps); steps++) {
    const g0 = performance.now();
    const [rows, labels] = gatherBatch(steps);
    gather += performance.now() - g0;
    net.trainBatch(rows, labels, step);
  }
  const wall = (performance.now() - t0) / 1000;
  const perEpoch = wall * fullSteps / steps;
  gather /= 1000;

  const outputs = net.predict(x, { batchSize: 10_000 }); // untimed evaluation
  const evaluation = new SoftmaxCrossEntropy().forward(outputs, workload.y);
  return {
    workload: "W2",
    wall_s: wall.toFixed(4),
    per_epoch_s: perEpoch.toFixed(4),
    samples_per_s: (samples / perEpoch).toFixed(1),
    loss: evaluation.toFixed(6),
    acc: accuracy(outputs, workload.y).toFixed(4),
    epochs: 1,
    steps,
    gather_s: gather.toFixed(4),
    gflops: (6 * (784 * 128 + 128 * 10) * samples / perEpoch / 1e9).toFixed(3),
    ...heapGrowth(options.heapSteps ?? 0, (i) => {
      const [rows, labels] = gatherBatch(i % (fullSteps - 1)); // full batches: one shape
      net.trainBatch(rows, labels, step);
    }),
  };
}

/** W3 wide layers: 20 plain-SGD steps on one batch of 2,048; nominal FLOPs as the README. */
export function runW3(options: RunOptions): Result {
  const steps = options.steps ?? 20;
  const workload = workloadW3();
  const [net, x] = model(workload, options.dtype);
  const loss = new SoftmaxCrossEntropy();
  const step = { loss, optimizer: new SGD({ learningRate: 0.01 }) };
  let loss0 = 0, first = 0;
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const result = net.trainBatch(x, workload.y, step);
    if (s === 0) {
      loss0 = result.loss;
      first = performance.now() - t0;
    }
  }
  const wall = (performance.now() - t0) / 1000;
  const outputs = net.predict(x);
  const flops = 6 * 2048 * (1024 * 1024 + 1024 * 1024 + 1024 * 10);
  return {
    workload: "W3",
    wall_s: wall.toFixed(4),
    per_step_ms: (wall / steps * 1e3).toFixed(2),
    gflops: (flops * steps / wall / 1e9).toFixed(3),
    loss: new SoftmaxCrossEntropy().forward(outputs, workload.y).toFixed(6),
    acc: accuracy(outputs, workload.y).toFixed(4),
    steps,
    first_step_ms: first.toFixed(2),
    loss0: loss0.toFixed(6),
    wall_s_20: (wall / steps * 20).toFixed(4),
    ...heapGrowth(options.heapSteps ?? 0, () => net.trainBatch(x, workload.y, step)),
  };
}

/**
 * W4 fashion-cnn: 64 Adam steps of batch 64 over the images in order (no shuffle), timed;
 * then, untimed, loss and accuracy over the 4,096 images. Nominal FLOPs as the README.
 */
export function runW4(options: RunOptions): Result {
  const steps = options.steps ?? 64, batch = 64;
  const workload = workloadW4();
  const net = workloadW4Model(workload, options.dtype);
  const x = workload.x.clone({ dtype: options.dtype });
  const samples = x.shape[0];
  const loss = new SoftmaxCrossEntropy();
  const step = { loss, optimizer: new Adam({ learningRate: 1e-3 }) };
  const batches = Array.from({ length: samples / batch }, (_, b) => {
    const rows = Int32Array.from({ length: batch }, (_, i) => b * batch + i);
    return [takeRows(x, rows), workload.y.subarray(b * batch, (b + 1) * batch)] as const;
  }); // untimed: views of the data in the peer
  let loss0 = 0, first = 0;
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const [xb, yb] = batches[s % batches.length];
    const result = net.trainBatch(xb, yb, step);
    if (s === 0) {
      loss0 = result.loss;
      first = performance.now() - t0;
    }
  }
  const wall = (performance.now() - t0) / 1000;
  const outputs = net.predict(x, { batchSize: 512 });
  const flops = 3 * (2 * 784 * 32 * 9 + 2 * 196 * 64 * 288 + 2 * 3136 * 128 + 2 * 128 * 10);
  return {
    workload: "W4",
    wall_s: wall.toFixed(4),
    per_step_ms: (wall / steps * 1e3).toFixed(2),
    samples_per_s: (batch * steps / wall).toFixed(1),
    gflops: (flops * batch * steps / wall / 1e9).toFixed(3),
    loss0: loss0.toFixed(6),
    loss: new SoftmaxCrossEntropy().forward(outputs, workload.y).toFixed(6),
    acc: accuracy(outputs, workload.y).toFixed(4),
    steps,
    batch,
    first_step_ms: first.toFixed(2),
    ...heapGrowth(options.heapSteps ?? 0, (i) => {
      const [xb, yb] = batches[i % batches.length];
      net.trainBatch(xb, yb, step);
    }),
  };
}

// W5 and W6 train alike: 32 Adam steps on the stream's batches, the loss the mean
// cross-entropy over all batch·T positions; the batches are made before the clock starts.
function runSequences(
  workload: SeqWorkload,
  net: Sequential,
  flopsPerStep: number,
  options: RunOptions,
): Result {
  const steps = options.steps ?? 32, { B, T } = SEQ;
  const batches = Array.from({ length: steps }, (_, s) => {
    const { x, y } = seqBatch(workload.stream, s, B, T);
    return [idsTensor(x, B, T, options.dtype), idsTensor(y, B, T, options.dtype)] as const;
  });
  const step = { loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ learningRate: 1e-3 }) };
  let loss0 = 0, last = 0, first = 0;
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const [xb, yb] = batches[s];
    last = net.trainBatch(xb, yb, step).loss;
    if (s === 0) {
      loss0 = last;
      first = performance.now() - t0;
    }
  }
  const wall = (performance.now() - t0) / 1000;
  return {
    workload: workload.name,
    wall_s: wall.toFixed(4),
    per_step_ms: (wall / steps * 1e3).toFixed(2),
    tokens_per_s: (B * T * steps / wall).toFixed(1),
    gflops: (flopsPerStep * steps / wall / 1e9).toFixed(3),
    loss0: loss0.toFixed(6),
    loss: last.toFixed(6),
    steps,
    batch: B,
    first_step_ms: first.toFixed(2),
    ...heapGrowth(options.heapSteps ?? 0, (i) => {
      const [xb, yb] = batches[i % steps];
      net.trainBatch(xb, yb, step);
    }),
  };
}

/** W5 tiny GPT: 32 Adam steps of 32 sequences of 64 tokens, timed. */
export function runW5(options: RunOptions): Result {
  const workload = workloadW5();
  return runSequences(
    workload,
    workloadW5Model(workload, options.dtype),
    w5FlopsPerStep(),
    options,
  );
}

/** W6 char LSTM: 32 Adam steps of 32 sequences of 64 tokens, timed. */
export function runW6(options: RunOptions): Result {
  const workload = workloadW6();
  return runSequences(
    workload,
    workloadW6Model(workload, options.dtype),
    w6FlopsPerStep(),
    options,
  );
}

/** `RESULT key=value …` */
export function formatResult(result: Result): string {
  return "RESULT " + Object.entries(result).map(([k, v]) => `${k}=${v}`).join(" ");
}
