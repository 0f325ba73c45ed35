import assert from "node:assert/strict";
import type { WebGpuContext } from "../backends/webgpu.ts";
import type { GpuOptimizer } from "../core/gpu.ts";
import type { Optimizer, OptimizerState } from "../core/optimizer.ts";
import { Param } from "../core/param.ts";
import { AdaGrad } from "../optimizers/adagrad.ts";
import { Adam } from "../optimizers/adam.ts";
import { AdamW } from "../optimizers/adamw.ts";
import { RMSprop } from "../optimizers/rmsprop.ts";
import { SGD } from "../optimizers/sgd.ts";
import { CosineDecay } from "../schedules/cosine_decay.ts";
import { StepDecay } from "../schedules/step_decay.ts";
import { gpuTest, randomTensor, relativeError } from "./_gpu.ts";

type GpuOpt = Optimizer & GpuOptimizer & {
  iterations: number;
  getState(params: readonly Param[]): OptimizerState;
};

const SHAPES = [[1], [7], [65, 3]];
const TOLERANCE = 1e-5;

function makeParams(shapes: number[][], seed: number): Param[] {
  return shapes.map((shape, j) => new Param(`p${j}`, randomTensor(shape, seed + j)));
}

// Gradients in [−3, 3): a clipValue of 2 clamps about a third of them, and the global norm
// of the 203 elements (about 25) is well above a globalClipNorm of 5.
function gradients(shapes: number[][], step: number): Float32Array[] {
  return shapes.map((shape, j) => {
    const g = randomTensor(shape, 1000 + 31 * step + j).data as Float32Array;
    return g.map((x) => 3 * x);
  });
}

async function readStatus(ctx: WebGpuContext): Promise<number[]> {
  const [words] = await ctx.read([ctx.status], "test");
  return Array.from(new Uint32Array(words));
}

interface Errors {
  params: number;
  grads: number;
  slots: number;
}

// Runs `steps` updates on the GPU and on the CPU, from equal params, with equal gradients
// (after `cpuFirst` CPU updates of both, so that the GPU continues a CPU state), and returns
// the relative errors of the params, the last (clipped) gradients and the slots.
async function compare(
  ctx: WebGpuContext,
  make: () => GpuOpt,
  shapes: number[][] = SHAPES,
  steps = 5,
  cpuFirst = 0,
): Promise<Errors> {
  const gpu = make(), cpu = make();
  const gpuParams = makeParams(shapes, 1), cpuParams = makeParams(shapes, 1);
  for (let s = 0; s < cpuFirst; s++) {
    const grads = gradients(shapes, 100 + s);
    gpuParams.forEach((p, j) => p.grad.data.set(grads[j]));
    cpuParams.forEach((p, j) => p.grad.data.set(grads[j]));
    gpu.step(gpuParams);
    cpu.step(cpuParams);
  }
  ctx.write(ctx.status, new Uint32Array([0, 0]));
  for (let s = 0; s < steps; s++) {
    ctx.step = s;
    const grads = gradients(shapes, s);
    gpuParams.forEach((p, j) => ctx.write(ctx.param(p).grad, grads[j]));
    cpuParams.forEach((p, j) => p.grad.data.set(grads[j]));
    gpu.gpuStep(ctx, gpuParams);
    ctx.submit();
    cpu.step(cpuParams);
  }
  await ctx.syncBack("test");
  assert.deepEqual(await readStatus(ctx), [0, 0], "no stop was raised");
  assert.equal(gpu.iterations, cpu.iterations);
  const errors: Errors = { params: 0, grads: 0, slots: 0 };
  gpuParams.forEach((p, j) => {
    errors.params = Math.max(errors.params, relativeError(p.value.data, cpuParams[j].value.data));
    errors.grads = Math.max(errors.grads, relativeError(p.grad.data, cpuParams[j].grad.data));
  });
  const gpuState = gpu.getState(gpuParams), cpuState = cpu.getState(cpuParams);
  assert.deepEqual(gpuState.scalars, cpuState.scalars);
  assert.deepEqual(Object.keys(gpuState.slots), Object.keys(cpuState.slots));
  for (const [name, tensors] of Object.entries(gpuState.slots)) {
    tensors.forEach((t, j) => {
      const error = relativeError(t.data, cpuState.slots[name][j].data);
      errors.slots = Math.max(errors.slots, error);
    });
  }
  return errors;
}

function assertErrors(errors: Errors, what: string): void {
  for (const [name, error] of Object.entries(errors)) {
    assert.ok(
      error <= TOLERANCE,
      `${what}: ${name}: GPU vs CPU relative error ${error.toExponential(2)} > ${TOLERANCE}`,
    );
  }
}

