// Trains the book's spiral classifier: deno run examples/spiral.ts [--epochs N] [--seed S]
import { parseArgs } from "node:util";
import {
  accuracy,
  Adam,
  Dense,
  loadModel,
  RandomState,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  spiralData,
} from "../mod.ts";

const HELP =
  `Train Dense(2,64) → ReLU → Dense(64,3) on the book's spiral data (3 classes × 100 points).

Usage: deno run examples/spiral.ts [options]

Options:
  --epochs N        full-batch epochs (default 10001, as the book)
  --seed S          seed of the data and the initial weights (default 0, as the book)
  --print-every N   print progress every N epochs (default 1000)
  --save FILE       save the trained model and its optimizer state to FILE (safetensors);
                    needs --allow-read --allow-write
  --load FILE       continue training a model saved with --save for --epochs more epochs,
                    on the data of its seed; --epochs 0 only evaluates it. Needs --allow-read
  --help            show this help

Exact resume: 5000 epochs, --save, then --load with --epochs 5001 ends bit for bit where
10001 epochs at once end.`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    epochs: { type: "string", default: "10001" },
    seed: { type: "string", default: "0" },
    "print-every": { type: "string", default: "1000" },
    save: { type: "string" },
    load: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}

function integerFlag(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) {
    console.error(`spiral: --${name} must be an integer ≥ ${min}, got "${text}"\n\n${HELP}`);
    Deno.exit(2);
  }
  return value;
}
const epochs = integerFlag("epochs", values.epochs, values.load ? 0 : 1);
const printEvery = integerFlag("print-every", values["print-every"], 1);
const loaded = values.load ? await loadModel(values.load) : undefined;
const done = Number(loaded?.metadata.epochs ?? 0); // epochs the loaded model has had
const seed = integerFlag("seed", loaded?.metadata.seed ?? values.seed, 0);

// As the book: one generator seeds the data, then the weights (0.01·randn).
const random = new RandomState(seed);
const { x, y } = spiralData(100, 3, { random });
const model = loaded?.model ?? new Sequential([
  new Dense(2, 64, { init: "nnfs", random }),
  new ReLU(),
  new Dense(64, 3, { init: "nnfs", random }),
]);
const optimizer = loaded?.optimizer ?? new Adam({ learningRate: 0.05, decay: 5e-7 });
if (!(optimizer instanceof Adam)) throw new TypeError(`spiral: ${values.load} holds no Adam state`);
const from = loaded ? `, after ${done} epochs saved in ${values.load}` : "";
console.log(`${model}\n${optimizer}, ${epochs} epochs, seed ${seed}${from}`);
if (epochs === 0) {
  const outputs = model.predict(x);
  const loss = new SoftmaxCrossEntropy().forward(outputs, y);
  console.log(`evaluated: loss ${loss.toFixed(4)}, accuracy ${accuracy(outputs, y).toFixed(3)}`);
  Deno.exit(0);
}

const started = performance.now();
const history = model.fit(x, y, {
  loss: new SoftmaxCrossEntropy(),
  optimizer,
  epochs: done + epochs,
  initialEpoch: done,
  onEpoch(epoch, logs) {
    if (epoch % printEvery === 0 || epoch === done + epochs - 1) {
      console.log(
        `epoch: ${epoch}, acc: ${logs.accuracy?.toFixed(3)}, loss: ${logs.loss.toFixed(3)}, ` +
          `lr: ${optimizer.currentLearningRate.toPrecision(6)}`,
      );
    }
  },
});
const seconds = (performance.now() - started) / 1000;
console.log(
  `final: loss ${history.loss.at(-1)!.toFixed(4)}, accuracy ${
    history.accuracy.at(-1)!.toFixed(3)
  } ` +
    `(${seconds.toFixed(1)} s)`,
);
if (values.save) {
  const metadata = { epochs: String(done + epochs), seed: String(seed) };
  await model.save(values.save, { optimizer, metadata });
  console.log(`saved ${values.save} (${done + epochs} epochs)`);
}
