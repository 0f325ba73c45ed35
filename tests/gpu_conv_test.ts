// The GPU sides of Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D and BatchNorm against their
// CPU passes in float32, on odd shapes (sizes that no workgroup tile divides). Set
// GPU_ERRORS=1 to print the measured errors of every case.
import assert from "node:assert/strict";
import { AvgPool2D } from "../layers/avg_pool2d.ts";
import { BatchNorm } from "../layers/batch_norm.ts";
import { Conv2D, type Conv2DOptions } from "../layers/conv2d.ts";
import { GlobalAvgPool2D } from "../layers/global_avg_pool2d.ts";
import { MaxPool2D } from "../layers/max_pool2d.ts";
import {
  gpuConvForward,
  gpuConvForwardNaive,
  gpuConvInputGradient,
  gpuConvInputGradientNaive,
  gpuConvWeightGradient,
  gpuConvWeightGradientNaive,
} from "../layers/_gpu_conv.ts";
import type { ConvGeometry } from "../core/backend.ts";
import type { Layer } from "../core/layer.ts";
import type { GpuLayer } from "../core/gpu.ts";
import { Tensor } from "../core/tensor.ts";
import {
  assertClose,
  compareLayer,
  fromGpu,
  gpuTest,
  type LayerErrors,
  randomTensor,
  relativeError,
  toGpu,
} from "./_gpu.ts";

const PRINT =
  Deno.permissions.querySync({ name: "env", variable: "GPU_ERRORS" }).state === "granted" &&
  Deno.env.get("GPU_ERRORS") !== undefined;

function report(what: string, errors: LayerErrors): void {
  if (!PRINT) return;
  const text = Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(", ");
  console.log(`  ${what}: ${text}`);
}

// The CPU layer's output shape for `inputs` (an inference forward changes nothing).
function outputShape(layer: Layer, inputs: Tensor): number[] {
  return [...layer.forward(inputs).shape];
}

async function compare(
  ctx: Parameters<typeof compareLayer>[0],
  what: string,
  layer: Layer & GpuLayer,
  inputs: Tensor,
  seed: number,
  options: { training?: boolean; tolerance?: number } = {},
): Promise<LayerErrors> {
  const dvalues = randomTensor(outputShape(layer, inputs), seed);
  const errors = await compareLayer(ctx, layer, inputs, dvalues, options);
  report(what, errors);
  assertClose(errors, options.tolerance ?? 1e-4, `${what}: `);
  return errors;
}

// [batch, in, out, H, W, kernel, options]
type ConvCase = [number, number, number, number, number, number | [number, number], Conv2DOptions];
const CONV_CASES: ConvCase[] = [
  [1, 1, 1, 7, 7, 1, {}],
  [3, 3, 5, 7, 7, 3, { padding: 1 }],
  [3, 5, 3, 9, 6, 3, { stride: 2 }],
  [1, 3, 5, 9, 6, 5, { padding: 2 }],
  [3, 5, 5, 9, 6, 5, { stride: 2, padding: 2, dilation: 2 }],
  [3, 3, 1, 7, 7, 3, { stride: 2, padding: 1, dilation: 2, bias: false }],
  [1, 5, 3, 9, 6, [3, 2], { stride: [2, 1], padding: [1, 0], dilation: [1, 2] }],
  [3, 3, 5, 7, 7, 4, { padding: "same" }], // even kernel: one more row and column after
  [3, 5, 20, 9, 6, 3, { padding: 1 }], // 17–32 channels out: the 32-row tiles
  [3, 5, 40, 9, 6, 3, { padding: 1, stride: 2 }], // more than 32: the 64-row tiles
  [3, 3, 5, 12, 11, 3, { padding: 1 }], // N·P = 396: dweights sums in 2 splits
  [3, 40, 3, 7, 7, 3, { padding: 1 }], // 40 channels in: dinputs takes the 64-row tiles
];

function caseName([n, c, o, h, w, k, options]: ConvCase): string {
  const kernel = typeof k === "number" ? `${k}×${k}` : `${k[0]}×${k[1]}`;
  return `Conv2D ${n}×${c}×${h}×${w} → ${o}, kernel ${kernel} ${JSON.stringify(options)}`;
}

