// Trains the book's spiral classifier: deno run examples/spiral.ts [--epochs N] [--seed S] ...
import { parseArgs } from "node:util";
import {
  accuracy,
  combineSvg,
  decisionBoundaryPlot,
  Dense,
  Dropout,
  historyPlot,
  type Layer,
  loadModel,
  RandomState,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  spiralData,
  takeRows,
} from "../mod.ts";
import {
  numberFlag,
  optimizerFlags,
  optimizerFromFlags,
  optimizerHelp,
  type ReportingOptimizer,
} from "./_optimizers.ts";

const HELP =
  `Train Dense(2,64) → ReLU → [Dropout] → Dense(64,3) on the book's spiral data (3 classes).

Usage: deno run examples/spiral.ts [options]

Options:
  --epochs N        epochs (default 10001, as the book)
  --seed S          seed of the data and the initial weights (default 0, as the book)
  --print-every N   print progress every N epochs (default 1000)
  --samples N       points per class (default 100; the book's dropout chapter uses 1000)
  --batch-size N    samples per step (default: all of them, full batch as the book)
  --validation F    hold out a fraction F in (0, 1) of the (shuffled) points for validation
${optimizerHelp}
  --dropout RATE    add Dropout(RATE) after the ReLU (the book's chapter 15 uses 0.1)
  --l2 X            L2 penalty X on the first layer's weights and biases (the book: 5e-4)
  --plot FILE.svg   write the decision boundary and the training curves as SVG
                    (needs --allow-write)
  --save FILE       save the trained model and its optimizer state to FILE (safetensors);
                    needs --allow-read --allow-write
  --load FILE       continue training a model saved with --save for --epochs more epochs,
                    on the data of its seed; --epochs 0 only evaluates it. Needs --allow-read
  --help            show this help

Exact resume: 5000 epochs, --save, then --load with --epochs 5001 ends bit for bit where
10001 epochs at once end. Example:
  deno run --allow-write examples/spiral.ts --optimizer sgd-momentum --plot spiral.svg`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    epochs: { type: "string", default: "10001" },
    seed: { type: "string", default: "0" },
    "print-every": { type: "string", default: "1000" },
    samples: { type: "string", default: "100" },
    "batch-size": { type: "string" },
    validation: { type: "string" },
    ...optimizerFlags,
    dropout: { type: "string", default: "0" },
    l2: { type: "string", default: "0" },
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

function fail(message: string): never {
  console.error(`spiral: ${message}\n\n${HELP}`);
  Deno.exit(2);
}

function integerFlag(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) {
    fail(`--${name} must be an integer ≥ ${min}, got "${text}"`);
  }
  return value;
}
const epochs = integerFlag("epochs", values.epochs, values.load ? 0 : 1);
const printEvery = integerFlag("print-every", values["print-every"], 1);
const samples = integerFlag("samples", values.samples, 2);
const batchSize = values["batch-size"] === undefined
  ? undefined
  : integerFlag("batch-size", values["batch-size"], 1);
const validation = values.validation === undefined ? undefined : Number(values.validation);
if (validation !== undefined && !(validation > 0 && validation < 1)) {
  fail(`--validation must be a fraction in (0, 1), got "${values.validation}"`);
}

// Asked before training, so that a long run does not fail at its end.
for (const flag of ["plot", "save"] as const) {
  const path = values[flag];
  if (path && Deno.permissions.requestSync({ name: "write", path }).state !== "granted") {
    fail(`--${flag} needs write access: deno run --allow-read --allow-write examples/spiral.ts`);
  }
}
const loaded = values.load ? await loadModel(values.load) : undefined;
const done = Number(loaded?.metadata.epochs ?? 0); // epochs the loaded model has had
const seed = integerFlag("seed", loaded?.metadata.seed ?? values.seed, 0);

function build() {
  const l2 = numberFlag("l2", values.l2, 0);
  const rate = numberFlag("dropout", values.dropout, 0);
  // As the book: one generator seeds the data, then the weights (0.01·randn), then the masks.
  const random = new RandomState(seed);
  const data = spiralData(samples, 3, { random });
  if (loaded) {
    const optimizer = loaded.optimizer as ReportingOptimizer | undefined;
    if (!optimizer || typeof optimizer.currentLearningRate !== "number") {
      throw new TypeError(`${values.load} holds no optimizer state to continue from`);
    }
    return { ...data, model: loaded.model, optimizer };
  }
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
  fail((error as Error).message);
}
const { model, optimizer } = setup;
let { x, y } = setup;
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
      const reg = logs.regularizationLoss
        ? `reg_loss: ${logs.regularizationLoss.toFixed(3)}, `
        : "";
      const val = validation
        ? `val_acc: ${logs.valAccuracy.toFixed(3)}, val_loss: ${logs.valLoss.toFixed(3)}, `
        : "";
      const acc = logs.accuracy?.toFixed(3);
      const lr = optimizer.currentLearningRate.toPrecision(6);
      console.log(
        `epoch: ${epoch}, acc: ${acc}, loss: ${logs.loss.toFixed(3)}, ${reg}${val}lr: ${lr}`,
      );
    }
  },
});
const seconds = (performance.now() - started) / 1000;
const final = `loss ${history.loss.at(-1)!.toFixed(4)}, accuracy ${
  history.accuracy.at(-1)!.toFixed(3)
}`;
console.log(`final: ${final} (${seconds.toFixed(1)} s)`);
if (values.dropout !== "0") {
  // The training accuracy above is measured with dropout active; inference runs without it.
  console.log(`inference accuracy after training: ${accuracy(model.predict(x), y).toFixed(3)}`);
}
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
