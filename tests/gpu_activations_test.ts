// The GPU sides of the activations, Dropout and Flatten against their CPU passes (float32),
// on shapes that do not divide the kernels' workgroups; Dropout's device masks by their
// statistics, their scale, and their reproducibility.
import assert from "node:assert/strict";
import { GELU } from "../activations/gelu.ts";
import { LeakyReLU } from "../activations/leaky_relu.ts";
import { Linear } from "../activations/linear.ts";
import { Sigmoid } from "../activations/sigmoid.ts";
import { Softmax } from "../activations/softmax.ts";
import { Tanh } from "../activations/tanh.ts";
import { openWebGpu } from "../backends/webgpu.ts";
import type { GpuLayer } from "../core/gpu.ts";
import type { Layer } from "../core/layer.ts";
import { RandomState } from "../core/random.ts";
import { Tensor } from "../core/tensor.ts";
import { Dropout } from "../layers/dropout.ts";
import { Flatten } from "../layers/flatten.ts";
import {
  assertClose,
  compareLayer,
  fromGpu,
  gpuTest,
  type LayerErrors,
  randomTensor,
  toGpu,
} from "./_gpu.ts";

const SHAPES = [[1, 1], [7, 13], [33, 65], [3, 5, 7], [2, 3, 5, 7]];

// `randomTensor` stretched to [−scale, scale).
function spread(shape: number[], seed: number, scale: number): Tensor {
  const t = randomTensor(shape, seed);
  for (let i = 0; i < t.size; i++) t.data[i] *= scale;
  return t;
}

// The largest of each error over several comparisons, for the summary line.
function worst(into: LayerErrors, errors: LayerErrors): void {
  for (const [name, error] of Object.entries(errors)) into[name] = Math.max(into[name] ?? 0, error);
}