function convLayer([_n, c, o, _h, _w, k, options]: ConvCase, seed: number): Conv2D {
  const conv = new Conv2D(c, o, k, { seed, ...options });
  if (conv.biases) conv.biases.value.data.set(randomTensor([o], seed + 1).data);
  return conv;
}

function geometryOf(conv: Conv2D, inputs: Tensor, outputs: readonly number[]): ConvGeometry {
  const [batch, channels, height, width] = inputs.shape;
  const [kernelH, kernelW] = conv.kernelSize, [strideH, strideW] = conv.stride;
  const [dilationH, dilationW] = conv.dilation;
  let pads: number[];
  if (conv.padding === "same") {
    const th = dilationH * (kernelH - 1), tw = dilationW * (kernelW - 1);
    pads = [th >> 1, th - (th >> 1), tw >> 1, tw - (tw >> 1)];
  } else pads = [conv.padding[0], conv.padding[0], conv.padding[1], conv.padding[1]];
  return {
    batch,
    channels,
    height,
    width,
    outChannels: conv.outChannels,
    outH: outputs[2],
    outW: outputs[3],
    kernelH,
    kernelW,
    strideH,
    strideW,
    dilationH,
    dilationW,
    padTop: pads[0],
    padBottom: pads[1],
    padLeft: pads[2],
    padRight: pads[3],
  };
}

gpuTest("Conv2D on the GPU equals the CPU, forward and backward", async (ctx, t) => {
  for (const [index, c] of CONV_CASES.entries()) {
    await t.step(caseName(c), async () => {
      const inputs = randomTensor([c[0], c[1], c[3], c[4]], 10 + index);
      await compare(ctx, caseName(c), convLayer(c, index + 1), inputs, 50 + index);
    });
  }
  await t.step("inference forward", async () => {
    const c = CONV_CASES[1];
    const inputs = randomTensor([c[0], c[1], c[3], c[4]], 3);
    await compare(ctx, "Conv2D inference", convLayer(c, 9), inputs, 4, { training: false });
  });
  await t.step("with L1/L2 penalties", async () => {
    const c: ConvCase = [3, 3, 5, 7, 7, 3, {
      padding: 1,
      weightRegularizerL1: 0.01,
      weightRegularizerL2: 0.1,
      biasRegularizerL2: 0.05,
    }];
    const inputs = randomTensor([3, 3, 7, 7], 5);
    const conv = convLayer(c, 11);
    await compare(ctx, "Conv2D with penalties", conv, inputs, 6);
    const results = ctx.buffer({}, "results", [2]);
    conv.gpuRegularization(ctx, { results, index: 1 });
    const [sums] = await fromGpu(ctx, results);
    const expected = conv.regularizationLoss();
    assert.equal(sums[0], 0);
    assert.ok(Math.abs(sums[1] - expected) <= 1e-5 * expected, `${sums[1]} vs ${expected}`);
  });
  await t.step("without an input gradient, the weights' still come", async () => {
    const conv = convLayer(CONV_CASES[2], 12);
    const inputs = randomTensor([3, 5, 9, 6], 7);
    const dvalues = randomTensor(outputShape(conv, inputs), 8);
    conv.gpuForward(ctx, toGpu(ctx, inputs));
    conv.gpuBackward(ctx, toGpu(ctx, dvalues), { inputGradient: false });
    const [dweights] = await fromGpu(ctx, ctx.param(conv.weights).grad);
    conv.forward(inputs);
    conv.backward(dvalues);
    assert.ok(relativeError(dweights, conv.weights.grad.data) < 1e-4);
  });
});

