import assert from "node:assert/strict";
import { type Dense, SoftmaxCrossEntropy } from "../mod.ts";
import {
  workloadModel,
  workloadPermutation,
  workloadW1,
  workloadW2,
  workloadW3,
  workloadW4,
  workloadW4Model,
} from "../bench/_workload_data.ts";
import {
  idsTensor,
  SEQ,
  seqBatch,
  workloadW5,
  workloadW5Model,
  workloadW6,
  workloadW6Model,
} from "../bench/_seq_workload_data.ts";
import { sha16 } from "./_sha16.ts";

// Reference hashes from ../shared/bench/README.md (NumPy, Node and Deno agree bit for bit).
Deno.test("W1 reproduces the reference data and weights bit for bit", async () => {
  const w = workloadW1();
  assert.equal(await sha16(w.x.data), "40241cac0a8af9da");
  assert.equal(await sha16(w.y), "498a69daf7e5e85d");
  assert.equal(await sha16(...w.params), "1bc5559dc901cc7b");
});

Deno.test("W3 reproduces the reference data and weights bit for bit", async () => {
  const w = workloadW3();
  assert.equal(await sha16(w.x.data), "982c7e410cbf2a86");
  assert.equal(await sha16(w.y), "1587bda5023600ea");
  assert.equal(await sha16(...w.params), "66bc7684e28ce2e6");
});

Deno.test("W4 reproduces the reference images, labels and CNN weights bit for bit", async () => {
  const w = workloadW4();
  assert.deepEqual(w.x.shape, [4096, 1, 28, 28]);
  assert.equal(await sha16(w.x.data), "51cda8df2d3ca276");
  assert.equal(await sha16(w.y), "51548cd17f88300a");
  assert.equal(await sha16(...w.params), "b73e7dff02186bc4");
  assert.equal(
    workloadW4Model(w).toString(),
    "Sequential(Conv2D(in=1, out=32, kernel=3×3, padding=1) → ReLU() → MaxPool2D(kernel=2×2) → " +
      "Conv2D(in=32, out=64, kernel=3×3, padding=1) → ReLU() → MaxPool2D(kernel=2×2) → Flatten() → " +
      "Dense(in=3136, out=128) → ReLU() → Dense(in=128, out=10))",
  );
});

Deno.test("W4's first loss equals PyTorch's 2.315454 (../shared/bench/README.md)", () => {
  const w = workloadW4({ samples: 64 });
  const logits = workloadW4Model(w).predict(w.x);
  const loss = new SoftmaxCrossEntropy().forward(logits, w.y);
  assert.ok(Math.abs(loss - 2.315454) < 5e-7, `loss0 ${loss}`);
});

Deno.test("W2 reproduces the reference on its first 1,000 samples, and the epoch-0 order", async () => {
  // The full set (47M draws) is checked by `deno task bench:compare`; these prefix hashes
  // come from ../shared/bench/data.mjs `w2(1000)`.
  const w = workloadW2({ samples: 1000 });
  assert.equal(await sha16(w.x.data), "43cf5f38f9a343db");
  assert.equal(await sha16(w.y), "495432f73864c161");
  assert.equal(await sha16(...w.params), "710968d5cb6e7cdf"); // = the full set's
  assert.equal(await sha16(workloadPermutation(60000, 0)), "19e0a8e0a97ef8c3");
  assert.throws(
    () => workloadW2({ samples: 0 }),
    /workloadW2: samples must be a positive integer, got 0/,
  );
});

Deno.test("workloadModel builds the network with the reference weights in either dtype", () => {
  const w = workloadW1();
  for (const dtype of ["float32", "float64"] as const) {
    const model = workloadModel(w, dtype);
    assert.equal(
      model.toString(),
      "Sequential(Dense(in=2, out=64) → ReLU() → Dense(in=64, out=3))",
    );
    const first = model.layers[0] as Dense;
    assert.equal(first.dtype, dtype);
    assert.deepEqual(Array.from(first.weights.value.data), Array.from(w.params[0]));
  }
});

Deno.test("W5 and W6 reproduce the reference stream, batches and weights bit for bit", async () => {
  const w5 = workloadW5(), w6 = workloadW6();
  assert.equal(await sha16(w5.stream), "1d6487ffa5de61c6");
  const { x, y } = seqBatch(w5.stream, 3);
  assert.equal(await sha16(x, y), "8f1e9de95eb0d46e");
  assert.equal(await sha16(...w5.params), "73d38b4023041c39");
  assert.equal(await sha16(...w6.params), "a8b9d25ad55e7fa5");
});

// PyTorch's float32 first losses from ../shared/bench/README.md: the same models, weights and
// batch give the same loss to the printed digits.
Deno.test("W5's and W6's first losses equal PyTorch's 5.050062 and 4.174033", () => {
  const { B, T } = SEQ;
  for (
    const [workload, build, expected] of [
      [workloadW5(), workloadW5Model, 5.050062],
      [workloadW6(), workloadW6Model, 4.174033],
    ] as const
  ) {
    const { x, y } = seqBatch(workload.stream, 0);
    const outputs = build(workload).predict(idsTensor(x, B, T, "float32"));
    assert.deepEqual(outputs.shape, [B, T, SEQ.V]);
    const loss = new SoftmaxCrossEntropy().forward(outputs, idsTensor(y, B, T, "float32"));
    assert.ok(Math.abs(loss - expected) < 1e-6, `${workload.name}: loss ${loss}`);
  }
});
