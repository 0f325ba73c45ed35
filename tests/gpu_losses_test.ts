// The losses' and metrics' GPU sides against their CPU sides (float32), on odd shapes:
// the value added to the sink (relative error) and the gradient (max |GPU − CPU| over
// max |CPU|), with class indices, ignored positions, one-hot and soft rows, per-output
// values, and the sink's accumulation.
import assert from "node:assert/strict";
import type { WebGpuContext } from "../backends/webgpu.ts";
import type { GpuLoss, GpuMetric, GpuTensor } from "../core/gpu.ts";
import type { Loss, Targets } from "../core/loss.ts";
import { Tensor } from "../core/tensor.ts";
import type { Metric } from "../training/metric.ts";
import { BinaryCrossEntropy } from "../losses/binary_cross_entropy.ts";
import { CategoricalCrossEntropy } from "../losses/categorical_cross_entropy.ts";
import { Huber } from "../losses/huber.ts";
import { MeanAbsoluteError } from "../losses/mean_absolute_error.ts";
import { MeanSquaredError } from "../losses/mean_squared_error.ts";
import { SoftmaxCrossEntropy } from "../losses/softmax_cross_entropy.ts";
import { BinaryAccuracy } from "../training/metrics/binary_accuracy.ts";
import { CategoricalAccuracy } from "../training/metrics/categorical_accuracy.ts";
import { RegressionAccuracy } from "../training/metrics/regression_accuracy.ts";
import { f32Above, f32Below } from "../losses/_gpu_targets.ts";
import { fromGpu, gpuTest, randomTensor, toGpu } from "./_gpu.ts";

const TOLERANCE = 1e-5;

// The largest errors seen, by plugin, printed at the end of each test for the record.
const worst = new Map<string, { value: number; gradient: number }>();
function record(name: string, value: number, gradient = 0): void {
  const seen = worst.get(name) ?? { value: 0, gradient: 0 };
  worst.set(name, {
    value: Math.max(seen.value, value),
    gradient: Math.max(seen.gradient, gradient),
  });
}

// Prints the largest errors of `names` (what the closing report quotes).
function summary(...names: string[]): void {
  for (const name of names) {
    const e = worst.get(name);
    if (!e) continue;
    const gradient = name.endsWith("Accuracy") ? "" : `, gradient ${e.gradient.toExponential(2)}`;
    console.log(
      `GPU vs CPU, largest relative error of ${name}: value ${e.value.toExponential(2)}${gradient}`,
    );
  }
}

// |gpu − cpu| / |cpu|; a CPU value of exactly 0 (every position ignored) must be exactly 0.
function valueError(gpu: number, cpu: number): number {
  if (cpu === 0) return gpu === 0 ? 0 : Infinity;
  return Math.abs(gpu - cpu) / Math.abs(cpu);
}

// max |gpu − cpu| / max |cpu|; an all-zero CPU gradient must be exactly zero on the GPU.
function gradientError(gpu: ArrayLike<number>, cpu: ArrayLike<number>): number {
  assert.equal(gpu.length, cpu.length, "gradient lengths differ");
  let diff = 0, scale = 0;
  for (let i = 0; i < cpu.length; i++) {
    diff = Math.max(diff, Math.abs(gpu[i] - cpu[i]));
    scale = Math.max(scale, Math.abs(cpu[i]));
  }
  if (scale === 0) return diff === 0 ? 0 : Infinity;
  return diff / scale;
}

// A results buffer of 4 whose other elements hold values: the sink is index 2, which
// starts at 0 so that what was added reads back exactly.
const AROUND = [1, 2, 0, 4];
function results(ctx: WebGpuContext, values = AROUND): GpuTensor {
  return ctx.upload(Float32Array.from(values), [values.length], "float32");
}

// Checks that the sink's other elements are untouched, and returns what was added at 2.
function added(values: Float32Array): number {
  for (const i of [0, 1, 3]) assert.equal(values[i], AROUND[i], `results[${i}] changed`);
  return values[2];
}

/**
 * Runs `loss` on the GPU (into a sink among other results) and then on the CPU, with the
 * same float32 outputs and targets (`cpuTargets` where the CPU takes another form), and
 * asserts value and gradient agree to TOLERANCE.
 */