gpuTest("Conv2D's implicit products equal the naive direct convolution", async (ctx, t) => {
  for (const [index, c] of CONV_CASES.entries()) {
    await t.step(caseName(c), async () => {
      const conv = convLayer(c, index + 1);
      const inputs = randomTensor([c[0], c[1], c[3], c[4]], 20 + index);
      const cpuOut = conv.forward(inputs, { training: true });
      const dvalues = randomTensor([...cpuOut.shape], 60 + index);
      const cpuDx = conv.backward(dvalues);
      const g = geometryOf(conv, inputs, cpuOut.shape);
      const x = toGpu(ctx, inputs), dv = toGpu(ctx, dvalues);
      const w = toGpu(ctx, conv.weights.value);
      const b = conv.biases ? toGpu(ctx, conv.biases.value) : undefined;
      const owner = {};
      const naive = {
        out: ctx.buffer(owner, "out naive", cpuOut.shape),
        dw: ctx.buffer(owner, "dw naive", conv.weights.value.shape),
        dx: ctx.buffer(owner, "dx naive", inputs.shape),
      };
      // The tiled products with one column workgroup: every workgroup loops over the tiles.
      const looped = {
        out: ctx.buffer(owner, "out looped", cpuOut.shape),
        dw: ctx.buffer(owner, "dw looped", conv.weights.value.shape),
        dx: ctx.buffer(owner, "dx looped", inputs.shape),
      };
      gpuConvForwardNaive(ctx, owner, "f naive", g, x, w, b, naive.out);
      gpuConvWeightGradientNaive(ctx, owner, "w naive", g, x, dv, naive.dw);
      gpuConvInputGradientNaive(ctx, owner, "x naive", g, dv, w, naive.dx);
      const one = { maxGroupsX: 1 };
      gpuConvForward(ctx, owner, "f looped", g, x, w, b, looped.out, one);
      gpuConvWeightGradient(ctx, owner, "w looped", g, x, dv, looped.dw, one);
      gpuConvInputGradient(ctx, owner, "x looped", g, dv, w, looped.dx, one);
      const [out, dw, dx, lOut, lDw, lDx] = await fromGpu(
        ctx,
        naive.out,
        naive.dw,
        naive.dx,
        looped.out,
        looped.dw,
        looped.dx,
      );
      const errors = {
        "naive outputs": relativeError(out, cpuOut.data),
        "naive dweights": relativeError(dw, conv.weights.grad.data),
        "naive dinputs": relativeError(dx, cpuDx.data),
        "looped outputs": relativeError(lOut, cpuOut.data),
        "looped dweights": relativeError(lDw, conv.weights.grad.data),
        "looped dinputs": relativeError(lDx, cpuDx.data),
      };
      report(`naive/looped ${caseName(c)}`, errors);
      assertClose(errors);
    });
  }
});

gpuTest("Conv2D.gpuForward checks its inputs", (ctx) => {
  const conv = new Conv2D(3, 2, 3);
  assert.throws(
    () => conv.gpuForward(ctx, toGpu(ctx, randomTensor([2, 4, 5, 5], 1))),
    /Conv2D.gpuForward: inputs have 4 channels, expected 3/,
  );
  assert.throws(
    () => conv.gpuForward(ctx, toGpu(ctx, randomTensor([2, 3, 2, 5], 1))),
    /Conv2D.gpuForward: the kernel 3×3 does not fit/,
  );
  assert.throws(
    () => conv.gpuForward(ctx, toGpu(ctx, randomTensor([2, 3, 25], 1))),
    /Conv2D.gpuForward: inputs must be 4-D/,
  );
  assert.throws(() => conv.gpuBackward(ctx, toGpu(ctx, randomTensor([1], 1))), /call gpuForward/);
});

// [batch, channels, H, W, kernel, options]
type PoolCase = [
  number,
  number,
  number,
  number,
  number | [number, number],
  { stride?: number | [number, number]; padding?: number | [number, number] },
];
const POOL_CASES: PoolCase[] = [
  [1, 1, 7, 7, 2, {}], // 7 = 2·3 + 1: the last row and column are left out
  [3, 3, 9, 6, 3, { stride: 2, padding: 1 }],
  [3, 5, 7, 7, 3, { stride: 1 }], // overlapping windows add up their gradients
  [1, 5, 9, 6, [3, 2], { stride: [2, 1], padding: [1, 1] }],
  [3, 3, 9, 6, 5, { stride: 2, padding: 2 }],
  [3, 1, 7, 7, 1, {}],
];

