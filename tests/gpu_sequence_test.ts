// The sequence layers' GPU sides against their CPU passes (float32): Embedding,
// PositionalEmbedding, LayerNorm, MultiHeadAttention, Residual, and a tiny GPT stack.
import assert from "node:assert/strict";
import { Chain } from "../core/chain.ts";
import { Tensor } from "../core/tensor.ts";
import type { WebGpuContext } from "../backends/webgpu.ts";
import { Dense } from "../layers/dense.ts";
import { Embedding } from "../layers/embedding.ts";
import { LayerNorm } from "../layers/layer_norm.ts";
import { MultiHeadAttention } from "../layers/multi_head_attention.ts";
import { PositionalEmbedding } from "../layers/positional_embedding.ts";
import { Residual } from "../layers/residual.ts";
import { GELU } from "../activations/gelu.ts";
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

// [batch, T] ids in [0, vocabulary) as float32 (how the training loop uploads inputs), with
// repeats: small vocabularies make every id occur several times.
function randomIds(shape: number[], vocabulary: number, seed: number): Tensor {
  const ids = randomTensor(shape, seed);
  for (let i = 0; i < ids.size; i++) {
    ids.data[i] = Math.min(vocabulary - 1, Math.floor((ids.data[i] + 1) / 2 * vocabulary));
  }
  return ids;
}

// compareLayer, with every param gradient named by its index as well (a chain holds several
// params named "weights").
async function compareAll(
  ctx: WebGpuContext,
  layer: Chain,
  inputs: Tensor,
  dvalues: Tensor,
): Promise<LayerErrors> {
  const params = layer.params();
  for (const p of params) p.zeroGrad();
  const out = layer.gpuForward(ctx, toGpu(ctx, inputs), { training: true });
  const dinputs = layer.gpuBackward(ctx, toGpu(ctx, dvalues));
  const gpu = await fromGpu(ctx, out, dinputs, ...params.map((p) => ctx.param(p).grad));
  const errors: LayerErrors = {};
  errors.outputs = relativeError(gpu[0], layer.forward(inputs, { training: true }).data);
  errors.dinputs = relativeError(gpu[1], layer.backward(dvalues).data);
  params.forEach((p, i) => errors[`${i}.${p.name}`] = relativeError(gpu[2 + i], p.grad.data));
  return errors;
}

// Shapes that divide no workgroup: batch 1 and 3, T 1, 5 and 17.
const SHAPES: [number, number][] = [[1, 1], [3, 5], [1, 17], [3, 17]];

gpuTest("Embedding on the GPU equals the CPU, forward and backward", async (ctx, t) => {
  for (const [batch, T] of SHAPES) {
    for (const [vocabulary, dim, paddingIdx] of [[7, 8, undefined], [11, 12, 3]] as const) {
      const name = `ids [${batch}, ${T}], ${vocabulary}×${dim}, paddingIdx ${paddingIdx}`;
      await t.step(name, async () => {
        const embed = new Embedding(vocabulary, dim, { seed: batch * T, paddingIdx });
        const ids = randomIds([batch, T], vocabulary, T);
        const errors = await compareLayer(ctx, embed, ids, randomTensor([batch, T, dim], 2));
        assertClose(errors, 1e-6);
      });
    }
  }
  await t.step("the scatter-add gives the same bits every run, padding rows none", async () => {
    const embed = new Embedding(5, 8, { seed: 1, paddingIdx: 0 });
    const ids = toGpu(ctx, randomIds([3, 17], 5, 4));
    const dvalues = toGpu(ctx, randomTensor([3, 17, 8], 5));
    const runs: Float32Array[] = [];
    for (let run = 0; run < 3; run++) {
      ctx.clear([ctx.param(embed.weights).grad]);
      embed.gpuForward(ctx, ids);
      embed.gpuBackward(ctx, dvalues);
      runs.push((await fromGpu(ctx, ctx.param(embed.weights).grad))[0]);
    }
    assert.deepEqual(runs[1], runs[0]);
    assert.deepEqual(runs[2], runs[0]);
    assert.deepEqual([...runs[0].subarray(0, 8)], new Array(8).fill(0));
    assert.ok(runs[0].subarray(8).some((g) => g !== 0));
  });
  await t.step("an id out of range gives a NaN row, not another row", async () => {
    const embed = new Embedding(4, 3, { seed: 1 });
    const ids = toGpu(ctx, Tensor.from([[1, 4, -1, 2.5, 3]]));
    const [out] = await fromGpu(ctx, embed.gpuForward(ctx, ids));
    const rows = [0, 1, 2, 3, 4].map((r) => [...out.subarray(r * 3, r * 3 + 3)]);
    assert.deepEqual(rows[0], [...embed.weights.value.data.subarray(3, 6)]);
    assert.deepEqual(rows[4], [...embed.weights.value.data.subarray(9, 12)]);
    for (const r of [1, 2, 3]) assert.ok(rows[r].every(Number.isNaN), `row ${r}: ${rows[r]}`);
  });
  await t.step("refuses ids of another dtype", () => {
    const embed = new Embedding(4, 3);
    const ids = ctx.upload(new Int32Array([1, 2]), [1, 2], "int32");
    assert.throws(() => embed.gpuForward(ctx, ids), {
      name: "TypeError",
      message: /Embedding\.gpuForward: ids must be float32.*int32 \[1, 2\]/,
    });
  });
});

