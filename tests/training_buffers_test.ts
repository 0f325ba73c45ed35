import assert from "node:assert/strict";
import {
  Adam,
  type Backend,
  Dense,
  getBackend,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  Tensor,
  withBackend,
} from "../mod.ts";

function model(): Sequential {
  return new Sequential([
    new Dense(3, 8, { seed: 1 }),
    new ReLU(),
    new Dense(8, 4, { seed: 2 }),
  ]);
}

const x = Tensor.from([[1, 2, 3], [-1, 0.5, 2], [0, 1, -1], [2, -2, 0.5], [0.1, 0.2, 0.3]]);
const y = [0, 1, 2, 3, 1];

/** Records the storage of every tensor the layers and the loss return during one step. */
function storageOfStep(net: Sequential, loss: SoftmaxCrossEntropy, optimizer: Adam) {
  const seen: object[] = [];
  const restore: (() => void)[] = [];
  for (const layer of net.layers) {
    const { forward, backward } = layer;
    layer.forward = (...args) => {
      const out = forward.apply(layer, args);
      seen.push(out.data);
      return out;
    };
    layer.backward = (...args) => {
      const out = backward.apply(layer, args);
      seen.push(out.data);
      return out;
    };
    restore.push(() => {
      layer.forward = forward;
      layer.backward = backward;
    });
  }
  const lossBackward = loss.backward;
  loss.backward = () => {
    const out = lossBackward.call(loss);
    seen.push(out.data);
    return out;
  };
  net.trainBatch(x, y, { loss, optimizer });
  for (const undo of restore) undo();
  loss.backward = lossBackward;
  return seen;
}

Deno.test("a training step reuses every output and gradient buffer after the first", () => {
  const net = model();
  const loss = new SoftmaxCrossEntropy();
  const optimizer = new Adam();
  const first = storageOfStep(net, loss, optimizer);
  const second = storageOfStep(net, loss, optimizer);
  assert.equal(first.length, 7); // 3 forwards, loss gradient, 3 backwards
  second.forEach((data, i) => assert.equal(data, first[i], `buffer ${i} was reallocated`));
  // A new batch shape gets new buffers; the old shape's come back afterwards.
  const smaller = x.reshape([5, 3]).data.subarray(0, 6);
  net.trainBatch(new Tensor(smaller, [2, 3]), [0, 1], { loss, optimizer });
  const third = storageOfStep(net, loss, optimizer);
  third.forEach((data, i) => assert.equal(data, first[i], `buffer ${i} was not kept`));
});

Deno.test("predict and inference forwards return fresh tensors that training never overwrites", () => {
  const net = model();
  const loss = new SoftmaxCrossEntropy();
  const optimizer = new Adam({ learningRate: 0.1 });
  const before = net.predict(x);
  const kept = before.data.slice();
  const dense = net.layers[0];
  const inference = dense.forward(x);
  const keptInference = inference.data.slice();
  for (let i = 0; i < 5; i++) net.trainBatch(x, y, { loss, optimizer });
  const after = net.predict(x);
  assert.deepEqual(before.data, kept, "predict's result changed under later training");
  assert.deepEqual(inference.data, keptInference, "an inference forward's result changed");
  assert.notEqual(after.data, before.data);
  assert.notDeepEqual(after.data, before.data); // the model did learn
});

Deno.test("training skips d(loss)/d(inputs) of the first layer, and only that", () => {
  const calls: number[][] = [];
  const base = getBackend();
  const counting: Backend = {
    ...base,
    name: "counting",
    matmulTransB(a, b, c, m, k, n, accumulate) {
      calls.push([m, k, n]);
      base.matmulTransB(a, b, c, m, k, n, accumulate);
    },
  };
  const net = model();
  withBackend(counting, () => {
    net.trainBatch(x, y, { loss: new SoftmaxCrossEntropy(), optimizer: new Adam() });
  });
  assert.deepEqual(calls, [[5, 8, 4]]); // the second Dense only
  calls.length = 0;
  withBackend(counting, () => {
    net.forward(x, { training: true });
    net.backward(Tensor.filled([5, 4], 1)); // a plain backward computes every dinputs
  });
  assert.deepEqual(calls, [[5, 8, 4], [5, 3, 8]]);
});