function poolName(kind: string, [n, c, h, w, k, options]: PoolCase): string {
  const kernel = typeof k === "number" ? `${k}×${k}` : `${k[0]}×${k[1]}`;
  return `${kind} ${n}×${c}×${h}×${w}, kernel ${kernel} ${JSON.stringify(options)}`;
}

// Values from a few levels only, so that windows hold ties (and −0 next to +0).
function tiedTensor(shape: number[], seed: number): Tensor {
  const t = randomTensor(shape, seed);
  for (let i = 0; i < t.size; i++) {
    const level = Math.round(t.data[i] * 1.5);
    t.data[i] = level === 0 ? (i % 2 ? -0 : 0) : level;
  }
  return t;
}

gpuTest("MaxPool2D, AvgPool2D and GlobalAvgPool2D on the GPU equal the CPU", async (ctx, t) => {
  for (const [index, c] of POOL_CASES.entries()) {
    const [n, ch, h, w, k, options] = c;
    await t.step(poolName("MaxPool2D", c), async () => {
      const inputs = randomTensor([n, ch, h, w], 30 + index);
      await compare(ctx, poolName("MaxPool2D", c), new MaxPool2D(k, options), inputs, 70 + index);
    });
    await t.step(poolName("MaxPool2D (ties)", c), async () => {
      const inputs = tiedTensor([n, ch, h, w], 30 + index);
      const what = poolName("MaxPool2D (ties)", c);
      const errors = await compare(ctx, what, new MaxPool2D(k, options), inputs, 70 + index);
      // The same winners, so the same gradients to the bit (added in the same order).
      assert.equal(errors.dinputs, 0, `${what}: ties went to other inputs`);
    });
    await t.step(poolName("AvgPool2D", c), async () => {
      const inputs = randomTensor([n, ch, h, w], 40 + index);
      await compare(ctx, poolName("AvgPool2D", c), new AvgPool2D(k, options), inputs, 80 + index);
    });
  }
  for (const shape of [[1, 1, 7, 7], [3, 5, 9, 6], [3, 3, 1, 1]]) {
    await t.step(`GlobalAvgPool2D ${shape.join("×")}`, async () => {
      const what = `GlobalAvgPool2D ${shape.join("×")}`;
      await compare(ctx, what, new GlobalAvgPool2D(), randomTensor(shape, 5), 6);
    });
  }
  await t.step("inference forwards", async () => {
    const inputs = randomTensor([3, 3, 9, 6], 7);
    for (const layer of [new MaxPool2D(3, { stride: 2, padding: 1 }), new AvgPool2D(2)]) {
      await compare(ctx, `${layer} inference`, layer, inputs, 8, { training: false });
    }
  });
});

gpuTest("MaxPool2D on the GPU: NaN wins, −0 ties +0, infinities order", async (ctx) => {
  // One plane, 2×4, two 2×2 windows: [NaN, 1; 5, −∞] and [−0, +0; −∞, −0].
  const inputs = Tensor.from([[[[NaN, 1, -0, 0], [5, -Infinity, -Infinity, -0]]]], {
    dtype: "float32",
  });
  const dvalues = Tensor.from([[[[10, 20]]]], { dtype: "float32" });
  const pool = new MaxPool2D(2);
  const out = pool.gpuForward(ctx, toGpu(ctx, inputs));
  const dx = pool.gpuBackward(ctx, toGpu(ctx, dvalues));
  const [gpuOut, gpuDx] = await fromGpu(ctx, out, dx);
  const cpuOut = pool.forward(inputs).data, cpuDx = pool.backward(dvalues).data;
  assert.ok(Number.isNaN(gpuOut[0]) && Number.isNaN(cpuOut[0]));
  assert.ok(Object.is(gpuOut[1], cpuOut[1]) && Object.is(gpuOut[1], -0)); // the first zero
  assert.deepEqual([...gpuDx], [...cpuDx]);
  assert.deepEqual([...gpuDx], [10, 0, 20, 0, 0, 0, 0, 0]);
});

