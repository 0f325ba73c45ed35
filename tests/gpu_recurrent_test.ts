// The recurrent layers' GPU sides against their CPU passes (float32): LSTM and GRU forward
// and backward through time on odd shapes, both output kinds, and char-level models trained
// with fitAsync on the GPU against fit on the CPU.
import assert from "node:assert/strict";
import { Tensor } from "../core/tensor.ts";
import { Adam } from "../optimizers/adam.ts";
import { Dense } from "../layers/dense.ts";
import { Embedding } from "../layers/embedding.ts";
import { GRU } from "../layers/gru.ts";
import { LSTM } from "../layers/lstm.ts";
import { Sequential } from "../models/sequential.ts";
import { SoftmaxCrossEntropy } from "../losses/softmax_cross_entropy.ts";
import {
  assertClose,
  compareLayer,
  fromGpu,
  GPU_AVAILABLE,
  gpuTest,
  randomTensor,
  relativeError,
  toGpu,
} from "./_gpu.ts";

// Shapes that divide no workgroup or tile: batch 1 and 3, T 1, 5 and 17, input 3 and 7,
// hidden 5, 16 and 33 (G = 4·33 = 132 and 3·33 = 99 columns).
const CASES: [number, number, number, number][] = [
  [1, 1, 3, 5],
  [3, 5, 7, 16],
  [1, 17, 3, 33],
  [3, 17, 7, 5],
  [3, 5, 3, 33],
];

// The largest error of each layer over every case, for the report.
const worst: Record<string, Record<string, number>> = {};
function note(kind: string, errors: Record<string, number>): void {
  const into = worst[kind] ??= {};
  for (const [name, error] of Object.entries(errors)) {
    into[name] = Math.max(into[name] ?? 0, error);
  }
}
function report(kind: string): void {
  const parts = Object.entries(worst[kind]).map(([n, e]) => `${n} ${e.toExponential(2)}`);
  console.log(`${kind} GPU vs CPU, largest relative errors: ${parts.join(", ")}`);
}

for (const [kind, Layer] of [["LSTM", LSTM], ["GRU", GRU]] as const) {
  gpuTest(
    `${kind} on the GPU equals the CPU, forward and backward through time`,
    async (ctx, t) => {
      for (const [batch, T, inputs, hidden] of CASES) {
        for (const returnSequences of [true, false]) {
          const name =
            `[${batch}, ${T}, ${inputs}] → hidden ${hidden}, returnSequences ${returnSequences}`;
          await t.step(name, async () => {
            const layer = new Layer(inputs, hidden, { seed: batch + T + hidden, returnSequences });
            const x = randomTensor([batch, T, inputs], T + 1);
            const shape = returnSequences ? [batch, T, hidden] : [batch, hidden];
            const errors = await compareLayer(ctx, layer, x, randomTensor(shape, hidden));
            note(kind, errors);
            assertClose(errors, 1e-5, `${kind} ${name}: `);
          });
        }
      }
      await t.step("large pre-activations saturate the gates without NaN", async () => {
        const layer = new Layer(3, 5, { seed: 1 });
        for (const p of layer.params()) p.value.data.forEach((v, i, a) => a[i] = v * 40);
        const x = randomTensor([2, 6, 3], 9);
        x.data.forEach((v, i, a) => a[i] = v * 30);
        const errors = await compareLayer(ctx, layer, x, randomTensor([2, 6, 5], 3));
        assertClose(errors, 1e-4, `${kind} saturated: `);
      });
      await t.step("a second pass accumulates the param gradients", async () => {
        const layer = new Layer(3, 5, { seed: 2 });
        const x = toGpu(ctx, randomTensor([3, 5, 3], 1));
        const dvalues = toGpu(ctx, randomTensor([3, 5, 5], 2));
        const grads = layer.params().map((p) => ctx.param(p).grad);
        ctx.clear(grads);
        layer.gpuForward(ctx, x, { training: true });
        layer.gpuBackward(ctx, dvalues);
        const once = await fromGpu(ctx, ...grads);
        layer.gpuForward(ctx, x, { training: true });
        layer.gpuBackward(ctx, dvalues);
        const twice = await fromGpu(ctx, ...grads);
        once.forEach((g, i) => {
          assert.ok(relativeError(twice[i], g.map((v) => 2 * v)) < 1e-6, layer.params()[i].name);
        });
      });
      await t.step(
        "inputGradient false leaves d(inputs) uncomputed, the grads as before",
        async () => {
          const layer = new Layer(7, 16, { seed: 3 });
          const x = toGpu(ctx, randomTensor([3, 5, 7], 4));
          const dvalues = toGpu(ctx, randomTensor([3, 5, 16], 5));
          const grads = layer.params().map((p) => ctx.param(p).grad);
          ctx.clear(grads);
          layer.gpuForward(ctx, x, { training: true });
          const dinputs = layer.gpuBackward(ctx, dvalues, { inputGradient: false });
          assert.deepEqual(dinputs.shape, [3, 5, 7]);
          const gpu = await fromGpu(ctx, ...grads);
          for (const p of layer.params()) p.zeroGrad();
          const cpuX = randomTensor([3, 5, 7], 4);
          layer.forward(cpuX, { training: true });
          layer.backward(randomTensor([3, 5, 16], 5), { inputGradient: false });
          layer.params().forEach((p, i) => {
            assert.ok(relativeError(gpu[i], p.grad.data) < 1e-5, p.name);
          });
        },
      );
      await t.step("bad inputs and dvalues throw, naming the layer", () => {
        const layer = new Layer(3, 5);
        assert.throws(() => layer.gpuBackward(ctx, toGpu(ctx, randomTensor([1, 1, 5], 1))), {
          name: "Error",
          message: new RegExp(`${kind}\\.gpuBackward: call gpuForward first`),
        });
        assert.throws(() => layer.gpuForward(ctx, toGpu(ctx, randomTensor([2, 4, 4], 1))), {
          name: "TypeError",
          message: new RegExp(
            `${kind}\\.gpuForward: inputs must be \\[batch, T, 3\\], got shape \\[2, 4, 4\\]`,
          ),
        });
        assert.throws(() => layer.gpuForward(ctx, toGpu(ctx, randomTensor([8, 3], 1))), TypeError);
        layer.gpuForward(ctx, toGpu(ctx, randomTensor([2, 4, 3], 1)));
        assert.throws(() => layer.gpuBackward(ctx, toGpu(ctx, randomTensor([2, 5], 1))), {
          name: "TypeError",
          message: new RegExp(
            `${kind}\\.gpuBackward: dvalues is float32 \\[2, 5\\], expected float32 \\[2, 4, 5\\]`,
          ),
        });
      });
      report(kind);
    },
  );
}