gpuTest("PositionalEmbedding on the GPU equals the CPU, forward and backward", async (ctx, t) => {
  for (const [batch, T] of SHAPES) {
    for (const dim of [8, 12]) {
      await t.step(`inputs [${batch}, ${T}, ${dim}]`, async () => {
        const positions = new PositionalEmbedding(20, dim, { seed: T });
        const inputs = randomTensor([batch, T, dim], 1);
        const errors = await compareLayer(
          ctx,
          positions,
          inputs,
          randomTensor([...inputs.shape], 2),
        );
        assertClose(errors, 1e-6);
      });
    }
  }
  await t.step("refuses T > maxLength", () => {
    const positions = new PositionalEmbedding(4, 2);
    assert.throws(() => positions.gpuForward(ctx, toGpu(ctx, randomTensor([1, 5, 2], 1))), {
      name: "RangeError",
      message: /PositionalEmbedding\.gpuForward: sequence length T = 5 exceeds maxLength = 4/,
    });
  });
});

gpuTest("LayerNorm on the GPU equals the CPU, forward and backward", async (ctx, t) => {
  const cases: number[][] = [[1, 1, 8], [3, 5, 12], [3, 17, 8], [7, 1], [5, 65], [2, 3, 130]];
  for (const shape of cases) {
    await t.step(`inputs [${shape.join(", ")}]`, async () => {
      const features = shape[shape.length - 1];
      const norm = new LayerNorm(features, {
        gamma: randomTensor([features], 3).data,
        beta: randomTensor([features], 4).data,
      });
      // Rows off centre and of unequal spread, as activations are.
      const inputs = randomTensor(shape, 1);
      for (let i = 0; i < inputs.size; i++) inputs.data[i] = 3 * inputs.data[i] + 2;
      const errors = await compareLayer(ctx, norm, inputs, randomTensor(shape, 2));
      assertClose(errors, 1e-5);
    });
  }
  await t.step("with inputGradient false, still adds the param gradients", async () => {
    const norm = new LayerNorm(12, { gamma: randomTensor([12], 3).data });
    const inputs = randomTensor([3, 5, 12], 1), dvalues = randomTensor([3, 5, 12], 2);
    norm.gpuForward(ctx, toGpu(ctx, inputs));
    norm.gpuBackward(ctx, toGpu(ctx, dvalues), { inputGradient: false });
    const [dgamma, dbeta] = await fromGpu(
      ctx,
      ctx.param(norm.gamma).grad,
      ctx.param(norm.beta).grad,
    );
    norm.forward(inputs, { training: true });
    norm.backward(dvalues);
    assert.ok(relativeError(dgamma, norm.gamma.grad.data) < 1e-5);
    assert.ok(relativeError(dbeta, norm.beta.grad.data) < 1e-5);
  });
});

