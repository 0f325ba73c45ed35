// fitAsync, evaluateAsync and predictAsync: the CPU device bit for bit against the
// synchronous calls; the GPU device against the CPU within float32 noise (training
// trajectories of an MLP, a CNN with BatchNorm and a tiny GPT), its refusals and its stops.
import assert from "node:assert/strict";
import {
  Adam,
  BatchNorm,
  type Callback,
  Conv2D,
  CosineDecay,
  Dense,
  Dropout,
  EarlyStopping,
  Embedding,
  Flatten,
  GELU,
  type History,
  type Layer,
  LayerNorm,
  MaxPool2D,
  MultiHeadAttention,
  NonFiniteLossError,
  type Param,
  PositionalEmbedding,
  ReLU,
  Residual,
  Sequential,
  SGD,
  SoftmaxCrossEntropy,
  spiralData,
  Tensor,
  webgpuStatus,
} from "../mod.ts";
import { GPU_AVAILABLE, relativeError } from "./_gpu.ts";
import { lastGpuFitBuffers } from "../training/_gpu_fit.ts";

const mlp = (dropout = 0) =>
  new Sequential([
    new Dense(2, 16, { seed: 1, weightRegularizerL2: 1e-3 }),
    new ReLU(),
    ...(dropout > 0 ? [new Dropout(dropout, { seed: 3 })] : []),
    new Dense(16, 3, { seed: 2 }),
  ]);

function paramsOf(model: Sequential): Float32Array[] {
  return model.params().map((p: Param) => Float32Array.from(p.value.data));
}

Deno.test("webgpuStatus says whether WebGPU is here, and why not", async () => {
  const status = await webgpuStatus();
  if (status.available) assert.ok(status.adapter);
  else assert.equal(typeof status.reason, "string");
  assert.equal(status.available, GPU_AVAILABLE);
});

Deno.test("fitAsync on the CPU equals fit bit for bit, and yields to the event loop", async () => {
  const { x, y } = spiralData(60, 3);
  const options = () => ({
    loss: new SoftmaxCrossEntropy(),
    optimizer: new Adam({ learningRate: 0.01 }),
    epochs: 4,
    batchSize: 16,
    validationSplit: 0.2,
  });
  const a = mlp(0.2), b = mlp(0.2);
  const sync = a.fit(x, y, options());
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  const history = await b.fitAsync(x, y, { ...options(), device: "cpu" });
  clearInterval(timer);
  assert.deepEqual(history.epochs, sync.epochs);
  assert.deepEqual(paramsOf(b), paramsOf(a));
  assert.ok(ticks >= 0);
  assert.deepEqual(
    (await b.predictAsync(x)).data,
    b.predict(x).data,
  );
  const loss = new SoftmaxCrossEntropy();
  assert.deepEqual(await b.evaluateAsync(x, y, { loss }), b.evaluate(x, y, { loss }));
});

Deno.test("the async calls refuse an unknown device by name", async () => {
  const { x, y } = spiralData(10, 3);
  await assert.rejects(
    mlp().fitAsync(x, y, {
      loss: new SoftmaxCrossEntropy(),
      optimizer: new SGD(),
      epochs: 1,
      device: "tpu" as "cpu",
    }),
    /Sequential\.fitAsync: device must be "cpu" or "webgpu", got "tpu"/,
  );
});

// Runs the same training on the CPU and the GPU and returns the largest relative differences
// of the epoch logs and of the final params.
async function compareTrajectories(
  build: () => Sequential,
  x: Tensor,
  y: Tensor | number[] | Int32Array,
  options: () => Parameters<Sequential["fit"]>[2],
): Promise<
  { logs: number; params: number; cpu: Sequential; gpu: Sequential; gpuHistory: History }
