// The page of the GPU test (tests/browser/gpu_test.ts): what webgpuStatus() says in Chromium
// and, where WebGPU is available, the same small MLP trained with fitAsync on "webgpu" and on
// "cpu" from the same weights, and predictAsync on "webgpu" against predict.
import {
  Adam,
  AvgPool2D,
  BatchNorm,
  Conv2D,
  Dense,
  Embedding,
  Flatten,
  GELU,
  GlobalAvgPool2D,
  LayerNorm,
  LSTM,
  MaxPool2D,
  MultiHeadAttention,
  PositionalEmbedding,
  ReLU,
  Residual,
  Sequential,
  SoftmaxCrossEntropy,
  spiralData,
  Tensor,
  webgpuStatus,
} from "../../../mod.ts";
import { type GpuReport, RUN } from "./gpu_run.ts";

function model(): Sequential {
  return new Sequential([
    new Dense(2, 32, { seed: 1 }),
    new ReLU(),
    new Dense(32, RUN.classes, { seed: 2 }),
  ]);
}

function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1);
}

async function train(device: "webgpu" | "cpu") {
  const { x, y } = spiralData(RUN.samplesPerClass, RUN.classes, { seed: 7 });
  const net = model();
  const started = performance.now();
  const epochMs: number[] = [];
  const history = await net.fitAsync(x, y, {
    loss: new SoftmaxCrossEntropy(),
    optimizer: new Adam({ learningRate: 0.05 }),
    epochs: RUN.epochs,
    batchSize: RUN.batchSize,
    seed: 3,
    device,
    onEpoch: () => epochMs.push(performance.now() - started),
  });
  const figures = { loss: history.loss, accuracy: history.accuracy, epochMs };
  return { net, x, figures };
}

/** Runs the comparison; a rejection of the library becomes `{ error }`. */
async function runGpuInPage(): Promise<GpuReport> {
  const status = await webgpuStatus();
  if (!status.available) return { available: false, reason: status.reason };
  const { vendor, architecture, description } = status.adapter.info;
  try {
    const gpu = await train("webgpu");
    const cpu = await train("cpu");
    const gpuParams = gpu.net.params();
    const weightsError = Math.max(
      ...cpu.net.params().map((param, i) =>
        relativeError(gpuParams[i].value.data, param.value.data)
      ),
    );
    const predicted = await gpu.net.predictAsync(gpu.x, { device: "webgpu", batchSize: 64 });
    const expected = gpu.net.predict(gpu.x);
    return {
      available: true,
      adapter: { vendor, architecture, description },
      gpu: gpu.figures,
      cpu: cpu.figures,
      weightsError,
      predictError: relativeError(predicted.data, expected.data),
      predictShape: [...predicted.shape],
    };
  } catch (error) {
    return { available: true, error: (error as Error)?.stack ?? String(error) };
  }
}

// Every other kind of layer, in three small models: a CNN (Conv2D, BatchNorm, MaxPool2D,
// AvgPool2D, GlobalAvgPool2D, Flatten), a tiny GPT (Embedding, PositionalEmbedding, Residual,
// LayerNorm, causal MultiHeadAttention, GELU) and a char LSTM. Dropout is left out: its masks
// differ between the devices by design.
function models(): Record<string, { build: () => Sequential; x: Tensor; y: Tensor }> {
  const images = Tensor.zeros([12, 2, 8, 8]), labels = Tensor.zeros([12]);
  for (let i = 0; i < images.size; i++) images.data[i] = Math.sin(i * 0.37) + (i % 7) / 7;
  for (let n = 0; n < 12; n++) labels.data[n] = n % 3;
  const ids = Tensor.zeros([8, 6]), next = Tensor.zeros([8, 6]);
  for (let i = 0; i < ids.size; i++) {
    ids.data[i] = (i * 3) % 11;
    next.data[i] = (i * 3 + 3) % 11;
  }
  return {
    cnn: {
      x: images,
      y: labels,
      build: () =>
        new Sequential([
          new Conv2D(2, 4, 3, { padding: 1, seed: 1 }),
          new BatchNorm(4),
          new ReLU(),
          new MaxPool2D(2),
          new Conv2D(4, 4, 3, { padding: 1, seed: 2 }),
          new AvgPool2D(2),
          new GlobalAvgPool2D(),
          new Flatten(),
          new Dense(4, 3, { seed: 3 }),
        ]),
    },
    gpt: {
      x: ids,
      y: next,
      build: () =>
        new Sequential([
          new Embedding(11, 8, { seed: 1 }),
          new PositionalEmbedding(6, 8, { seed: 2 }),
          new Residual([new LayerNorm(8), new MultiHeadAttention(8, 2, { causal: true, seed: 3 })]),
          new Residual([
            new LayerNorm(8),
            new Dense(8, 16, { seed: 4 }),
            new GELU(),
            new Dense(16, 8, { seed: 5 }),
          ]),
          new Dense(8, 11, { seed: 6 }),
        ]),
    },
    lstm: {
      x: ids,
      y: next,
      build: () =>
        new Sequential([
          new Embedding(11, 6, { seed: 1 }),
          new LSTM(6, 8, { seed: 2 }),
          new Dense(8, 11, { seed: 3 }),
        ]),
    },
  };
}

/** Each model's epoch losses on "webgpu" and on "cpu" (or the error). */
async function runModelsInPage(): Promise<
  Record<string, { gpu: number[]; cpu: number[] } | string>
> {
  const report: Record<string, { gpu: number[]; cpu: number[] } | string> = {};
  for (const [name, { build, x, y }] of Object.entries(models())) {
    try {
      const losses = [];
      for (const device of ["webgpu", "cpu"] as const) {
        const history = await build().fitAsync(x, y, {
          loss: new SoftmaxCrossEntropy(),
          optimizer: new Adam({ learningRate: 0.01 }),
          epochs: 3,
          batchSize: 5,
          device,
        });
        losses.push(history.loss);
      }
      report[name] = { gpu: losses[0], cpu: losses[1] };
    } catch (error) {
      report[name] = (error as Error)?.stack ?? String(error);
    }
  }
  return report;
}

Object.defineProperty(globalThis, "runGpuInPage", { value: runGpuInPage });
Object.defineProperty(globalThis, "runModelsInPage", { value: runModelsInPage });