gpuTest("MultiHeadAttention on the GPU equals the CPU, forward and backward", async (ctx, t) => {
  const layouts: [number, number][] = [[8, 1], [8, 2], [8, 4], [12, 4]];
  for (const [batch, T] of SHAPES) {
    for (const [dim, heads] of layouts) {
      for (const causal of [false, true]) {
        const bias = heads !== 2; // both, over the layouts
        const name = `[${batch}, ${T}, ${dim}], ${heads} heads, causal ${causal}, bias ${bias}`;
        await t.step(name, async () => {
          const attention = new MultiHeadAttention(dim, heads, { causal, bias, seed: T });
          if (bias) {
            attention.inProjBiases!.value.data.set(randomTensor([3 * dim], 5).data);
            attention.outProjBiases!.value.data.set(randomTensor([dim], 6).data);
          }
          const inputs = randomTensor([batch, T, dim], 1);
          const errors = await compareLayer(
            ctx,
            attention,
            inputs,
            randomTensor([...inputs.shape], 2),
          );
          assertClose(errors, 1e-5);
        });
      }
    }
  }
  await t.step("with dropout, inference drops nothing, as on the CPU", async () => {
    const attention = new MultiHeadAttention(8, 2, { dropout: 0.5, seed: 1 });
    const inputs = randomTensor([3, 5, 8], 1);
    const errors = await compareLayer(ctx, attention, inputs, inputs, { training: false });
    assertClose(errors, 1e-5);
  });
});

// The GPU's attention weights after dropout and before, for the last training forward.
async function droppedWeights(
  ctx: WebGpuContext,
  attention: MultiHeadAttention,
  shape: number[],
): Promise<[Float32Array, Float32Array]> {
  const [dropped, probs] = await fromGpu(
    ctx,
    ctx.buffer(attention, "dropped", shape),
    ctx.buffer(attention, "probs", shape),
  );
  return [dropped, probs];
}

gpuTest("MultiHeadAttention dropout on the GPU", async (ctx, t) => {
  const [batch, T, dim, heads, rate] = [3, 17, 8, 2, 0.3];
  const attention = new MultiHeadAttention(dim, heads, { dropout: rate, seed: 1 });
  const inputs = randomTensor([batch, T, dim], 1);
  const x = toGpu(ctx, inputs);
  const shape = [batch * heads, T, T];

  await t.step(
    "drops about `rate` of the weights and scales the rest by 1/(1 − rate)",
    async () => {
      ctx.step = 0;
      attention.gpuForward(ctx, x, { training: true });
      const [dropped, probs] = await droppedWeights(ctx, attention, shape);
      let zeros = 0;
      for (let i = 0; i < probs.length; i++) {
        if (dropped[i] === 0) zeros++;
        else assert.ok(Math.abs(dropped[i] - probs[i] / (1 - rate)) <= 1e-6 * dropped[i]);
      }
      // 1734 weights: the dropped fraction's standard deviation is 0.011.
      const fraction = zeros / probs.length;
      assert.ok(Math.abs(fraction - rate) < 0.05, `dropped ${fraction}, rate ${rate}`);
    },
  );

  await t.step("the same step gives the same mask; another step another", async () => {
    ctx.step = 0;
    attention.gpuForward(ctx, x, { training: true });
    const [first] = await droppedWeights(ctx, attention, shape);
    attention.gpuForward(ctx, x, { training: true });
    const [again] = await droppedWeights(ctx, attention, shape);
    ctx.step = 1;
    attention.gpuForward(ctx, x, { training: true });
    const [next] = await droppedWeights(ctx, attention, shape);
    assert.deepEqual(again, first);
    let differ = 0;
    for (let i = 0; i < first.length; i++) if ((first[i] === 0) !== (next[i] === 0)) differ++;
    assert.ok(differ > first.length * 0.2, `${differ} of ${first.length} weights differ`);
  });

  await t.step("backward uses the forward's mask (central differences in float32)", async () => {
    // d/dε Σ outputs(x + ε·δ)·dvalues at ε = 0 against δ·dinputs, under one step's mask.
    ctx.step = 7;
    const dvalues = toGpu(ctx, randomTensor([batch, T, dim], 2));
    const direction = randomTensor([batch, T, dim], 3);
    const loss = async (epsilon: number) => {
      const shifted = inputs.clone();
      for (let i = 0; i < shifted.size; i++) shifted.data[i] += epsilon * direction.data[i];
      const [out, dv] = await fromGpu(
        ctx,
        attention.gpuForward(ctx, toGpu(ctx, shifted), { training: true }),
        dvalues,
      );
      let sum = 0;
      for (let i = 0; i < out.length; i++) sum += out[i] * dv[i];
      return sum;
    };
    const epsilon = 1e-2;
    const numeric = (await loss(epsilon) - await loss(-epsilon)) / (2 * epsilon);
    attention.gpuForward(ctx, x, { training: true });
    const [dinputs] = await fromGpu(ctx, attention.gpuBackward(ctx, dvalues));
    let analytic = 0;
    for (let i = 0; i < dinputs.length; i++) analytic += dinputs[i] * direction.data[i];
    const error = Math.abs(numeric - analytic) / Math.max(1, Math.abs(analytic));
    assert.ok(error < 1e-2, `numeric ${numeric}, analytic ${analytic}`);
    // Without the mask the derivative would be another one: the check can fail.
    const plain = new MultiHeadAttention(dim, heads, { seed: 1 });
    plain.gpuForward(ctx, x, { training: true });
    const [dplain] = await fromGpu(ctx, plain.gpuBackward(ctx, dvalues));
    let other = 0;
    for (let i = 0; i < dplain.length; i++) other += dplain[i] * direction.data[i];
    assert.ok(Math.abs(other - analytic) > 10 * Math.abs(numeric - analytic));
  });
});

