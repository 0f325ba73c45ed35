// The book's binary classifier (chapter 16): deno run examples/binary_classification.ts
import { parseArgs } from "node:util";
import {
  Adam,
  BinaryCrossEntropy,
  Dense,
  RandomState,
  ReLU,
  Sequential,
  Sigmoid,
  spiralData,
  Tensor,
} from "../mod.ts";
import { integerFlag, trainingFlags, trainingHelp } from "./_cli.ts";

const HELP =
  `Train Dense(2,64, L2 5e-4) → ReLU → Dense(64,1) → Sigmoid with binary cross-entropy on the
book's two-class spiral (2 classes × 100 points, labels as a [200, 1] column), then test it on
a fresh spiral drawn from the same generator.

Usage: deno run examples/binary_classification.ts [options]

Options:
${trainingHelp("seed of the data and the initial weights (default 0, as the book)")}`;

const { values } = parseArgs({
  args: Deno.args,
  options: trainingFlags,
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}

const flag = (name: string, text: string, min: number) =>
  integerFlag("binary_classification", HELP, name, text, min);
const epochs = flag("epochs", values.epochs, 1);
const seed = flag("seed", values.seed, 0);
const printEvery = flag("print-every", values["print-every"], 1);

// The book's binary accuracy: the fraction of outputs on the right side of 0.5.
function binaryAccuracy(outputs: Tensor, targets: Tensor): number {
  let correct = 0;
  for (let i = 0; i < outputs.size; i++) {
    if ((outputs.data[i] > 0.5 ? 1 : 0) === targets.data[i]) correct++;
  }
  return correct / outputs.size;
}

// spiral_data(100, 2) with y.reshape(-1, 1): one 0/1 target per sample, as a column.
function binarySpiral(random: RandomState): { x: Tensor; y: Tensor } {
  const { x, y } = spiralData(100, 2, { random });
  return { x, y: new Tensor(Float32Array.from(y), [y.length, 1]) };
}

// As the book: one generator draws the data, then the weights (0.01·randn), then the test data.
const random = new RandomState(seed);
const { x, y } = binarySpiral(random);
const penalty = { weightRegularizerL2: 5e-4, biasRegularizerL2: 5e-4 };
const model = new Sequential([
  new Dense(2, 64, { init: "nnfs", random, ...penalty }),
  new ReLU(),
  new Dense(64, 1, { init: "nnfs", random }),
  new Sigmoid(),
]);
const optimizer = new Adam({ decay: 5e-7 });
console.log(`${model}\n${optimizer}, ${epochs} epochs, seed ${seed}`);

const started = performance.now();
model.fit(x, y, {
  loss: new BinaryCrossEntropy(),
  optimizer,
  epochs,
  onEpoch(epoch, logs) {
    if (epoch % printEvery === 0 || epoch === epochs - 1) {
      console.log(
        `epoch: ${epoch}, acc: ${binaryAccuracy(model.predict(x), y).toFixed(3)}, ` +
          `data_loss: ${logs.loss.toFixed(3)}, reg_loss: ${logs.regularizationLoss.toFixed(3)}, ` +
          `lr: ${optimizer.currentLearningRate.toPrecision(6)}`,
      );
    }
  },
});
const seconds = (performance.now() - started) / 1000;
const test = binarySpiral(random);
console.log(
  `final: training accuracy ${binaryAccuracy(model.predict(x), y).toFixed(3)}, ` +
    `test accuracy ${binaryAccuracy(model.predict(test.x), test.y).toFixed(3)} ` +
    `(${seconds.toFixed(1)} s)`,
);
