// Trains the book's spiral classifier: deno run examples/spiral.ts [--epochs N] [--seed S]
import { parseArgs } from "node:util";
import {
  accuracy,
  Dense,
  Dropout,
  type Layer,
  RandomState,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  spiralData,
} from "../mod.ts";
import { numberFlag, optimizerFlags, optimizerFromFlags, optimizerHelp } from "./_optimizers.ts";

const HELP =
  `Train Dense(2,64) → ReLU → [Dropout] → Dense(64,3) on the book's spiral data (3 classes).

Usage: deno run examples/spiral.ts [options]

Options:
  --epochs N        full-batch epochs (default 10001, as the book)
  --seed S          seed of the data and the initial weights (default 0, as the book)
  --print-every N   print progress every N epochs (default 1000)
  --samples N       points per class (default 100; the book's dropout chapter uses 1000)
${optimizerHelp}
  --dropout RATE    add Dropout(RATE) after the ReLU (the book's chapter 15 uses 0.1)
  --l2 X            L2 penalty X on the first layer's weights and biases (the book: 5e-4)
  --help            show this help`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    epochs: { type: "string", default: "10001" },
    seed: { type: "string", default: "0" },
    "print-every": { type: "string", default: "1000" },
    samples: { type: "string", default: "100" },
    ...optimizerFlags,
    dropout: { type: "string", default: "0" },
    l2: { type: "string", default: "0" },
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
const samples = integerFlag("samples", values.samples, 2);

function build() {
  const l2 = numberFlag("l2", values.l2, 0);
  const rate = numberFlag("dropout", values.dropout, 0);
  // As the book: one generator seeds the data, then the weights (0.01·randn), then the masks.
  const random = new RandomState(seed);
  const data = spiralData(samples, 3, { random });
  const penalty = { weightRegularizerL2: l2, biasRegularizerL2: l2 };
  const layers: Layer[] = [new Dense(2, 64, { init: "nnfs", random, ...penalty }), new ReLU()];
  if (rate > 0) layers.push(new Dropout(rate, { random }));
  layers.push(new Dense(64, 3, { init: "nnfs", random }));
  return { ...data, model: new Sequential(layers), optimizer: optimizerFromFlags(values) };
}
let setup: ReturnType<typeof build>;
try {
  setup = build();
} catch (error) {
  console.error(`spiral: ${(error as Error).message}\n\n${HELP}`);
  Deno.exit(2);
}
const { x, y, model, optimizer } = setup;
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
          (logs.regularizationLoss ? `reg_loss: ${logs.regularizationLoss.toFixed(3)}, ` : "") +
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
// The training accuracy above is measured with dropout active; inference runs without it.
console.log(`inference accuracy after training: ${accuracy(model.predict(x), y).toFixed(3)}`);