async function compareLoss(
  ctx: WebGpuContext,
  loss: Loss & GpuLoss,
  outputs: Tensor,
  targets: Tensor,
  what: string,
  cpuTargets: Targets = targets,
): Promise<void> {
  const sink = results(ctx);
  loss.gpuForward(ctx, toGpu(ctx, outputs), toGpu(ctx, targets), { results: sink, index: 2 });
  const dGpu = loss.gpuBackward(ctx);
  const [r, d] = await fromGpu(ctx, sink, dGpu);
  const cpu = loss.forward(outputs, cpuTargets);
  const dCpu = loss.backward();
  assert.deepEqual(dGpu.shape, outputs.shape);
  const gpuValue = added(r);
  const value = valueError(gpuValue, cpu);
  const gradient = gradientError(d, dCpu.data);
  // Clipped, ignored and exact-hit elements get exactly 0 on both sides (a huge gradient
  // elsewhere could hide a wrong one in the relative error).
  for (let i = 0; i < d.length; i++) {
    assert.equal(
      d[i] === 0,
      dCpu.data[i] === 0,
      `${loss} ${what}: gradient ${i} is ${d[i]} vs ${dCpu.data[i]}`,
    );
  }
  record(loss.kind, value, gradient);
  assert.ok(
    value <= TOLERANCE,
    `${loss} ${what}: value GPU ${gpuValue} vs CPU ${cpu}, relative error ${
      value.toExponential(2)
    }`,
  );
  assert.ok(
    gradient <= TOLERANCE,
    `${loss} ${what}: gradient relative error ${gradient.toExponential(2)}`,
  );
}

