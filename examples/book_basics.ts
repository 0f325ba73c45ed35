// The book's chapters 2 to 5 (and the combined softmax and loss gradient of chapter 9), with
// chainrule's own plugins: deno run examples/book_basics.ts
// Every array is float64, as plain NumPy computes; the spiral network is float32, as the
// book runs it after nnfs.init().
import {
  accuracy,
  CategoricalCrossEntropy,
  Dense,
  RandomState,
  ReLU,
  Softmax,
  SoftmaxCrossEntropy,
  spiralData,
  Tensor,
} from "../mod.ts";

const f64 = { dtype: "float64" } as const;
// NumPy's way of printing an element: the shortest digits that read back as the same value
// in its own precision, at most 8 after the point.
function num(value: number, float32 = false): string {
  let digits = 1;
  const same = (text: string) => (float32 ? Math.fround(Number(text)) : Number(text)) === value;
  while (digits < 17 && !same(value.toPrecision(digits))) digits++;
  return String(Number(Number(value.toPrecision(digits)).toFixed(8)));
}
const show = (t: Tensor): string => {
  const float32 = t.dtype === "float32";
  const rows = t.toArray<number[][]>();
  return `[${rows.map((row) => `[${row.map((v) => num(v, float32)).join(", ")}]`).join(", ")}]`;
};

// Chapter 2: a neuron is a weighted sum plus a bias; a layer is several; a batch is rows.
const neuron = new Dense(3, 1, { weights: [[0.2], [0.8], [-0.5]], biases: [2], ...f64 });
console.log("ch2 one neuron:", num(neuron.forward(Tensor.from([[1, 2, 3]], f64)).get(0, 0)));
// The book writes one row of weights per neuron; chainrule keeps them [inputs, neurons].
const weights = [[0.2, 0.8, -0.5, 1], [0.5, -0.91, 0.26, -0.5], [-0.26, -0.27, 0.17, 0.87]];
const transpose = (rows: number[][]) => rows[0].map((_, j) => rows.map((row) => row[j]));
const layer1 = new Dense(4, 3, { weights: transpose(weights), biases: [2, 3, 0.5], ...f64 });
console.log("ch2 a layer:", show(layer1.forward(Tensor.from([[1, 2, 3, 2.5]], f64))));
const batch = Tensor.from([[1, 2, 3, 2.5], [2, 5, -1, 2], [-1.5, 2.7, 3.3, -0.8]], f64);
const hidden = layer1.forward(batch);
console.log("ch2 a batch:", show(hidden));

// Chapter 3: layers chain, the outputs of one the inputs of the next.
const weights2 = [[0.1, -0.14, 0.5], [-0.5, 0.12, -0.33], [-0.44, 0.73, -0.13]];
const layer2 = new Dense(3, 3, { weights: transpose(weights2), biases: [-1, 2, -0.5], ...f64 });
console.log("ch3 two layers:", show(layer2.forward(hidden)));

// Chapter 4: ReLU keeps the positive part; softmax turns scores into probabilities.
const relu = new ReLU().forward(Tensor.from([[0, 2, -1, 3.3, -2.7, 1.1, 2.2, -100]], f64));
console.log("ch4 ReLU:", show(relu));
console.log("ch4 softmax:", show(new Softmax().forward(Tensor.from([[4.8, 1.21, 2.385]], f64))));

// Chapter 5: categorical cross-entropy and accuracy.
const probabilities = Tensor.from([[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]], f64);
const targets = [0, 1, 1];
console.log(
  "ch5 loss of [0.7, 0.1, 0.2] for class 0:",
  new CategoricalCrossEntropy().forward(Tensor.from([[0.7, 0.1, 0.2]], f64), [0]),
);
console.log("ch5 mean loss:", new CategoricalCrossEntropy().forward(probabilities, targets));
const scores = Tensor.from([[0.7, 0.2, 0.1], [0.5, 0.1, 0.4], [0.02, 0.9, 0.08]], f64);
console.log("ch5 accuracy:", accuracy(scores, targets));

// Chapters 3 to 5 on the spiral: 300 points, Dense(2,3) → ReLU → Dense(3,3) → softmax, the
// weights drawn 0.01·randn from the same generator after the data, as nnfs.init() does.
const random = new RandomState(0);
const { x, y } = spiralData(100, 3, { random });
const dense1 = new Dense(2, 3, { init: "nnfs", random });
const dense2 = new Dense(3, 3, { init: "nnfs", random });
const outputs = new Softmax().forward(dense2.forward(new ReLU().forward(dense1.forward(x))));
const firstRows = new Tensor(outputs.data.slice(0, 15), [5, 3]);
console.log("ch4 spiral softmax, first 5 rows:", show(firstRows));
const spiralLoss = new CategoricalCrossEntropy().forward(outputs, y);
console.log("ch5 spiral loss (float32):", num(Math.fround(spiralLoss), true));
console.log("ch5 spiral accuracy:", accuracy(outputs, y));

// Chapter 9: softmax and cross-entropy backward in one step, (ŷ − y)/batch. On logits
// log(ŷ), softmax gives back ŷ exactly, so the combined loss sees the book's outputs.
const combined = new SoftmaxCrossEntropy();
combined.forward(new Tensor(probabilities.data.map(Math.log), probabilities.shape), targets);
console.log("ch9 combined softmax and loss gradient:", show(combined.backward()));
