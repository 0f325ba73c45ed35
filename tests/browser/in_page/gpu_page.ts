// The page of the GPU test (tests/browser/gpu_test.ts): what webgpuStatus() says in Chromium
// and, where WebGPU is available, the same small MLP trained with fitAsync on "webgpu" and on
// "cpu" from the same weights, and predictAsync on "webgpu" against predict.
import {
  Adam,
  Dense,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  spiralData,
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

Object.defineProperty(globalThis, "runGpuInPage", { value: runGpuInPage });