/** Runs `metric` on the GPU and the CPU and asserts the scores agree to TOLERANCE. */
async function compareMetric(
  ctx: WebGpuContext,
  metric: Metric & GpuMetric,
  outputs: Tensor,
  targets: Tensor,
  what: string,
): Promise<number> {
  const sink = results(ctx);
  metric.gpuMeasure(ctx, toGpu(ctx, outputs), toGpu(ctx, targets), { results: sink, index: 2 });
  const [r] = await fromGpu(ctx, sink);
  const cpu = metric.measure(outputs, targets);
  const gpuValue = added(r);
  const error = valueError(gpuValue, cpu);
  record(String(metric).replace(/\(.*/, ""), error);
  assert.ok(
    error <= TOLERANCE,
    `${metric} ${what}: GPU ${gpuValue} vs CPU ${cpu}, relative error ${error.toExponential(2)}`,
  );
  return cpu;
}

// Seeded class indices in [0, classes) shaped `shape`, float32; `ignore` put at every
// `every`-th position when given.
function indices(
  shape: number[],
  classes: number,
  seed: number,
  ignore?: { value: number; every: number },
): Tensor {
  const t = randomTensor(shape, seed);
  for (let i = 0; i < t.size; i++) {
    t.data[i] = Math.min(classes - 1, Math.floor((t.data[i] + 1) / 2 * classes));
    if (ignore && i % ignore.every === 0) t.data[i] = ignore.value;
  }
  return t;
}

// One-hot rows shaped `shape` (the classes last) for seeded classes.
function oneHot(shape: number[], seed: number): Tensor {
  const classes = shape[shape.length - 1];
  const labels = indices([Tensor.zeros(shape).size / classes], classes, seed);
  const t = Tensor.zeros(shape, { dtype: "float32" });
  for (let i = 0; i < labels.size; i++) t.data[i * classes + labels.data[i]] = 1;
  return t;
}

// Rows of probabilities (a softmax of seeded logits) shaped `shape`.
function probabilities(shape: number[], seed: number, scale = 3): Tensor {
  const t = randomTensor(shape, seed);
  const classes = shape[shape.length - 1];
  for (let row = 0; row < t.size; row += classes) {
    let sum = 0;
    for (let j = row; j < row + classes; j++) sum += t.data[j] = Math.exp(scale * t.data[j]);
    for (let j = row; j < row + classes; j++) t.data[j] /= sum;
  }
  return t;
}

// Seeded values in [0, 1), float32.
function unit(shape: number[], seed: number): Tensor {
  const t = randomTensor(shape, seed);
  for (let i = 0; i < t.size; i++) t.data[i] = (t.data[i] + 1) / 2;
  return t;
}

// Seeded 0/1 labels.
function labels(shape: number[], seed: number): Tensor {
  const t = unit(shape, seed);
  for (let i = 0; i < t.size; i++) t.data[i] = t.data[i] < 0.5 ? 0 : 1;
  return t;
}

// Values at the clipping bounds and either side of them, as float32.
const CLIP_EDGES = [
  0,
  1e-8,
  Math.fround(1e-7),
  9.99999993922529e-8,
  0.5,
  0.99999988,
  0.99999994,
  1,
];

const CLASS_SHAPES = [[1, 2], [7, 3], [33, 65]];

gpuTest("SoftmaxCrossEntropy on the GPU equals the CPU", async (ctx, t) => {
  for (const shape of CLASS_SHAPES) {
    const classes = shape[1];
    await t.step(`${shape.join("×")} class indices`, async () => {
      const logits = randomTensor(shape, 11);
      for (let i = 0; i < logits.size; i++) logits.data[i] *= 4;
      await compareLoss(
        ctx,
        new SoftmaxCrossEntropy(),
        logits,
        indices([shape[0]], classes, 12),
        "",
      );
    });
    await t.step(`${shape.join("×")} one-hot and soft rows`, async () => {
      const logits = randomTensor(shape, 13);
      await compareLoss(ctx, new SoftmaxCrossEntropy(), logits, oneHot(shape, 14), "one-hot");
      await compareLoss(ctx, new SoftmaxCrossEntropy(), logits, probabilities(shape, 15), "soft");
    });
  }
  await t.step("sequences [3, 5, 7] with [3, 5] indices, flat indices, rows", async () => {
    const logits = randomTensor([3, 5, 7], 16);
    const y = indices([3, 5], 7, 17);
    await compareLoss(ctx, new SoftmaxCrossEntropy(), logits, y, "[3, 5]");
    // The CPU takes flat indices as an array, the device as a [15] tensor.
    const flat = y.reshape([15]);
    await compareLoss(ctx, new SoftmaxCrossEntropy(), logits, flat, "flat", Array.from(flat.data));
    await compareLoss(ctx, new SoftmaxCrossEntropy(), logits, oneHot([3, 5, 7], 18), "rows");
  });
  await t.step("ignoreIndex −100 and an in-range ignoreIndex 0, some and all", async () => {
    const logits = randomTensor([3, 5, 7], 19);
    const some = indices([3, 5], 7, 20, { value: -100, every: 3 });
    await compareLoss(ctx, new SoftmaxCrossEntropy({ ignoreIndex: -100 }), logits, some, "some");
    const padded = indices([3, 5], 7, 21, { value: 0, every: 2 });
    await compareLoss(ctx, new SoftmaxCrossEntropy({ ignoreIndex: 0 }), logits, padded, "pad 0");
    const all = indices([3, 5], 7, 22, { value: -100, every: 1 });
    await compareLoss(ctx, new SoftmaxCrossEntropy({ ignoreIndex: -100 }), logits, all, "all");
    const rank2 = indices([33], 65, 23, { value: 4, every: 5 });
    const wide = randomTensor([33, 65], 24);
    await compareLoss(ctx, new SoftmaxCrossEntropy({ ignoreIndex: 4 }), wide, rank2, "[33, 65]");
  });
  await t.step("517 positions: the reduction's strided sums and its whole tree", async () => {
    const logits = randomTensor([11, 47, 3], 25);
    const y = indices([11, 47], 3, 26, { value: -100, every: 7 });
    await compareLoss(ctx, new SoftmaxCrossEntropy({ ignoreIndex: -100 }), logits, y, "517");
    const p = probabilities([517, 3], 27);
    const loss = new CategoricalCrossEntropy({ ignoreIndex: -100 });
    await compareLoss(ctx, loss, p, y.reshape([517]), "517");
    await compareMetric(ctx, new CategoricalAccuracy({ ignoreIndex: -100 }), logits, y, "517");
  });
  await t.step("large logits: the row max subtracted, probabilities clipped", async () => {
    // exp(100 − x) overflows float32 unless x is the row's max; e^-140 and e^-400 round to
    // 0 on both sides (no float32 subnormals, which a GPU may flush).
    const logits = Tensor.from([[100, -40, 30], [0, 0, 0], [-30, 30, 30], [0, 200, -200]]);
    const y = Tensor.from([1, 2, 0, 1]);
    await compareLoss(ctx, new SoftmaxCrossEntropy(), logits, y, "");
  });
  summary("SoftmaxCrossEntropy");
});

gpuTest("CategoricalCrossEntropy on the GPU equals the CPU", async (ctx, t) => {
  for (const shape of CLASS_SHAPES) {
    await t.step(`${shape.join("×")} class indices and one-hot rows`, async () => {
      const p = probabilities(shape, 31);
      const loss = new CategoricalCrossEntropy();
      await compareLoss(ctx, loss, p, indices([shape[0]], shape[1], 32), "indices");
      await compareLoss(ctx, loss, p, oneHot(shape, 33), "one-hot");
      await compareLoss(ctx, loss, p, probabilities(shape, 34), "soft");
    });
  }
  await t.step("sequences [3, 5, 7]: indices, ignoreIndex (some, all), rows", async () => {
    const p = probabilities([3, 5, 7], 35);
    const y = indices([3, 5], 7, 36);
    await compareLoss(ctx, new CategoricalCrossEntropy(), p, y, "[3, 5]");
    const some = indices([3, 5], 7, 37, { value: -100, every: 4 });
    const ignoring = new CategoricalCrossEntropy({ ignoreIndex: -100 });
    await compareLoss(ctx, ignoring, p, some, "some ignored");
    const all = indices([3, 5], 7, 38, { value: -100, every: 1 });
    await compareLoss(ctx, ignoring, p, all, "all ignored");
    await compareLoss(ctx, ignoring, p, oneHot([3, 5, 7], 39), "rows");
  });
  await t.step("probabilities at and beyond the clipping bounds", async () => {
    const n = CLIP_EDGES.length;
    const p = Tensor.zeros([n, 2], { dtype: "float32" });
    CLIP_EDGES.forEach((edge, i) => {
      p.data[2 * i] = edge;
      p.data[2 * i + 1] = 1 - edge;
    });
    const loss = new CategoricalCrossEntropy();
    await compareLoss(ctx, loss, p, Tensor.zeros([n]), "indices");
    await compareLoss(ctx, loss, p, Tensor.from(CLIP_EDGES.map(() => [0.25, 0.75])), "soft");
  });
  summary("CategoricalCrossEntropy");
});

gpuTest("BinaryCrossEntropy on the GPU equals the CPU", async (ctx, t) => {
  for (const shape of [[1, 2], [7, 3], [33, 65], [4, 3, 5]]) {
    await t.step(`${shape.join("×")} several outputs`, async () => {
      const p = unit(shape, 41);
      const loss = new BinaryCrossEntropy();
      await compareLoss(ctx, loss, p, labels(shape, 42), "labels");
      await compareLoss(ctx, loss, p, unit(shape, 43), "soft");
    });
  }
  await t.step("one output: [7, 1] with [7] targets", async () => {
    await compareLoss(ctx, new BinaryCrossEntropy(), unit([7, 1], 44), labels([7], 45), "");
  });
  await t.step("probabilities at and beyond the clipping bounds", async () => {
    const p = Tensor.from([CLIP_EDGES, CLIP_EDGES]);
    const y = Tensor.from([CLIP_EDGES.map(() => 0), CLIP_EDGES.map(() => 1)]);
    await compareLoss(ctx, new BinaryCrossEntropy(), p, y, "");
  });
  summary("BinaryCrossEntropy");
});

gpuTest(
  "MeanSquaredError, MeanAbsoluteError and Huber on the GPU equal the CPU",
  async (ctx, t) => {
    const losses = () => [
      new MeanSquaredError(),
      new MeanAbsoluteError(),
      new Huber(),
      new Huber({ delta: 0.3 }),
    ];
    for (const shape of [[1, 2], [7, 3], [33, 65], [2, 3, 4, 5]]) {
      await t.step(`${shape.join("×")}`, async () => {
        const outputs = randomTensor(shape, 51);
        const targets = randomTensor(shape, 52);
        for (const loss of losses()) await compareLoss(ctx, loss, outputs, targets, "");
      });
    }
    await t.step("regression values [batch, 1] with [batch] targets", async () => {
      for (const batch of [1, 7, 33]) {
        const outputs = randomTensor([batch, 1], 53);
        const targets = randomTensor([batch], 54);
        for (const loss of losses()) await compareLoss(ctx, loss, outputs, targets, `[${batch}]`);
      }
    });
    await t.step("exact hits: MAE's gradient is 0 there", async () => {
      const outputs = Tensor.from([[1, 2], [3, 4]]);
      await compareLoss(ctx, new MeanAbsoluteError(), outputs, Tensor.from([[1, 0], [3, 5]]), "");
    });
    summary("MeanSquaredError", "MeanAbsoluteError", "Huber");
  },
);

gpuTest("CategoricalAccuracy on the GPU equals the CPU", async (ctx, t) => {
  for (const shape of CLASS_SHAPES) {
    await t.step(`${shape.join("×")} indices, one-hot rows, ties`, async () => {
      const outputs = randomTensor(shape, 61);
      const metric = new CategoricalAccuracy();
      await compareMetric(ctx, metric, outputs, indices([shape[0]], shape[1], 62), "indices");
      await compareMetric(ctx, metric, outputs, oneHot(shape, 63), "one-hot");
      // Coarse values tie often: the first maximum wins, in outputs and in target rows.
      const coarse = randomTensor(shape, 64);
      for (let i = 0; i < coarse.size; i++) coarse.data[i] = Math.round(coarse.data[i]);
      const truth = Tensor.zeros(shape, { dtype: "float32" });
      truth.data.set(coarse.data.map((x) => Math.abs(x)));
      await compareMetric(ctx, metric, coarse, truth, "tied rows");
      await compareMetric(ctx, metric, coarse, indices([shape[0]], shape[1], 65), "tied");
    });
  }
  await t.step("sequences [3, 5, 7], ignoreIndex some and all", async () => {
    const outputs = randomTensor([3, 5, 7], 66);
    await compareMetric(ctx, new CategoricalAccuracy(), outputs, indices([3, 5], 7, 67), "");
    // Targets equal to the argmax at half the positions, so the score is not near 1/7.
    const truth = indices([3, 5], 7, 68);
    const outputsData = outputs.data;
    for (let i = 0; i < 15; i += 2) {
      let best = 0;
      for (let j = 1; j < 7; j++) if (outputsData[i * 7 + j] > outputsData[i * 7 + best]) best = j;
      truth.data[i] = best;
    }
    await compareMetric(ctx, new CategoricalAccuracy(), outputs, truth, "half right");
    for (let i = 0; i < 15; i += 3) truth.data[i] = 0;
    const score = await compareMetric(
      ctx,
      new CategoricalAccuracy({ ignoreIndex: 0 }),
      outputs,
      truth,
      "ignoring 0",
    );
    assert.ok(score > 0 && score < 1);
    const all = indices([3, 5], 7, 69, { value: -1, every: 1 });
    const none = await compareMetric(
      ctx,
      new CategoricalAccuracy({ ignoreIndex: -1 }),
      outputs,
      all,
      "all ignored",
    );
    assert.equal(none, 0);
    await compareMetric(ctx, new CategoricalAccuracy(), outputs, oneHot([3, 5, 7], 70), "rows");
  });
  summary("CategoricalAccuracy");
});

gpuTest("BinaryAccuracy and RegressionAccuracy on the GPU equal the CPU", async (ctx, t) => {
  for (const shape of [[1, 2], [7, 3], [33, 65]]) {
    await t.step(`BinaryAccuracy ${shape.join("×")}`, async () => {
      const outputs = unit(shape, 71);
      const y = labels(shape, 72);
      await compareMetric(ctx, new BinaryAccuracy(), outputs, y, "");
      await compareMetric(ctx, new BinaryAccuracy({ threshold: 0.3 }), outputs, y, "0.3");
    });
    await t.step(`RegressionAccuracy ${shape.join("×")}`, async () => {
      const y = randomTensor(shape, 73);
      const noise = randomTensor(shape, 74);
      const outputs = Tensor.zeros(shape, { dtype: "float32" });
      for (let i = 0; i < y.size; i++) outputs.data[i] = y.data[i] + noise.data[i] * 0.01;
      const prepared = new RegressionAccuracy({ divisor: 50 });
      prepared.prepare(y);
      await compareMetric(ctx, prepared, outputs, y, "prepared");
      const given = new RegressionAccuracy({ tolerance: 0.005 });
      await compareMetric(ctx, given, outputs, y, "given");
    });
  }
  await t.step("one output per sample: [33, 1] with [33] targets", async () => {
    await compareMetric(ctx, new BinaryAccuracy(), unit([33, 1], 75), labels([33], 76), "");
    const y = randomTensor([33], 77);
    const outputs = Tensor.zeros([33, 1], { dtype: "float32" });
    for (let i = 0; i < 33; i++) outputs.data[i] = y.data[i] + (i % 3 - 1) * 0.004;
    await compareMetric(ctx, new RegressionAccuracy({ tolerance: 0.003 }), outputs, y, "");
  });
  await t.step("thresholds that float32 cannot hold decide as in float64", async () => {
    // 0.3 rounds up to 0.30000001 in float32; the CPU counts that output as above 0.3.
    const outputs = Tensor.from([[Math.fround(0.3)], [0.29999998], [0.5], [0.2]]);
    const y = Tensor.from([1, 0, 1, 0]);
    assert.equal(
      await compareMetric(ctx, new BinaryAccuracy({ threshold: 0.3 }), outputs, y, ""),
      1,
    );
    assert.equal(f32Below(0.3), 0.29999998211860657);
    assert.equal(f32Above(0.3), Math.fround(0.3));
    assert.equal(f32Below(0.5), 0.5);
    assert.equal(f32Above(1e-50), 1.401298464324817e-45);
    assert.equal(f32Below(1e39), 3.4028234663852886e38);
  });
  summary("BinaryAccuracy", "RegressionAccuracy");
});

const PREFILLED = [1, 2, 3, 4];

gpuTest("losses and metrics add into the sink: two calls add up", async (ctx, t) => {
  await t.step("two batches of a loss, one of a metric, in one results buffer", async () => {
    const sink = results(ctx, PREFILLED);
    const loss = new SoftmaxCrossEntropy({ ignoreIndex: -100 });
    const metric = new CategoricalAccuracy({ ignoreIndex: -100 });
    const first = randomTensor([7, 3], 81);
    const second = randomTensor([5, 3], 82);
    const y1 = indices([7], 3, 83, { value: -100, every: 3 });
    const y2 = indices([5], 3, 84);
    // Two steps (a call site's uniforms hold one dispatch's words per step).
    loss.gpuForward(ctx, toGpu(ctx, first), toGpu(ctx, y1), { results: sink, index: 2 });
    metric.gpuMeasure(ctx, toGpu(ctx, first), toGpu(ctx, y1), { results: sink, index: 0 });
    ctx.submit();
    loss.gpuForward(ctx, toGpu(ctx, second), toGpu(ctx, y2), { results: sink, index: 2 });
    metric.gpuMeasure(ctx, toGpu(ctx, second), toGpu(ctx, y2), { results: sink, index: 0 });
    const [r] = await fromGpu(ctx, sink);
    const expected = PREFILLED[2] + loss.forward(first, y1) + loss.forward(second, y2);
    assert.ok(Math.abs(r[2] - expected) <= 1e-5 * expected, `${r[2]} vs ${expected}`);
    const score = PREFILLED[0] + metric.measure(first, y1) + metric.measure(second, y2);
    assert.ok(Math.abs(r[0] - score) <= 1e-6 * score, `${r[0]} vs ${score}`);
    assert.equal(r[1], PREFILLED[1]);
    assert.equal(r[3], PREFILLED[3]);
  });
  await t.step("per-output losses and metrics add up too", async () => {
    const sink = results(ctx, PREFILLED);
    const outputs = randomTensor([9, 2], 85), y = randomTensor([9, 2], 86);
    const mse = new MeanSquaredError();
    const regression = new RegressionAccuracy({ tolerance: 0.5 });
    for (let call = 0; call < 2; call++) {
      mse.gpuForward(ctx, toGpu(ctx, outputs), toGpu(ctx, y), { results: sink, index: 1 });
      regression.gpuMeasure(ctx, toGpu(ctx, outputs), toGpu(ctx, y), { results: sink, index: 3 });
      ctx.submit();
    }
    const [r] = await fromGpu(ctx, sink);
    const value = PREFILLED[1] + 2 * mse.forward(outputs, y);
    assert.ok(Math.abs(r[1] - value) <= 1e-5 * value, `${r[1]} vs ${value}`);
    const score = PREFILLED[3] + 2 * regression.measure(outputs, y);
    assert.ok(Math.abs(r[3] - score) <= 1e-6 * score, `${r[3]} vs ${score}`);
    assert.deepEqual([r[0], r[2]], [PREFILLED[0], PREFILLED[2]]);
  });
});

gpuTest(
  "the GPU sides reject targets that cannot fit, and backward before forward",
  async (ctx, t) => {
    const sink = { results: results(ctx), index: 0 };
    await t.step("class losses and CategoricalAccuracy name both shapes", () => {
      const outputs = toGpu(ctx, randomTensor([7, 3], 91));
      for (const plugin of [new SoftmaxCrossEntropy(), new CategoricalCrossEntropy()]) {
        assert.throws(
          () => plugin.gpuForward(ctx, outputs, toGpu(ctx, randomTensor([6], 92)), sink),
          new RegExp(
            `^TypeError: ${plugin.kind}\\.gpuForward: targets have shape \\[6\\], ` +
              "expected class indices \\[7\\] or one-hot rows \\[7, 3\\] \\(outputs shape \\[7, 3\\]\\)",
          ),
        );
        assert.throws(
          () => plugin.gpuForward(ctx, outputs, toGpu(ctx, randomTensor([7, 4], 93)), sink),
          /gpuForward: targets have shape \[7, 4\].*\(outputs shape \[7, 3\]\)/,
        );
      }
      assert.throws(
        () =>
          new CategoricalAccuracy().gpuMeasure(
            ctx,
            outputs,
            toGpu(ctx, randomTensor([3, 7], 94)),
            sink,
          ),
        /TypeError: CategoricalAccuracy\.gpuMeasure: targets have shape \[3, 7\]/,
      );
      const sequence = toGpu(ctx, randomTensor([3, 5, 7], 95));
      assert.throws(
        () =>
          new SoftmaxCrossEntropy().gpuForward(
            ctx,
            sequence,
            toGpu(ctx, randomTensor([5, 3], 96)),
            sink,
          ),
        /targets have shape \[5, 3\], expected class indices \[3, 5\] or one-hot rows \[3, 5, 7\]/,
      );
      const ints = ctx.upload(new Int32Array(7), [7], "int32");
      assert.throws(
        () => new SoftmaxCrossEntropy().gpuForward(ctx, outputs, ints, sink),
        /TypeError: SoftmaxCrossEntropy\.gpuForward: targets must be float32 .*got int32 of shape \[7\]/,
      );
    });
    await t.step("per-output losses and metrics name both shapes", () => {
      const outputs = toGpu(ctx, randomTensor([7, 3], 97));
      const wrong = toGpu(ctx, randomTensor([7], 98));
      for (
        const plugin of [
          new BinaryCrossEntropy(),
          new MeanSquaredError(),
          new MeanAbsoluteError(),
          new Huber(),
        ]
      ) {
        assert.throws(
          () => plugin.gpuForward(ctx, outputs, wrong, sink),
          new RegExp(
            `^TypeError: ${plugin.kind}\\.gpuForward: targets have shape \\[7\\], ` +
              "expected \\[7, 3\\] like the outputs \\(outputs shape \\[7, 3\\]\\)",
          ),
        );
      }
      const single = toGpu(ctx, randomTensor([7, 1], 99));
      assert.throws(
        () =>
          new MeanSquaredError().gpuForward(ctx, single, toGpu(ctx, randomTensor([6], 100)), sink),
        /targets have shape \[6\], expected \[7, 1\] like the outputs or \[7\]/,
      );
      for (const metric of [new BinaryAccuracy(), new RegressionAccuracy({ tolerance: 1 })]) {
        const name = String(metric).replace(/\(.*/, "");
        assert.throws(
          () => metric.gpuMeasure(ctx, outputs, wrong, sink),
          new RegExp(`^TypeError: ${name}\\.gpuMeasure: targets have shape \\[7\\]`),
        );
      }
      assert.throws(
        () =>
          new RegressionAccuracy().gpuMeasure(
            ctx,
            single,
            toGpu(ctx, randomTensor([7], 101)),
            sink,
          ),
        /RegressionAccuracy\.gpuMeasure: no tolerance yet/,
      );
    });
    await t.step("gpuBackward before gpuForward", () => {
      const losses = [
        new SoftmaxCrossEntropy(),
        new CategoricalCrossEntropy(),
        new BinaryCrossEntropy(),
        new MeanSquaredError(),
        new MeanAbsoluteError(),
        new Huber(),
      ];
      for (const loss of losses) {
        assert.throws(
          () => loss.gpuBackward(ctx),
          new RegExp(`^Error: ${loss.kind}\\.gpuBackward: call gpuForward first`),
        );
      }
    });
  },
);