function summary(name: string, errors: LayerErrors): string {
  const parts = Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(1)}`);
  return `${name}: ${parts.join(", ")}`;
}

const elementwise: [string, () => Layer & GpuLayer, number][] = [
  ["LeakyReLU()", () => new LeakyReLU(), 1e-6],
  ["LeakyReLU(slope=0.2)", () => new LeakyReLU({ slope: 0.2 }), 1e-6],
  ["Sigmoid()", () => new Sigmoid(), 1e-6],
  ["Tanh()", () => new Tanh(), 1e-6],
  ["Linear()", () => new Linear(), 0],
  ["GELU()", () => new GELU(), 1e-6],
  ['GELU(approximate="tanh")', () => new GELU({ approximate: "tanh" }), 1e-6],
];

gpuTest("element-wise activations on the GPU equal the CPU", async (ctx, t) => {
  for (const [name, make, tolerance] of elementwise) {
    await t.step(name, async () => {
      const errors: LayerErrors = {};
      for (const [k, shape] of SHAPES.entries()) {
        const layer = make();
        // [−6, 6): both branches of every select, the saturated ends of sigmoid and tanh
        const inputs = spread(shape, 10 + k, 6);
        const result = await compareLayer(ctx, layer, inputs, randomTensor(shape, 20 + k));
        assertClose(result, tolerance, `${name} ${JSON.stringify(shape)}: `);
        worst(errors, result);
      }
      console.log(summary(name, errors));
    });
  }
});

gpuTest("GELU on the GPU over [−10, 10] and at the extremes", async (ctx, t) => {
  const n = 4001; // steps of 1/200, through 0 and every table boundary of the CPU's
  const inputs = Tensor.zeros([1, n], { dtype: "float32" });
  for (let i = 0; i < n; i++) inputs.data[i] = -10 + i / 200;
  const dvalues = spread([1, n], 3, 1);
  for (const approximate of ["none", "tanh"] as const) {
    await t.step(`approximate "${approximate}"`, async () => {
      const errors = await compareLayer(ctx, new GELU({ approximate }), inputs, dvalues);
      console.log(summary(`GELU(${approximate}) over [−10, 10]`, errors));
      assertClose(errors, 1e-6);
    });
  }
  await t.step("absolute error of GELU and GELU′ below 2e−7 (×|dvalues| ≤ 1)", async () => {
    const gelu = new GELU();
    const out = gelu.gpuForward(ctx, toGpu(ctx, inputs));
    const ones = Tensor.filled([1, n], 1, { dtype: "float32" });
    const slope = gelu.gpuBackward(ctx, toGpu(ctx, ones));
    const [y, dy] = await fromGpu(ctx, out, slope);
    const cpuY = gelu.forward(inputs).data, cpuDy = gelu.backward(ones).data;
    let forward = 0, backward = 0;
    for (let i = 0; i < n; i++) {
      // relative to max(1, |x|): GELU(x) ≈ x for large x, where float32's rounding is |x|·6e−8
      forward = Math.max(forward, Math.abs(y[i] - cpuY[i]) / Math.max(1, Math.abs(inputs.data[i])));
      backward = Math.max(backward, Math.abs(dy[i] - cpuDy[i]));
    }
    console.log(
      `GELU() absolute: forward ${forward.toExponential(1)}, GELU′ ${backward.toExponential(1)}`,
    );
    assert.ok(forward < 2e-7, `forward ${forward}`);
    assert.ok(backward < 2e-7, `backward ${backward}`);
  });
  await t.step("huge and infinite inputs give what the CPU gives", async () => {
    const x = Tensor.from([[-Infinity, -1e30, -50, -15, 15, 50, 1e30, Infinity]]);
    const ones = Tensor.filled(x.shape, 1, { dtype: "float32" });
    for (const approximate of ["none", "tanh"] as const) {
      const gelu = new GELU({ approximate });
      const out = gelu.gpuForward(ctx, toGpu(ctx, x));
      const [y, dy] = await fromGpu(ctx, out, gelu.gpuBackward(ctx, toGpu(ctx, ones)));
      const cpuY = gelu.forward(x).data, cpuDy = gelu.backward(ones).data;
      for (const [gpu, cpu, what] of [[y, cpuY, "outputs"], [dy, cpuDy, "dinputs"]] as const) {
        for (let i = 0; i < x.size; i++) {
          // the tanh form's kernels give the limits at ±∞, where the CPU gives NaN for some
          if (approximate === "tanh" && !Number.isFinite(x.data[i])) continue;
          const same = Number.isNaN(cpu[i])
            ? Number.isNaN(gpu[i])
            : gpu[i] === cpu[i] || Math.abs(gpu[i] - cpu[i]) < 1e-30;
          assert.ok(same, `${approximate} ${what} at ${x.data[i]}: GPU ${gpu[i]}, CPU ${cpu[i]}`);
        }
      }
    }
  });
});

gpuTest("Softmax on the GPU equals the CPU, row by row", async (ctx, t) => {
  const errors: LayerErrors = {};
  for (
    const [rows, classes, scale] of [[1, 1, 1], [7, 13, 5], [33, 65, 10], [5, 1000, 8], [
      2048,
      10,
      30,
    ]]
  ) {
    await t.step(`[${rows}, ${classes}], logits in ±${scale}`, async () => {
      const result = await compareLayer(
        ctx,
        new Softmax(),
        spread([rows, classes], rows + classes, scale),
        randomTensor([rows, classes], 5),
      );
      assertClose(result, 1e-6);
      worst(errors, result);
    });
  }
  await t.step("logits of ±1000 stay finite", async () => {
    const softmax = new Softmax();
    const x = Tensor.from([[1000, -1000], [1000, 1000], [-1000, -1000]]);
    const [p] = await fromGpu(ctx, softmax.gpuForward(ctx, toGpu(ctx, x)));
    assert.deepEqual(Array.from(p), [1, 0, 0.5, 0.5, 0.5, 0.5]);
  });
  await t.step("inputs that are not 2-D are a TypeError, like the CPU's", () => {
    const x = toGpu(ctx, randomTensor([2, 3, 4], 1));
    assert.throws(
      () => new Softmax().gpuForward(ctx, x),
      TypeError,
      "Softmax.gpuForward: inputs must be 2-D [batch, features], got shape [2, 3, 4]",
    );
    assert.throws(() => new Softmax().gpuBackward(ctx, x), /call gpuForward first/);
  });
  console.log(summary("Softmax()", errors));
});

gpuTest("Flatten on the GPU reshapes without copying", async (ctx, t) => {
  await t.step("equals the CPU on rank 2, 3 and 4", async () => {
    const errors: LayerErrors = {};
    for (const [k, shape] of [[1, 1], [7, 13], [3, 5, 7], [2, 3, 5, 7]].entries()) {
      const features = shape.slice(1).reduce((a, b) => a * b, 1);
      const result = await compareLayer(
        ctx,
        new Flatten(),
        randomTensor(shape, k),
        randomTensor([shape[0], features], k + 9),
      );
      assertClose(result, 0);
      worst(errors, result);
    }
    console.log(summary("Flatten()", errors));
  });
  await t.step("the same buffers, reshaped", () => {
    const flatten = new Flatten();
    const x = toGpu(ctx, randomTensor([2, 3, 5, 7], 1));
    const out = flatten.gpuForward(ctx, x);
    assert.equal(out.buffer, x.buffer);
    assert.deepEqual(out.shape, [2, 105]);
    assert.equal(out.size, 210);
    const dv = toGpu(ctx, randomTensor([2, 105], 2));
    const dx = flatten.gpuBackward(ctx, dv);
    assert.equal(dx.buffer, dv.buffer);
    assert.deepEqual(dx.shape, [2, 3, 5, 7]);
    const matrix = toGpu(ctx, randomTensor([4, 6], 3));
    assert.equal(flatten.gpuForward(ctx, matrix), matrix);
  });
  await t.step("errors name the layer and the shapes", () => {
    const flatten = new Flatten();
    assert.throws(() => flatten.gpuBackward(ctx, toGpu(ctx, randomTensor([2, 3], 1))), /first/);
    assert.throws(
      () => flatten.gpuForward(ctx, toGpu(ctx, randomTensor([6], 1))),
      TypeError,
      "Flatten.gpuForward: inputs must have a batch axis and at least one more, [batch, …], got shape [6]",
    );
    flatten.gpuForward(ctx, toGpu(ctx, randomTensor([2, 3, 4], 1)));
    assert.throws(
      () => flatten.gpuBackward(ctx, toGpu(ctx, randomTensor([2, 11], 1))),
      TypeError,
      "Flatten.gpuBackward: dvalues of shape [2, 11] do not hold the [2, 3, 4] inputs' elements",
    );
  });
});

// One training forward and backward of `dropout` at `step`, read back.
async function dropoutPass(
  ctx: Awaited<ReturnType<typeof openWebGpu>>,
  dropout: Dropout,
  inputs: Tensor,
  dvalues: Tensor,
  step: number,
): Promise<[Float32Array, Float32Array]> {
  ctx.step = step;
  const out = dropout.gpuForward(ctx, toGpu(ctx, inputs), { training: true });
  const d = dropout.gpuBackward(ctx, toGpu(ctx, dvalues));
  const [y, dx] = await fromGpu(ctx, out, d);
  return [y, dx];
}

gpuTest("Dropout on the GPU", async (ctx, t) => {
  const shape = [64, 257]; // 16,448 elements
  const n = 64 * 257;
  // inputs and dvalues without zeros, so that a zero output means a dropped element
  const inputs = spread(shape, 4, 1);
  const dvalues = spread(shape, 5, 1);
  for (let i = 0; i < n; i++) {
    if (inputs.data[i] === 0) inputs.data[i] = 0.5;
    if (dvalues.data[i] === 0) dvalues.data[i] = 0.5;
  }

  for (const rate of [0.1, 0.3, 0.5, 0.7]) {
    await t.step(
      `rate ${rate}: keeps 1 − rate, scales by 1 / (1 − rate), backward agrees`,
      async () => {
        const dropout = new Dropout(rate, { seed: 3 });
        const [y, dx] = await dropoutPass(ctx, dropout, inputs, dvalues, 0);
        const scale = Math.fround(1 / (1 - rate));
        let kept = 0;
        for (let i = 0; i < n; i++) {
          if (y[i] === 0) {
            assert.ok(dx[i] === 0, `element ${i}: dropped in forward, not in backward`);
          } else {
            kept++;
            assert.equal(y[i], Math.fround(inputs.data[i] * scale), `element ${i}'s output`);
            assert.equal(dx[i], Math.fround(dvalues.data[i] * scale), `element ${i}'s gradient`);
          }
        }
        // the kept fraction is binomial: 5 standard deviations, about 0.018 here
        const sd = Math.sqrt(rate * (1 - rate) / n);
        assert.ok(
          Math.abs(kept / n - (1 - rate)) < 5 * sd,
          `kept ${kept / n}, expected ${1 - rate}`,
        );
      },
    );
  }

  await t.step("rate 0 keeps everything", async () => {
    const [y, dx] = await dropoutPass(ctx, new Dropout(0, { seed: 1 }), inputs, dvalues, 7);
    assert.deepEqual(y, inputs.data);
    assert.deepEqual(dx, dvalues.data);
  });

  await t.step("the same seed and step give the same mask in another context", async () => {
    const [a] = await dropoutPass(ctx, new Dropout(0.5, { seed: 11 }), inputs, dvalues, 5);
    const other = await openWebGpu("Dropout test, second context");
    try {
      const [b] = await dropoutPass(other, new Dropout(0.5, { seed: 11 }), inputs, dvalues, 5);
      assert.deepEqual(b, a);
    } finally {
      other.destroy();
    }
  });

  await t.step("another step, seed or layer gives another, independent mask", async () => {
    const dropout = new Dropout(0.5, { seed: 11 });
    const [a] = await dropoutPass(ctx, dropout, inputs, dvalues, 5);
    const [b] = await dropoutPass(ctx, dropout, inputs, dvalues, 6);
    const [c] = await dropoutPass(ctx, new Dropout(0.5, { seed: 12 }), inputs, dvalues, 5);
    // two layers sharing one generator draw different keys
    const shared = new Dropout(0.5, { seed: 11 });
    const second = new Dropout(0.5, { random: shared.random });
    await dropoutPass(ctx, shared, inputs, dvalues, 5);
    const [d] = await dropoutPass(ctx, second, inputs, dvalues, 5);
    for (const [name, other] of [["step", b], ["seed", c], ["shared generator", d]] as const) {
      // independent masks of rate 1/2 agree on about half the elements
      let same = 0;
      for (let i = 0; i < n; i++) if ((a[i] === 0) === (other[i] === 0)) same++;
      const sd = Math.sqrt(0.25 / n);
      assert.ok(Math.abs(same / n - 0.5) < 5 * sd, `${name}: masks agree on ${same / n}`);
    }
  });

  await t.step(
    "the key is two words drawn from the layer's generator, once per context",
    async () => {
      const dropout = new Dropout(0.5, { seed: 2 });
      await dropoutPass(ctx, dropout, inputs, dvalues, 0);
      await dropoutPass(ctx, dropout, inputs, dvalues, 1);
      const reference = new RandomState(2);
      reference.nextUint32();
      reference.nextUint32();
      assert.deepEqual(dropout.random.snapshot(), reference.snapshot());
    },
  );

  await t.step("inference is the identity, forward and backward", async () => {
    const dropout = new Dropout(0.5, { seed: 1 });
    const x = toGpu(ctx, inputs), dv = toGpu(ctx, dvalues);
    assert.equal(dropout.gpuForward(ctx, x), x);
    assert.equal(dropout.gpuForward(ctx, x, { training: false }), x);
    assert.equal(dropout.gpuBackward(ctx, dv), dv);
    const errors = await compareLayer(ctx, dropout, inputs, dvalues, { training: false });
    assertClose(errors, 0);
    assert.throws(() => new Dropout(0.5).gpuBackward(ctx, dv), /call gpuForward first/);
  });
});