const CASES: Record<string, Record<string, () => GpuOpt>> = {
  SGD: {
    "plain": () => new SGD({ learningRate: 0.1 }),
    "momentum": () => new SGD({ learningRate: 0.1, momentum: 0.9 }),
    "nesterov": () => new SGD({ learningRate: 0.1, momentum: 0.9, nesterov: true }),
    "decay": () => new SGD({ learningRate: 0.1, momentum: 0.5, decay: 0.1 }),
    "StepDecay, clipValue": () =>
      new SGD({
        learningRate: 0.1,
        schedule: new StepDecay({ stepSize: 2, gamma: 0.5 }),
        clipValue: 2,
      }),
    "momentum, globalClipNorm": () =>
      new SGD({ learningRate: 0.1, momentum: 0.9, globalClipNorm: 5 }),
    "nesterov, both clips": () =>
      new SGD({
        learningRate: 0.1,
        momentum: 0.9,
        nesterov: true,
        clipValue: 2,
        globalClipNorm: 5,
      }),
  },
  Adam: {
    "defaults, lr 0.01": () => new Adam({ learningRate: 0.01 }),
    "decay": () => new Adam({ learningRate: 0.01, decay: 0.1, beta1: 0.8, beta2: 0.99 }),
    "CosineDecay with warmup": () =>
      new Adam({ learningRate: 0.01, schedule: new CosineDecay({ steps: 4, warmupSteps: 1 }) }),
    "clipValue": () => new Adam({ learningRate: 0.01, clipValue: 2 }),
    "globalClipNorm": () => new Adam({ learningRate: 0.01, globalClipNorm: 5 }),
    "both clips": () => new Adam({ learningRate: 0.01, clipValue: 2, globalClipNorm: 5 }),
  },
  AdamW: {
    "weightDecay 0.1": () => new AdamW({ learningRate: 0.01, weightDecay: 0.1 }),
    "StepDecay, weightDecay 0.5, both clips": () =>
      new AdamW({
        learningRate: 0.05,
        weightDecay: 0.5,
        schedule: new StepDecay({ stepSize: 2, gamma: 0.5 }),
        clipValue: 2,
        globalClipNorm: 5,
      }),
  },
  RMSprop: {
    "lr 0.01": () => new RMSprop({ learningRate: 0.01 }),
    "rho 0.5, decay": () => new RMSprop({ learningRate: 0.01, rho: 0.5, decay: 0.1 }),
    "CosineDecay, globalClipNorm": () =>
      new RMSprop({
        learningRate: 0.01,
        schedule: new CosineDecay({ steps: 3 }),
        globalClipNorm: 5,
      }),
    "clipValue": () => new RMSprop({ learningRate: 0.01, clipValue: 2 }),
    "both clips": () => new RMSprop({ learningRate: 0.01, clipValue: 2, globalClipNorm: 5 }),
  },
  AdaGrad: {
    "lr 0.5": () => new AdaGrad({ learningRate: 0.5 }),
    "decay": () => new AdaGrad({ learningRate: 0.5, decay: 0.2 }),
    "StepDecay, clipValue": () =>
      new AdaGrad({ learningRate: 0.5, schedule: new StepDecay({ stepSize: 2 }), clipValue: 2 }),
    "globalClipNorm": () => new AdaGrad({ learningRate: 0.5, globalClipNorm: 5 }),
    "both clips": () => new AdaGrad({ learningRate: 0.5, clipValue: 2, globalClipNorm: 5 }),
  },
};

gpuTest(
  "every optimizer's gpuStep equals its step, with schedules and clipping",
  async (ctx, t) => {
    const summary: string[] = [];
    for (const [kind, cases] of Object.entries(CASES)) {
      const worst: Errors = { params: 0, grads: 0, slots: 0 };
      for (const [name, make] of Object.entries(cases)) {
        await t.step(`${kind}: ${name}`, async () => {
          const errors = await compare(ctx, make);
          assertErrors(errors, `${kind} (${name})`);
          for (const key of ["params", "grads", "slots"] as const) {
            worst[key] = Math.max(worst[key], errors[key]);
          }
        });
      }
      summary.push(
        `${kind}: params ${worst.params.toExponential(1)}, clipped grads ${
          worst.grads.toExponential(1)
        }, slots ${worst.slots.toExponential(1)}`,
      );
    }
    console.log(`max GPU vs CPU relative errors over 5 steps:\n  ${summary.join("\n  ")}`);
  },
);