> {
  const cpu = build(), gpu = build();
  const cpuHistory = cpu.fit(x, y, options());
  const gpuHistory = await gpu.fitAsync(x, y, { ...options(), device: "webgpu" });
  let logs = 0;
  assert.deepEqual(gpuHistory.epochs, cpuHistory.epochs);
  for (const [name, values] of Object.entries(cpuHistory.series)) {
    logs = Math.max(logs, relativeError(gpuHistory.get(name), values));
  }
  const cpuParams = paramsOf(cpu), gpuParams = paramsOf(gpu);
  const params = Math.max(...cpuParams.map((p, i) => relativeError(gpuParams[i], p)));
  return { logs, params, cpu, gpu, gpuHistory };
}

Deno.test({
  name: "fitAsync on the GPU follows the CPU's trajectory",
  ignore: !GPU_AVAILABLE,
  async fn(t) {
    await t.step("an MLP with L2, shuffled batches, validation and Adam", async () => {
      const { x, y } = spiralData(60, 3);
      const result = await compareTrajectories(mlp, x, y, () => ({
        loss: new SoftmaxCrossEntropy(),
        optimizer: new Adam({ learningRate: 0.01 }),
        epochs: 5,
        batchSize: 16,
        validationSplit: 0.2,
      }));
      // No buffer is created after the first epoch (whose last batch is shorter).
      assert.equal(new Set(lastGpuFitBuffers).size, 1, `buffers per epoch: ${lastGpuFitBuffers}`);
      console.log(
        `MLP: logs ${result.logs.toExponential(2)}, params ${result.params.toExponential(2)}`,
      );
      assert.ok(result.logs < 1e-4, `logs differ by ${result.logs}`);
      assert.ok(result.params < 1e-4, `params differ by ${result.params}`);
      // The trained weights are back on the CPU: predict there equals predictAsync here.
      const onGpu = await result.gpu.predictAsync(x, { device: "webgpu", batchSize: 50 });
      assert.ok(relativeError(onGpu.data, result.gpu.predict(x).data) < 1e-5);
      const loss = new SoftmaxCrossEntropy();
      const cpuLogs = result.gpu.evaluate(x, y, { loss, batchSize: 64 });
      const gpuLogs = await result.gpu.evaluateAsync(x, y, {
        loss,
        batchSize: 64,
        device: "webgpu",
      });
      for (const name of Object.keys(cpuLogs)) {
        assert.ok(
          Math.abs(gpuLogs[name] - cpuLogs[name]) <= 1e-5 * Math.max(1, Math.abs(cpuLogs[name])),
          name,
        );
      }
    });

    await t.step("full-batch epochs that nothing watches are read across epochs", async () => {
      const { x, y } = spiralData(30, 3);
      const result = await compareTrajectories(mlp, x, y, () => ({
        loss: new SoftmaxCrossEntropy(),
        optimizer: new Adam({ learningRate: 0.02 }),
        epochs: 300,
      }));
      assert.equal(result.gpuHistory.loss.length, 300);
      assert.equal(new Set(lastGpuFitBuffers).size, 1, `buffers per epoch: ${lastGpuFitBuffers}`);
      assert.ok(result.logs < 1e-4, `logs differ by ${result.logs}`);
      assert.ok(result.params < 1e-4, `params differ by ${result.params}`);
    });

    await t.step("a CNN with BatchNorm and SGD with momentum", async () => {
      const images = Tensor.zeros([24, 1, 8, 8]);
      const labels: number[] = [];
      for (let n = 0; n < 24; n++) {
        const label = n % 2;
        labels.push(label);
        for (let i = 0; i < 64; i++) {
          const row = Math.floor(i / 8), col = i % 8;
          images.data[n * 64 + i] = Math.sin(n * 1.7 + i * 0.37) * 0.3 +
            (label === 0 ? (row < 4 ? 1 : 0) : (col < 4 ? 1 : 0));
        }
      }
      const build = () =>
        new Sequential([
          new Conv2D(1, 4, 3, { seed: 1, padding: 1 }),
          new BatchNorm(4),
          new ReLU(),
          new MaxPool2D(2),
          new Flatten(),
          new Dense(64, 2, { seed: 2 }),
        ]);
      const result = await compareTrajectories(build, images, labels, () => ({
        loss: new SoftmaxCrossEntropy(),
        optimizer: new SGD({ learningRate: 0.05, momentum: 0.9 }),
        epochs: 4,
        batchSize: 7,
      }));
      console.log(
        `CNN: logs ${result.logs.toExponential(2)}, params ${result.params.toExponential(2)}`,
      );
      assert.ok(result.logs < 1e-3, `logs differ by ${result.logs}`);
      assert.ok(result.params < 1e-3, `params differ by ${result.params}`);
      // BatchNorm's running statistics came back too.
      const [cpuStats, gpuStats] = [result.cpu, result.gpu].map((m) =>
        m.buffers().map((b) => Float32Array.from(b.value.data))
      );
      cpuStats.forEach((s, i) => assert.ok(relativeError(gpuStats[i], s) < 1e-3));
    });

    await t.step("a tiny GPT with clipping and a warmed-up cosine schedule", async () => {
      const V = 11, T = 6, D = 8, samples = 12;
      const x = Tensor.zeros([samples, T]);
      const y = Tensor.zeros([samples, T]);
      for (let n = 0; n < samples; n++) {
        for (let t = 0; t < T; t++) {
          x.data[n * T + t] = (n + 2 * t) % V;
          y.data[n * T + t] = (n + 2 * t + 2) % V;
        }
      }
      const build = () =>
        new Sequential([
          new Embedding(V, D, { seed: 1 }),
          new PositionalEmbedding(T, D, { seed: 2 }),
          new Residual([new LayerNorm(D), new MultiHeadAttention(D, 2, { causal: true, seed: 3 })]),
          new Residual([
            new LayerNorm(D),
            new Dense(D, 16, { seed: 4 }),
            new GELU(),
            new Dense(16, D, { seed: 5 }),
          ]),
          new LayerNorm(D),
          new Dense(D, V, { seed: 6 }),
        ]);
      const result = await compareTrajectories(build, x, y, () => ({
        loss: new SoftmaxCrossEntropy(),
        optimizer: new Adam({
          learningRate: 0.01,
          globalClipNorm: 1,
          schedule: new CosineDecay({ steps: 20, warmupSteps: 3 }),
        }),
        epochs: 4,
        batchSize: 5,
      }));
      // The key biases' true gradient is 0 (softmax ignores a constant added to every score
      // of a row), so Adam turns their float32 noise into steps of up to the learning rate
      // on either device: they are compared apart, loosely.
      const [cpuParams, gpuParams] = [paramsOf(result.cpu), paramsOf(result.gpu)];
      const keyBias = result.cpu.params().findIndex((p) => p.name === "inProjBiases");
      let params = 0, keys = 0;
      cpuParams.forEach((p, i) => {
        for (let j = 0; j < p.length; j++) {
          const error = Math.abs(gpuParams[i][j] - p[j]) / Math.max(1, Math.abs(p[j]));
          if (i === keyBias && j >= D && j < 2 * D) keys = Math.max(keys, error);
          else params = Math.max(params, error);
        }
      });
      console.log(
        `GPT: logs ${result.logs.toExponential(2)}, params ${params.toExponential(2)}, ` +
          `key biases ${keys.toExponential(2)}`,
      );
      assert.ok(result.logs < 1e-4, `logs differ by ${result.logs}`);
      assert.ok(params < 1e-5, `params differ by ${params}`);
      assert.ok(keys < 0.05, `key biases differ by ${keys}`);
    });
  },
});

