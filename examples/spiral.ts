// Trains the book's spiral classifier: deno run examples/spiral.ts [--epochs N] [--seed S]
import { parseArgs } from "node:util";
import {
  Adam,
  Dense,
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
  --help            show this help`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    epochs: { type: "string", default: "10001" },
    seed: { type: "string", default: "0" },
    "print-every": { type: "string", default: "1000" },
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
const epochs = integerFlag("epochs", values.epochs, 1);
const seed = integerFlag("seed", values.seed, 0);
const printEvery = integerFlag("print-every", values["print-every"], 1);

// As the book: one generator seeds the data, then the weights (0.01·randn).
const random = new RandomState(seed);
const { x, y } = spiralData(100, 3, { random });
const model = new Sequential([
  new Dense(2, 64, { init: "nnfs", random }),
  new ReLU(),
  new Dense(64, 3, { init: "nnfs", random }),
]);
const optimizer = new Adam({ learningRate: 0.05, decay: 5e-7 });
console.log(`${model}\n${optimizer}, ${epochs} epochs, seed ${seed}`);

const started = performance.now();
const history = model.fit(x, y, {
  loss: new SoftmaxCrossEntropy(),
  optimizer,
  epochs,
  onEpoch(epoch, logs) {
    if (epoch % printEvery === 0 || epoch === epochs - 1) {
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