gpuTest("Residual on the GPU equals the CPU, forward and backward", async (ctx, t) => {
  await t.step("around LayerNorm and causal MultiHeadAttention", async () => {
    const block = new Residual([
      new LayerNorm(12, { beta: randomTensor([12], 3).data }),
      new MultiHeadAttention(12, 4, { causal: true, seed: 2 }),
    ]);
    const inputs = randomTensor([3, 17, 12], 1);
    assertClose(await compareLayer(ctx, block, inputs, randomTensor([...inputs.shape], 2)), 1e-5);
  });
  await t.step("inner layers that hand back their own inputs or dvalues", async () => {
    // Empty: inner(x) is x itself; PositionalEmbedding's backward returns dvalues itself.
    for (const layers of [[], [new PositionalEmbedding(5, 8, { seed: 1 })]]) {
      const inputs = randomTensor([3, 5, 8], 1);
      const errors = await compareLayer(
        ctx,
        new Residual(layers),
        inputs,
        randomTensor([...inputs.shape], 2),
      );
      assertClose(errors, 1e-6);
    }
  });
  await t.step("refuses inner layers that change the shape", () => {
    const block = new Residual([new Dense(8, 4, { seed: 1 })]);
    assert.throws(() => block.gpuForward(ctx, toGpu(ctx, randomTensor([2, 8], 1))), {
      name: "TypeError",
      message:
        /Residual\.gpuForward: the inner layers turned float32 \[2, 8\] into float32 \[2, 4\]/,
    });
  });
});

gpuTest("a tiny GPT stack on the GPU equals the CPU end to end", async (ctx, t) => {
  const [vocabulary, dim, heads, T] = [11, 12, 4, 17];
  for (const batch of [1, 3]) {
    await t.step(`ids [${batch}, ${T}]`, async () => {
      const gpt = new Chain([
        new Embedding(vocabulary, dim, { seed: 1 }),
        new PositionalEmbedding(T, dim, { seed: 2 }),
        new Residual([
          new LayerNorm(dim),
          new MultiHeadAttention(dim, heads, { causal: true, seed: 3 }),
        ]),
        new Residual([
          new LayerNorm(dim),
          new Dense(dim, 4 * dim, { seed: 4 }),
          new GELU(),
          new Dense(4 * dim, dim, { seed: 5 }),
        ]),
        new LayerNorm(dim),
        new Dense(dim, vocabulary, { seed: 6 }),
      ]);
      const ids = randomIds([batch, T], vocabulary, 7);
      const errors = await compareAll(ctx, gpt, ids, randomTensor([batch, T, vocabulary], 8));
      assert.equal(Object.keys(errors).length, 2 + gpt.params().length);
      assertClose(errors, 1e-5);
    });
  }
});