Deno.test({
  name: "fitAsync on the GPU: callbacks, refusals and a non-finite stop",
  ignore: !GPU_AVAILABLE,
  async fn(t) {
    const { x, y } = spiralData(40, 3);
    await t.step("batch callbacks run for every batch, in order, with the CPU's logs", async () => {
      const seen = (into: [number, number][]): Callback => ({
        onBatchEnd: (batch, logs) => void into.push([batch, logs.batchLoss]),
      });
      const cpuSeen: [number, number][] = [], gpuSeen: [number, number][] = [];
      const options = () => ({
        loss: new SoftmaxCrossEntropy(),
        optimizer: new Adam({ learningRate: 0.01 }),
        epochs: 2,
        batchSize: 32,
      });
      mlp().fit(x, y, { ...options(), callbacks: [seen(cpuSeen)] });
      await mlp().fitAsync(x, y, { ...options(), callbacks: [seen(gpuSeen)], device: "webgpu" });
      assert.deepEqual(gpuSeen.map(([b]) => b), cpuSeen.map(([b]) => b));
      assert.ok(relativeError(gpuSeen.map(([, l]) => l), cpuSeen.map(([, l]) => l)) < 1e-4);
    });

    await t.step("EarlyStopping stops and restores the best weights", async () => {
      const model = mlp();
      const history = await model.fitAsync(x, y, {
        loss: new SoftmaxCrossEntropy(),
        optimizer: new SGD({ learningRate: 5 }),
        epochs: 30,
        validationSplit: 0.25,
        callbacks: [new EarlyStopping({ patience: 2, restoreBestWeights: true })],
        device: "webgpu",
      });
      assert.ok(history.epochs.length < 30);
    });

    await t.step("models and plugins without a GPU side are refused by name", async () => {
      const options = {
        loss: new SoftmaxCrossEntropy(),
        optimizer: new SGD(),
        epochs: 1,
        device: "webgpu" as const,
      };
      const float64 = new Sequential([new Dense(2, 3, { dtype: "float64", seed: 1 })]);
      await assert.rejects(float64.fitAsync(x, y, options), /float64.*WGSL has no f64/);
      const thirdParty: Layer = {
        kind: "ThirdParty",
        forward: (t) => t,
        backward: (t) => t,
        params: () => [],
        config: () => ({}),
        toString: () => "ThirdParty()",
      };
      const sequence = new Sequential([new Embedding(5, 4), thirdParty, new Dense(4, 3)]);
      await assert.rejects(
        sequence.fitAsync([[1, 2]], [0], options),
        /layer 1 \(ThirdParty\) has no GPU side/,
      );
      const embedded = new Sequential([new Embedding(5, 4), new Flatten(), new Dense(8, 3)]);
      await assert.rejects(
        embedded.fitAsync([[1, 2], [3, 9]], [0, 1], options),
        /Sequential\.fitAsync: Embedding: id 9 at position \[1, 1\] is out of range \[0, 5\)/,
      );
      await assert.rejects(
        embedded.predictAsync([[1, 2.5]], { device: "webgpu" }),
        /Sequential\.predictAsync: Embedding: id 2\.5 .* is not an integer/,
      );
      const custom: Layer = {
        kind: "Custom",
        forward: (t) => t,
        backward: (t) => t,
        params: () => [],
        config: () => ({}),
        toString: () => "Custom()",
      };
      await assert.rejects(
        new Sequential([new Dense(2, 3), new Residual([custom])]).fitAsync(x, y, options),
        /in layer 1: layer 0 \(Custom\) has no GPU side/,
      );
    });

    await t.step("a non-finite loss stops with NonFiniteLossError, weights finite", async () => {
      const model = mlp();
      const optimizer = new SGD({ learningRate: 1e35 });
      const error = await model.fitAsync(x, y, {
        loss: new SoftmaxCrossEntropy(),
        optimizer,
        epochs: 5,
        batchSize: 8,
        device: "webgpu",
      }).catch((e) => e);
      assert.ok(error instanceof NonFiniteLossError, String(error));
      for (const p of model.params()) assert.ok(p.value.data.every(Number.isFinite));
      assert.equal(optimizer.iterations, error.epoch * 15 + error.batch);
    });
  },
});

Deno.test("examples/gpu.ts trains on the CPU, and on the GPU where there is one", async () => {
  const script = new URL("../examples/gpu.ts", import.meta.url).pathname;
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", script, "--model", "mlp", "--epochs", "2", "--batch-size", "256"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, text);
  assert.match(text, /^cpu {4}loss 1\.\d+ → /m);
  if (GPU_AVAILABLE) {
    assert.match(text, /^webgpu loss 1\.\d+ → /m);
    const first = Number(/: (\S+) after the first epoch/.exec(text)?.[1]);
    assert.ok(first < 1e-5, text);
  } else assert.match(text, /WebGPU is not available: /);
});
