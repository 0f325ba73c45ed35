// The book's regression of a sine wave (chapter 17): deno run examples/sine_regression.ts
import { parseArgs } from "node:util";
import {
  Adam,
  Dense,
  initializers,
  Linear,
  MeanSquaredError,
  RandomState,
  ReLU,
  Sequential,
  Tensor,
} from "../mod.ts";
import { integerFlag, trainingFlags, trainingHelp, usageError } from "./_cli.ts";

const HELP = `Fit y = sin(2πx) on the book's sine data (x = 0, 0.001, …, 0.999) with
Dense(1,64) → ReLU → Dense(64,64) → ReLU → Dense(64,1) → Linear, mean squared error and
Adam (learning rate 0.005, decay 1e-3), as the book does.

Usage: deno run examples/sine_regression.ts [options]

Options:
  --init NAME       book (0.1·randn, the book's regression chapter; the default) or a named
                    initializer: ${Object.keys(initializers).join(", ")}
${trainingHelp("seed of the initial weights (default 0)")}`;

const { values } = parseArgs({
  args: Deno.args,
  options: { ...trainingFlags, init: { type: "string", default: "book" } },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}

const flag = (name: string, text: string, min: number) =>
  integerFlag("sine_regression", HELP, name, text, min);
const epochs = flag("epochs", values.epochs, 1);
const seed = flag("seed", values.seed, 0);
const printEvery = flag("print-every", values["print-every"], 1);
if (values.init !== "book" && !Object.hasOwn(initializers, values.init)) {
  usageError("sine_regression", `unknown --init "${values.init}"`, HELP);
}

// nnfs.datasets.sine_data(1000): X = arange(1000).reshape(-1, 1) / 1000, y = sin(2πX).
const samples = 1000;
const x = Tensor.zeros([samples, 1]);
const y = Tensor.zeros([samples, 1]);
for (let i = 0; i < samples; i++) {
  const v = i / samples;
  x.data[i] = v;
  y.data[i] = Math.sin(2 * Math.PI * v);
}

// The book's regression accuracy: the fraction of predictions within std(y) / 250 of y.
function standardDeviation(values: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < values.length; i++) mean += values[i] / values.length;
  let variance = 0;
  for (let i = 0; i < values.length; i++) variance += (values[i] - mean) ** 2 / values.length;
  return Math.sqrt(variance);
}
const precision = standardDeviation(y.data) / 250;
function regressionAccuracy(outputs: Tensor): number {
  let close = 0;
  for (let i = 0; i < samples; i++) if (Math.abs(outputs.data[i] - y.data[i]) < precision) close++;
  return close / samples;
}

// The book's regression chapter draws weights as 0.1·randn (its 0.01·randn does not learn
// here); any named initializer can be tried instead.
const random = new RandomState(seed);
function dense(inFeatures: number, outFeatures: number): Dense {
  if (values.init !== "book") {
    return new Dense(inFeatures, outFeatures, { init: values.init, random });
  }
  const weights = Float64Array.from(
    { length: inFeatures * outFeatures },
    () => 0.1 * random.randn(),
  );
  return new Dense(inFeatures, outFeatures, { weights });
}
const model = new Sequential([
  dense(1, 64),
  new ReLU(),
  dense(64, 64),
  new ReLU(),
  dense(64, 1),
  new Linear(),
]);
const optimizer = new Adam({ learningRate: 0.005, decay: 1e-3 });
console.log(`${model}\n${optimizer}, ${epochs} epochs, init ${values.init}, seed ${seed}`);

const started = performance.now();
model.fit(x, y, {
  loss: new MeanSquaredError(),
  optimizer,
  epochs,
  onEpoch(epoch, logs) {
    if (epoch % printEvery === 0 || epoch === epochs - 1) {
      console.log(
        `epoch: ${epoch}, acc: ${regressionAccuracy(model.predict(x)).toFixed(3)}, ` +
          `loss: ${logs.loss.toFixed(6)}, lr: ${optimizer.currentLearningRate.toPrecision(6)}`,
      );
    }
  },
});
const seconds = (performance.now() - started) / 1000;
const predictions = model.predict(x);
let worst = 0;
for (let i = 0; i < samples; i++) {
  worst = Math.max(worst, Math.abs(predictions.data[i] - y.data[i]));
}
console.log(
  `final: accuracy ${regressionAccuracy(predictions).toFixed(3)} (|error| < ${
    precision.toPrecision(3)
  }), largest |error| ${worst.toFixed(4)} (${seconds.toFixed(1)} s)`,
);
