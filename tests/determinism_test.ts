// The same seed gives bit-identical weights, data and training histories; the generator is
// NumPy's legacy RandomState, so the book's seeded data come out bit for bit.
import assert from "node:assert/strict";
import {
  Adam,
  Dense,
  RandomState,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  spiralData,
} from "../mod.ts";
import { bookSpiral } from "./_book_spiral.ts";

// First 16 hex digits of SHA-256 over the arrays' little-endian bytes (shared/bench's sha16).
async function sha16(...arrays: (Float32Array | Int32Array)[]): Promise<string> {
  const bytes = new Uint8Array(arrays.reduce((n, a) => n + a.byteLength, 0));
  let offset = 0;
  for (const a of arrays) {
    bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), offset);
    offset += a.byteLength;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("RandomState draws NumPy's legacy sequence", () => {
  const random = new RandomState(0);
  // numpy.random.RandomState(0).random_sample(2), then .randn(3) on a fresh RandomState(0)
  assert.deepEqual([random.random(), random.random()], [0.5488135039273248, 0.7151893663724195]);
  const normal = new RandomState(0);
  assert.deepEqual(
    [normal.randn(), normal.randn(), normal.randn()],
    [1.764052345967664, 0.4001572083672233, 0.9787379841057392],
  );
});

Deno.test("RandomState snapshots restore the exact stream", () => {
  const random = new RandomState(42);
  random.randn();
  const snapshot = random.snapshot();
  const expected = [random.randn(), random.random(), random.randn()];
  const copy = new RandomState(1);
  copy.restore(JSON.parse(JSON.stringify(snapshot)));
  assert.deepEqual([copy.randn(), copy.random(), copy.randn()], expected);
});

Deno.test("spiralData and the book's weights reproduce the reference workload W1 bit for bit", async () => {
  // Reference hashes from shared/bench/README.md (NumPy, Node and Deno agree).
  const { x, y, model } = bookSpiral();
  assert.equal(await sha16(x.data as Float32Array), "40241cac0a8af9da");
  assert.equal(await sha16(y), "498a69daf7e5e85d");
  const params = model.params().map((p) => p.value.data as Float32Array);
  assert.equal(await sha16(...params), "1bc5559dc901cc7b");
});

function trainSpiral(seed: number) {
  const { x, y } = spiralData(50, 3);
  const model = new Sequential([
    new Dense(2, 16, { seed }),
    new ReLU(),
    new Dense(16, 3, { seed: seed + 1 }),
  ]);
  const weights = model.params().map((p) => Array.from(p.value.data));
  const history = model.fit(x, y, {
    loss: new SoftmaxCrossEntropy(),
    optimizer: new Adam({ learningRate: 0.02 }),
    epochs: 20,
    batchSize: 32,
    seed: 5,
  });
  return { weights, history, final: model.params().map((p) => Array.from(p.value.data)) };
}

Deno.test("the same seeds give bit-identical weights and training history", () => {
  const a = trainSpiral(3);
  const b = trainSpiral(3);
  assert.deepEqual(b.weights, a.weights);
  assert.deepEqual(b.history, a.history);
  assert.deepEqual(b.final, a.final);
  const c = trainSpiral(4);
  assert.notDeepEqual(c.weights, a.weights);
});