gpuTest(
  "gpuStep continues a CPU state, and clips a large param over many workgroups",
  async (ctx, t) => {
    await t.step("Adam after 2 CPU steps", async () => {
      assertErrors(
        await compare(ctx, () => new Adam({ learningRate: 0.01 }), SHAPES, 3, 2),
        "Adam",
      );
    });
    await t.step("SGD momentum after 2 CPU steps", async () => {
      const make = () => new SGD({ learningRate: 0.1, momentum: 0.9, globalClipNorm: 5 });
      assertErrors(await compare(ctx, make, SHAPES, 3, 2), "SGD");
    });
    await t.step("RMSprop on [70001] and [3, 5], both clips", async () => {
      // 70001 elements: 18 workgroups sum its squares, 274 update it.
      const make = () => new RMSprop({ learningRate: 0.01, clipValue: 2, globalClipNorm: 50 });
      assertErrors(await compare(ctx, make, [[70001], [3, 5]], 3), "RMSprop");
    });
  },
);

// Snapshots of every param value and slot, after syncBack.
function snapshot(optimizer: GpuOpt, params: Param[]): Float32Array[] {
  const state = optimizer.getState(params);
  return [
    ...params.map((p) => Float32Array.from(p.value.data)),
    ...Object.values(state.slots).flat().map((t) => Float32Array.from(t.data)),
  ];
}

const STOPPERS: Record<string, (clip: { globalClipNorm?: number }) => GpuOpt> = {
  SGD: (clip) => new SGD({ learningRate: 0.1, momentum: 0.9, ...clip }),
  Adam: (clip) => new Adam({ learningRate: 0.01, ...clip }),
  AdamW: (clip) => new AdamW({ learningRate: 0.01, weightDecay: 0.5, ...clip }),
  RMSprop: (clip) => new RMSprop({ learningRate: 0.01, ...clip }),
  AdaGrad: (clip) => new AdaGrad({ learningRate: 0.5, ...clip }),
};

gpuTest("a non-finite norm or a stop in ctx.status updates nothing", async (ctx, t) => {
  for (const [kind, make] of Object.entries(STOPPERS)) {
    for (const bad of [NaN, Infinity]) {
      await t.step(`${kind}: a ${bad} gradient with globalClipNorm stops the step`, async () => {
        const optimizer = make({ globalClipNorm: 5 });
        const params = makeParams(SHAPES, 3);
        ctx.write(ctx.status, new Uint32Array([0, 0]));
        ctx.step = 0;
        const good = gradients(SHAPES, 0);
        params.forEach((p, j) => ctx.write(ctx.param(p).grad, good[j]));
        optimizer.gpuStep(ctx, params);
        ctx.submit();
        await ctx.syncBack("test");
        const before = snapshot(optimizer, params);
        ctx.step = 7;
        const grads = gradients(SHAPES, 1);
        grads[2][100] = bad;
        params.forEach((p, j) => ctx.write(ctx.param(p).grad, grads[j]));
        optimizer.gpuStep(ctx, params);
        ctx.submit();
        await ctx.syncBack("test");
        assert.deepEqual(await readStatus(ctx), [2, 7]);
        assert.deepEqual(snapshot(optimizer, params), before);
      });
    }
    for (const clip of [{}, { globalClipNorm: 5 }]) {
      const which = clip.globalClipNorm ? "with globalClipNorm" : "without clipping";
      await t.step(`${kind}: status [1, 3] already set, ${which}: nothing updates`, async () => {
        const optimizer = make(clip);
        const params = makeParams(SHAPES, 4);
        ctx.write(ctx.status, new Uint32Array([1, 3]));
        ctx.step = 4;
        const before = params.map((p) => Float32Array.from(p.value.data));
        for (let s = 0; s < 2; s++) {
          const grads = gradients(SHAPES, s);
          if (s === 1) grads[0][0] = NaN; // a non-finite norm must not overwrite the stop
          params.forEach((p, j) => ctx.write(ctx.param(p).grad, grads[j]));
          optimizer.gpuStep(ctx, params);
          ctx.submit();
        }
        await ctx.syncBack("test");
        assert.deepEqual(await readStatus(ctx), [1, 3]);
        assert.deepEqual(params.map((p) => Float32Array.from(p.value.data)), before);
        for (const tensors of Object.values(optimizer.getState(params).slots)) {
          for (const tensor of tensors) assert.ok(tensor.data.every((x) => x === 0));
        }
      });
    }
  }
});
