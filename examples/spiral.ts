// Trains the book's spiral classifier: deno run examples/spiral.ts [--epochs N] [--seed S]
import { parseArgs } from "node:util";
import {
  accuracy,
  Adam,
  combineSvg,
  decisionBoundaryPlot,
  Dense,
  historyPlot,
  loadModel,
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
    "batch-size": { type: "string" },
    validation: { type: "string" },
    plot: { type: "string" },
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
const batchSize = values["batch-size"] === undefined
  ? undefined
  : integerFlag("batch-size", values["batch-size"], 1);
const validation = values.validation === undefined ? undefined : Number(values.validation);
if (validation !== undefined && !(validation > 0 && validation < 1)) {
  console.error(`spiral: --validation must be a fraction in (0, 1), got "${values.validation}"`);
  Deno.exit(2);
}

// Asked before training, so that a long run does not fail at its end.
for (const flag of ["plot", "save"] as const) {
  const path = values[flag];
  if (path && Deno.permissions.requestSync({ name: "write", path }).state !== "granted") {
    console.error(
      `spiral: --${flag} needs write access: deno run --allow-read --allow-write examples/spiral.ts ...`,
    );
    Deno.exit(2);
  }
}
const loaded = values.load ? await loadModel(values.load) : undefined;
const done = Number(loaded?.metadata.epochs ?? 0); // epochs the loaded model has had
const seed = integerFlag("seed", loaded?.metadata.seed ?? values.seed, 0);

// As the book: one generator seeds the data, then the weights (0.01·randn).
const random = new RandomState(seed);
let { x, y } = spiralData(100, 3, { random });
const model = loaded?.model ?? new Sequential([
  new Dense(2, 64, { init: "nnfs", random }),
  new ReLU(),
  new Dense(64, 3, { init: "nnfs", random }),
]);
const optimizer = loaded?.optimizer ?? new Adam({ learningRate: 0.05, decay: 5e-7 });
if (!(optimizer instanceof Adam)) throw new TypeError(`spiral: ${values.load} holds no Adam state`);
if (validation) {
  // The points come sorted by class and the split takes the last ones: shuffle them first.
  const order = new RandomState(seed + 1).permutation(y.length);
  ({ x, y } = { x: takeRows(x, order), y: order.map((i) => y[i]) });
}
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
  batchSize,
  validationSplit: validation,
  onEpoch(epoch, logs) {
    if (epoch % printEvery === 0 || epoch === done + epochs - 1) {
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
if (values.save) {
  const metadata = { epochs: String(done + epochs), seed: String(seed) };
  await model.save(values.save, { optimizer, metadata });
  console.log(`saved ${values.save} (${done + epochs} epochs)`);
}