// A char-level corpus: windows of T characters of a repeated sentence, each position's
// target the next character (the textgen example's task, small).
function charData(T: number, samples: number): { x: Tensor; y: Tensor; vocabulary: number } {
  const text = "the quick brown fox jumps over the lazy dog. ".repeat(8);
  const chars = [...new Set(text)].sort();
  const ids = [...text].map((c) => chars.indexOf(c));
  const x = Tensor.zeros([samples, T]), y = Tensor.zeros([samples, T]);
  for (let n = 0; n < samples; n++) {
    const start = (n * 7) % (ids.length - T - 1);
    for (let t = 0; t < T; t++) {
      x.data[n * T + t] = ids[start + t];
      y.data[n * T + t] = ids[start + t + 1];
    }
  }
  return { x, y, vocabulary: chars.length };
}

for (const [kind, Layer] of [["LSTM", LSTM], ["GRU", GRU]] as const) {
  Deno.test({
    name: `a char-${kind} trained with fitAsync on the GPU follows fit on the CPU`,
    ignore: !GPU_AVAILABLE,
    async fn() {
      const T = 9, D = 8, H = 33;
      const { x, y, vocabulary: V } = charData(T, 40);
      const build = () =>
        new Sequential([
          new Embedding(V, D, { seed: 1 }),
          new Layer(D, H, { seed: 2 }),
          new Dense(H, V, { seed: 3 }),
        ]);
      const options = () => ({
        loss: new SoftmaxCrossEntropy(),
        optimizer: new Adam({ learningRate: 0.01 }),
        epochs: 4,
        batchSize: 16, // 16, 16 and a shorter last batch of 8
      });
      const cpu = build(), gpu = build();
      const cpuHistory = cpu.fit(x, y, options());
      const gpuHistory = await gpu.fitAsync(x, y, { ...options(), device: "webgpu" });
      const cpuLoss = cpuHistory.get("loss"), gpuLoss = gpuHistory.get("loss");
      const logs = relativeError(gpuLoss, cpuLoss);
      const cpuParams = cpu.params(), gpuParams = gpu.params();
      const params = Math.max(
        ...cpuParams.map((p, i) => relativeError(gpuParams[i].value.data, p.value.data)),
      );
      console.log(
        `char-${kind}: epoch losses CPU ${cpuLoss.map((l) => l.toFixed(6)).join(" ")}, ` +
          `GPU ${gpuLoss.map((l) => l.toFixed(6)).join(" ")}; ` +
          `losses differ by ${logs.toExponential(2)}, params by ${params.toExponential(2)}`,
      );
      assert.ok(cpuLoss[3] < cpuLoss[0], "the model learns");
      assert.ok(logs < 1e-4, `epoch losses differ by ${logs}`);
      assert.ok(params < 1e-4, `params differ by ${params}`);
    },
  });
}