gpuTest("the pooling layers' GPU sides check their inputs", (ctx) => {
  const x = toGpu(ctx, randomTensor([2, 3, 5], 1));
  assert.throws(() => new MaxPool2D(2).gpuForward(ctx, x), /MaxPool2D.gpuForward: .*4-D/);
  assert.throws(() => new AvgPool2D(2).gpuForward(ctx, x), /AvgPool2D.gpuForward: .*4-D/);
  assert.throws(() => new GlobalAvgPool2D().gpuForward(ctx, x), /GlobalAvgPool2D.gpuForward/);
  const pool = new MaxPool2D(2);
  pool.gpuForward(ctx, toGpu(ctx, randomTensor([1, 1, 4, 4], 1)));
  assert.throws(
    () => pool.gpuBackward(ctx, toGpu(ctx, randomTensor([1, 1, 3, 3], 1))),
    /MaxPool2D.gpuBackward: dvalues is float32 \[1, 1, 3, 3\], expected float32 \[1, 1, 2, 2\]/,
  );
  assert.throws(() => new AvgPool2D(2).gpuBackward(ctx, x), /call gpuForward first/);
});

const BATCH_NORM_SHAPES = [[3, 5], [7, 3], [1, 3, 7, 7], [3, 5, 9, 6], [3, 1, 7, 7], [5, 2, 9, 7]];

function batchNorm(features: number, seed: number): BatchNorm {
  return new BatchNorm(features, {
    momentum: 0.3,
    gamma: randomTensor([features], seed).data,
    beta: randomTensor([features], seed + 1).data,
  });
}

