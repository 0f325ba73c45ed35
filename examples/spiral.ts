// Trains the book's spiral classifier: deno run examples/spiral.ts [--epochs N] [--seed S]
import { parseArgs } from "node:util";
import {
  Adam,
  combineSvg,
  decisionBoundaryPlot,
  Dense,
  historyPlot,
  RandomState,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  spiralData,
  takeRows,
} from "../mod.ts";

const HELP =
  `Train Dense(2,64) → ReLU → Dense(64,3) on the book's spiral data (3 classes × 100 points).

Usage: deno run examples/spiral.ts [options]

Options:
  --epochs N        full-batch epochs (default 10001, as the book)
  --seed S          seed of the data and the initial weights (default 0, as the book)
  --print-every N   print progress every N epochs (default 1000)
  --batch-size N    samples per step (default: all 300, full batch as the book)
  --validation F    hold out a fraction F in (0, 1) of the (shuffled) points for validation
  --plot FILE.svg   write the decision boundary and the training curves as SVG
                    (needs --allow-write, e.g. deno run --allow-write examples/spiral.ts --plot spiral.svg)
  --help            show this help`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    epochs: { type: "string", default: "10001" },
    seed: { type: "string", default: "0" },
    "print-every": { type: "string", default: "1000" },
    "batch-size": { type: "string" },
    validation: { type: "string" },
    plot: { type: "string" },
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
const batchSize = values["batch-size"] === undefined
  ? undefined
  : integerFlag("batch-size", values["batch-size"], 1);
const validation = values.validation === undefined ? undefined : Number(values.validation);
if (validation !== undefined && !(validation > 0 && validation < 1)) {
  console.error(`spiral: --validation must be a fraction in (0, 1), got "${values.validation}"`);
  Deno.exit(2);
}

// Asked before training, so that a long run does not fail at its end.
if (
  values.plot &&
  Deno.permissions.requestSync({ name: "write", path: values.plot }).state !== "granted"
) {
  console.error(`spiral: --plot needs write access: deno run --allow-write examples/spiral.ts ...`);
  Deno.exit(2);
}

// As the book: one generator seeds the data, then the weights (0.01·randn).
const random = new RandomState(seed);
let { x, y } = spiralData(100, 3, { random });
const model = new Sequential([
  new Dense(2, 64, { init: "nnfs", random }),
  new ReLU(),
  new Dense(64, 3, { init: "nnfs", random }),
]);
const optimizer = new Adam({ learningRate: 0.05, decay: 5e-7 });
if (validation) {
  // The points come sorted by class and the split takes the last ones: shuffle them first.
  const order = new RandomState(seed + 1).permutation(y.length);
  ({ x, y } = { x: takeRows(x, order), y: order.map((i) => y[i]) });
}
console.log(`${model}\n${optimizer}, ${epochs} epochs, seed ${seed}`);

const started = performance.now();
const history = model.fit(x, y, {
  loss: new SoftmaxCrossEntropy(),
  optimizer,
  epochs,
  batchSize,
  validationSplit: validation,
  onEpoch(epoch, logs) {
    if (epoch % printEvery === 0 || epoch === epochs - 1) {
      const val = validation
        ? `val_acc: ${logs.valAccuracy.toFixed(3)}, val_loss: ${logs.valLoss.toFixed(3)}, `
        : "";
      const acc = logs.accuracy?.toFixed(3);
      const lr = optimizer.currentLearningRate.toPrecision(6);
      console.log(`epoch: ${epoch}, acc: ${acc}, loss: ${logs.loss.toFixed(3)}, ${val}lr: ${lr}`);
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
if (values.plot) {
  const boundary = decisionBoundaryPlot(model, x, y, { title: "spiral: decision boundary" });
  await Deno.writeTextFile(values.plot, combineSvg([boundary, historyPlot(history)]));
  console.log(`wrote ${values.plot}`);
}
