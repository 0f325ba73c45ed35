// The book's backpropagation chapter, step by step, with chainrule's own layers:
// deno run examples/chain_rule.ts
import { Dense, ReLU, Tensor } from "../mod.ts";

const f64 = { dtype: "float64" } as const;
const show = (t: Tensor): string => JSON.stringify(t.toArray()).replaceAll(",", ", ");
const round = (t: Tensor): Tensor =>
  new Tensor(t.data.map((v) => Math.round(v * 1e10) / 1e10), t.shape);

// One neuron with three inputs, followed by ReLU.
const neuron = new Dense(3, 1, { weights: [[-3], [-1], [2]], biases: [1], ...f64 });
const relu = new ReLU();
const y = relu.forward(neuron.forward(Tensor.from([[1, -2, 3]], f64)));
console.log("forward, ReLU(x·w + b):", y.get(0, 0));

// Backward with dvalue = 1 from the next layer.
const drelu = relu.backward(Tensor.from([[1]], f64));
console.log("drelu_dz:", drelu.get(0, 0));
const dx = neuron.backward(drelu);
// The sum passes its gradient unchanged to each weighted input and to the bias.
const dz = drelu.get(0, 0);
console.log("drelu_dxw0, drelu_dxw1, drelu_dxw2, drelu_db:", dz, dz, dz, neuron.biases.grad.get(0));
console.log("drelu_dx0:", dx.get(0, 0));
const dw = neuron.weights.grad;
console.log(
  "dx0, dw0, dx1, dw1, dx2, dw2:",
  [dx.get(0, 0), dw.get(0, 0), dx.get(0, 1), dw.get(1, 0), dx.get(0, 2), dw.get(2, 0)],
);

// A layer of three neurons with four inputs; weights kept [inputs, neurons] as the book keeps them.
const weights = Tensor.from([[0.2, 0.8, -0.5, 1], [0.5, -0.91, 0.26, -0.5], [
  -0.26,
  -0.27,
  0.17,
  0.87,
]], f64);
const transposed = Tensor.zeros([4, 3], f64);
for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) transposed.set(weights.get(i, j), j, i);
const inputs = Tensor.from([[1, 2, 3, 2.5], [2, 5, -1, 2], [-1.5, 2.7, 3.3, -0.8]], f64);

const single = new Dense(4, 3, { weights: transposed.toArray(), ...f64 });
single.forward(Tensor.from([inputs.toArray<number[][]>()[0]], f64));
console.log(
  "dinputs for dvalues [[1, 1, 1]]:",
  show(round(single.backward(Tensor.from([[1, 1, 1]], f64)))),
);

const layer = new Dense(4, 3, { weights: transposed.toArray(), ...f64 });
layer.forward(inputs);
const dvalues = Tensor.from([[1, 1, 1], [2, 2, 2], [3, 3, 3]], f64);
console.log("dinputs for a batch of 3:", show(round(layer.backward(dvalues))));
console.log("dweights = inputsᵀ·dvalues:", show(round(layer.weights.grad)));
console.log("dbiases = Σ_batch dvalues:", show(layer.biases.grad));