gpuTest("BatchNorm on the GPU equals the CPU, statistics included", async (ctx, t) => {
  for (const [index, shape] of BATCH_NORM_SHAPES.entries()) {
    await t.step(`BatchNorm ${shape.join("×")} training`, async () => {
      const features = shape[1];
      const norm = batchNorm(features, index);
      const inputs = randomTensor(shape, 90 + index);
      for (let i = 0; i < inputs.size; i++) inputs.data[i] = 3 * inputs.data[i] + 1;
      const what = `BatchNorm ${shape.join("×")}`;
      await compare(ctx, what, norm, inputs, 100 + index);
      // Two training forwards: the running statistics moved twice on both sides.
      norm.gpuForward(ctx, toGpu(ctx, inputs), { training: true });
      norm.forward(inputs, { training: true });
      const [mean, variance] = await fromGpu(
        ctx,
        ctx.mirror(norm.runningMean.data, [features]),
        ctx.mirror(norm.runningVar.data, [features]),
      );
      const statistics = {
        runningMean: relativeError(mean, norm.runningMean.data),
        runningVar: relativeError(variance, norm.runningVar.data),
      };
      report(`${what} running statistics`, statistics);
      assertClose(statistics, 1e-5, `${what}: `);
      assert.equal(norm.numBatchesTracked.data[0], 4); // two on each side
    });
  }
  await t.step("inference: the running statistics normalize, forward and backward", async () => {
    const norm = batchNorm(5, 3);
    norm.runningMean.data.set(randomTensor([5], 4).data);
    norm.runningVar.data.set(randomTensor([5], 5).data.map((v) => v + 1.5));
    const inputs = randomTensor([3, 5, 9, 6], 6);
    const dvalues = randomTensor([3, 5, 9, 6], 7);
    const out = norm.gpuForward(ctx, toGpu(ctx, inputs), { training: false });
    const dx = norm.gpuBackward(ctx, toGpu(ctx, dvalues));
    const [gpuOut, gpuDx, dgamma, dbeta] = await fromGpu(
      ctx,
      out,
      dx,
      ctx.param(norm.gamma).grad,
      ctx.param(norm.beta).grad,
    );
    const cpuOut = norm.forward(inputs);
    const cpuDx = norm.backward(dvalues);
    const errors = {
      outputs: relativeError(gpuOut, cpuOut.data),
      dinputs: relativeError(gpuDx, cpuDx.data),
      gamma: relativeError(dgamma, norm.gamma.grad.data),
      beta: relativeError(dbeta, norm.beta.grad.data),
    };
    report("BatchNorm 3×5×9×6 inference", errors);
    assertClose(errors);
  });
  await t.step("a stop in ctx.status leaves the running statistics as they were", async () => {
    const norm = batchNorm(3, 8);
    const inputs = randomTensor([3, 3, 7, 7], 9);
    const mean = ctx.mirror(norm.runningMean.data, [3]);
    const variance = ctx.mirror(norm.runningVar.data, [3]);
    ctx.write(ctx.status, new Uint32Array([1, 0]));
    const out = norm.gpuForward(ctx, toGpu(ctx, inputs), { training: true });
    const [stoppedOut, stoppedMean, stoppedVar] = await fromGpu(ctx, out, mean, variance);
    assert.deepEqual([...stoppedMean], [0, 0, 0]);
    assert.deepEqual([...stoppedVar], [1, 1, 1]);
    // The outputs are still the batch's normalization.
    const cpuOut = norm.forward(inputs, { training: true });
    assert.ok(relativeError(stoppedOut, cpuOut.data) < 1e-5);
    ctx.write(ctx.status, new Uint32Array([0, 0]));
    norm.gpuForward(ctx, toGpu(ctx, inputs), { training: true });
    const [movedMean, movedVar] = await fromGpu(ctx, mean, variance);
    assert.ok(relativeError(movedMean, norm.runningMean.data) < 1e-5);
    assert.ok(relativeError(movedVar, norm.runningVar.data) < 1e-5);
  });
  await t.step("syncBack brings the running statistics home", async () => {
    const norm = batchNorm(3, 10);
    const inputs = randomTensor([4, 3, 5, 5], 11);
    norm.gpuForward(ctx, toGpu(ctx, inputs), { training: true });
    const cpu = batchNorm(3, 10);
    cpu.forward(inputs, { training: true });
    await ctx.syncBack("test");
    assert.ok(relativeError(norm.runningMean.data, cpu.runningMean.data) < 1e-5);
    assert.ok(relativeError(norm.runningVar.data, cpu.runningVar.data) < 1e-5);
    assert.notDeepEqual([...norm.runningVar.data], [1, 1, 1]);
  });
  await t.step("without an input gradient, gamma's and beta's still come", async () => {
    const norm = batchNorm(5, 12);
    const inputs = randomTensor([3, 5, 4, 3], 13), dvalues = randomTensor([3, 5, 4, 3], 14);
    norm.gpuForward(ctx, toGpu(ctx, inputs), { training: true });
    norm.gpuBackward(ctx, toGpu(ctx, dvalues), { inputGradient: false });
    const [dgamma, dbeta] = await fromGpu(
      ctx,
      ctx.param(norm.gamma).grad,
      ctx.param(norm.beta).grad,
    );
    norm.forward(inputs, { training: true });
    norm.backward(dvalues);
    assert.ok(relativeError(dgamma, norm.gamma.grad.data) < 1e-4);
    assert.ok(relativeError(dbeta, norm.beta.grad.data) < 1e-4);
  });
});

gpuTest("BatchNorm.gpuForward checks its inputs", (ctx) => {
  const norm = new BatchNorm(3);
  assert.throws(
    () => norm.gpuForward(ctx, toGpu(ctx, randomTensor([4, 2], 1))),
    /BatchNorm.gpuForward: inputs must be float32 \[batch, 3, …\], got float32 \[4, 2\]/,
  );
  assert.throws(
    () => norm.gpuForward(ctx, toGpu(ctx, randomTensor([1, 3], 1)), { training: true }),
    RangeError,
  );
  assert.throws(() => norm.gpuBackward(ctx, toGpu(ctx, randomTensor([1, 3], 1))), /gpuForward/);
  const float64 = new BatchNorm(3, { dtype: "float64" });
  assert.throws(() => float64.gpuForward(ctx, toGpu(ctx, randomTensor([4, 3], 1))), /float64/);
});
