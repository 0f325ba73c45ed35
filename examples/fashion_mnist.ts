// The book's final model on Fashion-MNIST: deno run --allow-read examples/fashion_mnist.ts
import { parseArgs } from "node:util";
import {
  Adam,
  argmaxRows,
  Dense,
  historyPlot,
  RandomState,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  takeRows,
} from "../mod.ts";
import { CLASSES, DEFAULT_DATA, loadFashion, requireWrite } from "./_fashion.ts";
import { integerFlag } from "./_cli.ts";

const HELP = `Train the book's Fashion-MNIST classifier (chapter 19):
Dense(784,128) → ReLU → Dense(128,128) → ReLU → Dense(128,10), softmax cross-entropy,
Adam(learningRate=0.001, decay=1e-3), batch 128, inputs scaled to [-1, 1] as (x − 127.5)/127.5.
Reports the test accuracy (the book reaches about 0.88).

Usage: deno run --allow-read examples/fashion_mnist.ts [options]

Options:
  --data DIR        folder with the four IDX files (.gz or plain)
                    (default ${DEFAULT_DATA}, from: apt-get install dataset-fashion-mnist)
  --epochs N        epochs (default 10, as the book)
  --batch-size N    samples per step (default 128, as the book)
  --seed S          seed of the initial weights and the shuffling (default 0)
  --verbose V       0 silent, 1 progress bar (default), 2 one line per epoch
  --plot FILE.svg   write the loss and accuracy curves as SVG (needs --allow-write)
  --predict N       print the predicted and the true class of the first N test images
  --help            show this help`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    data: { type: "string", default: DEFAULT_DATA },
    epochs: { type: "string", default: "10" },
    "batch-size": { type: "string", default: "128" },
    seed: { type: "string", default: "0" },
    verbose: { type: "string", default: "1" },
    plot: { type: "string" },
    predict: { type: "string", default: "0" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}

const flag = (name: string, text: string, min: number, max?: number) =>
  integerFlag("fashion_mnist", HELP, name, text, min, max);
const epochs = flag("epochs", values.epochs, 1);
const batchSize = flag("batch-size", values["batch-size"], 1);
const seed = flag("seed", values.seed, 0);
const verbose = flag("verbose", values.verbose, 0, 2) as 0 | 1 | 2;
const predictCount = flag("predict", values.predict, 0, 10000);

requireWrite("fashion_mnist", [["plot", values.plot]]);

const started = performance.now();
// The book's scaling: (x − 127.5) / 127.5, into [-1, 1].
const { train, test } = await loadFashion("fashion_mnist", values.data, (x) => (x - 127.5) / 127.5);
console.log(
  `train ${train.x.shape[0]} × ${train.x.shape[1]}, test ${test.x.shape[0]} (loaded in ${
    ((performance.now() - started) / 1000).toFixed(1)
  } s)`,
);

// The book's layers: 0.01·randn weights, zero biases.
const random = new RandomState(seed);
const model = new Sequential([
  new Dense(784, 128, { init: "nnfs", random }),
  new ReLU(),
  new Dense(128, 128, { init: "nnfs", random }),
  new ReLU(),
  new Dense(128, 10, { init: "nnfs", random }),
]);
const loss = new SoftmaxCrossEntropy();
const optimizer = new Adam({ learningRate: 0.001, decay: 1e-3 });
console.log(`${model}\n${optimizer}, ${epochs} epochs, batch ${batchSize}`);

const trainStarted = performance.now();
const history = model.fit(train.x, train.y, {
  loss,
  optimizer,
  epochs,
  batchSize,
  seed,
  validationData: test,
  verbose,
});
const trainSeconds = (performance.now() - trainStarted) / 1000;
const result = model.evaluate(test.x, test.y, { loss, batchSize: 1000 });
console.log(
  `test: accuracy ${result.accuracy.toFixed(4)}, loss ${result.loss.toFixed(4)} ` +
    `(training ${trainSeconds.toFixed(1)} s, ${(trainSeconds / epochs).toFixed(1)} s per epoch)`,
);
if (predictCount > 0) {
  // The book's chapter 22: inference on images, class indices turned back into names.
  const rows = Array.from({ length: predictCount }, (_, i) => i);
  const predicted = argmaxRows(model.predict(takeRows(test.x, rows)));
  for (const i of rows) {
    console.log(`image ${i}: predicted ${CLASSES[predicted[i]]}, true ${CLASSES[test.y[i]]}`);
  }
}
if (values.plot) {
  await Deno.writeTextFile(values.plot, historyPlot(history));
  console.log(`wrote ${values.plot}`);
}
