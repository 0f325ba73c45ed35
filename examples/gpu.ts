// Trains the same model on the CPU and on the GPU (WebGPU) and compares them:
//   deno run examples/gpu.ts [--model mlp|cnn|gpt] [--epochs N] [--batch-size N]
import { parseArgs } from "node:util";
import {
  Adam,
  Conv2D,
  Dense,
  Embedding,
  Flatten,
  GELU,
  type History,
  LayerNorm,
  MaxPool2D,
  MultiHeadAttention,
  PositionalEmbedding,
  RandomState,
  ReLU,
  Residual,
  Sequential,
  SoftmaxCrossEntropy,
  spiralData,
  Tensor,
  webgpuStatus,
} from "../mod.ts";

const HELP = `Train one model on the CPU and on the GPU (WebGPU) and compare the two runs.

Usage: deno run examples/gpu.ts [options]

Options:
  --model NAME      mlp (the book's spiral, 3 classes), cnn (a small CNN on made-up 16×16 images)
                    or gpt (a tiny GPT on a periodic text); default mlp
  --epochs N        epochs (default 20)
  --batch-size N    samples per step (default 64)
  --help            show this help

WebGPU needs a GPU driver: on Debian without a GPU, apt-get install mesa-vulkan-drivers gives a
software adapter (a CPU emulation: right answers, no speed).`;

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "mlp" },
    epochs: { type: "string", default: "20" },
    "batch-size": { type: "string", default: "64" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}

interface Task {
  build: () => Sequential;
  x: Tensor;
  y: Tensor | Int32Array;
}

function mlp(): Task {
  const { x, y } = spiralData(1000, 3);
  const build = () =>
    new Sequential([
      new Dense(2, 64, { seed: 1 }),
      new ReLU(),
      new Dense(64, 64, { seed: 2 }),
      new ReLU(),
      new Dense(64, 3, { seed: 3 }),
    ]);
  return { build, x, y };
}

// Images of a bright bar, horizontal (class 0) or vertical (class 1), in noise.
function cnn(): Task {
  const samples = 512, size = 16;
  const random = new RandomState(0);
  const x = Tensor.zeros([samples, 1, size, size]);
  const y = new Int32Array(samples);
  for (let n = 0; n < samples; n++) {
    y[n] = n % 2;
    const at = 2 + random.randint(size - 4);
    for (let i = 0; i < size * size; i++) {
      const row = Math.floor(i / size), col = i % size;
      const bar = y[n] === 0 ? row === at : col === at;
      x.data[n * size * size + i] = (bar ? 1 : 0) + 0.3 * random.randn();
    }
  }
  const build = () =>
    new Sequential([
      new Conv2D(1, 8, 3, { padding: 1, seed: 1 }),
      new ReLU(),
      new MaxPool2D(2),
      new Conv2D(8, 16, 3, { padding: 1, seed: 2 }),
      new ReLU(),
      new MaxPool2D(2),
      new Flatten(),
      new Dense(256, 2, { seed: 3 }),
    ]);
  return { build, x, y };
}

// Next-token prediction on "abcdefghij" repeated, from every offset.
function gpt(): Task {
  const vocabulary = 10, context = 16, dim = 32, samples = 256;
  const x = Tensor.zeros([samples, context]), y = Tensor.zeros([samples, context]);
  for (let n = 0; n < samples; n++) {
    for (let t = 0; t < context; t++) {
      x.data[n * context + t] = (n + t) % vocabulary;
      y.data[n * context + t] = (n + t + 1) % vocabulary;
    }
  }
  const build = () =>
    new Sequential([
      new Embedding(vocabulary, dim, { seed: 1 }),
      new PositionalEmbedding(context, dim, { seed: 2 }),
      new Residual([new LayerNorm(dim), new MultiHeadAttention(dim, 4, { causal: true, seed: 3 })]),
      new Residual([
        new LayerNorm(dim),
        new Dense(dim, 4 * dim, { seed: 4 }),
        new GELU(),
        new Dense(4 * dim, dim, { seed: 5 }),
      ]),
      new LayerNorm(dim),
      new Dense(dim, vocabulary, { seed: 6 }),
    ]);
  return { build, x, y };
}

const tasks: Record<string, () => Task> = { mlp, cnn, gpt };
const make = tasks[values.model!];
if (!make) {
  console.error(`gpu: --model must be mlp, cnn or gpt, got ${values.model}`);
  Deno.exit(2);
}
const epochs = Number(values.epochs), batchSize = Number(values["batch-size"]);
const { build, x, y } = make();

const status = await webgpuStatus();
console.log(
  status.available
    ? `WebGPU adapter: ${status.adapter.info.description || status.adapter.info.vendor}` +
      (status.adapter.info.isFallbackAdapter ? " (a software adapter: expect no speed-up)" : "")
    : `WebGPU is not available: ${status.reason}`,
);

async function train(device: "cpu" | "webgpu"): Promise<[History, number]> {
  const model = build();
  const start = performance.now();
  const history = await model.fitAsync(x, y, {
    loss: new SoftmaxCrossEntropy(),
    optimizer: new Adam({ learningRate: 0.005 }),
    epochs,
    batchSize,
    device,
  });
  return [history, performance.now() - start];
}

const report = (device: string, [history, ms]: [History, number]) =>
  console.log(
    `${device.padEnd(6)} loss ${history.loss[0].toFixed(4)} → ${
      history.loss.at(-1)!.toFixed(4)
    }, ` +
      `accuracy ${history.accuracy.at(-1)!.toFixed(3)}, ${(ms / epochs).toFixed(1)} ms an epoch`,
  );
const cpu = await train("cpu");
report("cpu", cpu);
if (status.available) {
  const gpu = await train("webgpu");
  report("webgpu", gpu);
  const differences = cpu[0].loss.map((l, i) => Math.abs(l - gpu[0].loss[i]) / l);
  console.log(
    `relative difference of the epoch losses: ${differences[0].toExponential(2)} after the first ` +
      `epoch, at most ${Math.max(...differences).toExponential(2)} over all`,
  );
  // The GPU sums in another order than the CPU: float32 rounding differs in the last bits,
  // and a long run amplifies that as training does any perturbation (the CPU's own js and
  // wasm backends drift apart alike, to about 1e-3 on the mlp after 20 epochs).
  if (Math.max(...differences) > 1e-4) {
    console.log(
      "(float32 rounding in another order, amplified by training: the CPU's js and wasm " +
        "backends drift apart alike)",
    );
  }
}
