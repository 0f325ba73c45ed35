import assert from "node:assert/strict";
import { createLayer, Dropout, RandomState, Tensor } from "../mod.ts";
import { assertGradientsOf } from "./_assert.ts";

const f64 = { dtype: "float64" } as const;
const ones = (shape: number[]) => Tensor.filled(shape, 1, f64);

function maskOf(dropout: Dropout, shape: number[]): number[] {
  return Array.from(dropout.forward(ones(shape), { training: true }).data);
}

Deno.test("Dropout", async (t) => {
  await t.step("draws NumPy's binomial(1, 1 − rate) masks, scaled by 1 / (1 − rate)", () => {
    // numpy.random.RandomState(seed).binomial(1, keep, size=(2, 10)), for both of NumPy's
    // branches (keep > 0.5 and keep ≤ 0.5).
    const cases: [number, number, number[]][] = [
      [0, 0.7, [1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0]],
      [1, 0.4, [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0]],
      [2, 0.5, [0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0]],
    ];
    for (const [seed, keep, numpy] of cases) {
      const mask = maskOf(new Dropout(1 - keep, { seed }), [2, 10]);
      assert.deepEqual(mask, numpy.map((m) => m / keep), `seed ${seed}, keep ${keep}`);
    }
  });
  await t.step("the mean activation is preserved statistically", () => {
    const rate = 0.3;
    const mask = maskOf(new Dropout(rate, { seed: 7 }), [200, 500]);
    const mean = mask.reduce((a, b) => a + b, 0) / mask.length;
    const dropped = mask.filter((m) => m === 0).length / mask.length;
    // Standard error of the mean: √(rate / (1 − rate) / 100000) ≈ 0.002; allow 5 of them.
    assert.ok(Math.abs(mean - 1) < 0.01, `mean ${mean}`);
    assert.ok(Math.abs(dropped - rate) < 0.01, `dropped ${dropped}`);
  });
  await t.step("inference is the identity, both ways", () => {
    const dropout = new Dropout(0.5, { seed: 1 });
    const x = ones([3, 4]);
    assert.equal(dropout.forward(x), x);
    assert.equal(dropout.forward(x, { training: false }), x);
    const d = Tensor.filled([3, 4], 2, f64);
    assert.equal(dropout.backward(d), d);
  });
  await t.step("the same seed gives the same mask; each training pass draws anew", () => {
    const a = new Dropout(0.5, { seed: 3 });
    const b = new Dropout(0.5, { seed: 3 });
    const first = maskOf(a, [4, 8]);
    assert.deepEqual(maskOf(b, [4, 8]), first);
    assert.notDeepEqual(maskOf(a, [4, 8]), first);
    const shared = new RandomState(3);
    assert.deepEqual(maskOf(new Dropout(0.5, { random: shared }), [4, 8]), first);
  });
  await t.step("backward multiplies by the forward's mask", () => {
    const dropout = new Dropout(0.25, { seed: 4 });
    const mask = maskOf(dropout, [2, 8]);
    const d = dropout.backward(Tensor.filled([2, 8], 3, f64));
    assert.deepEqual(Array.from(d.data), mask.map((m) => 3 * m));
  });
  await t.step("gradients match central differences", () => assertGradientsOf("Dropout"));
  await t.step("backward before forward is an error", () => {
    assert.throws(() => new Dropout(0.1).backward(ones([1, 2])), {
      message: "Dropout.backward: call forward first",
    });
  });
  await t.step("dvalues of the wrong shape are rejected with both shapes", () => {
    const dropout = new Dropout(0.1, { seed: 1 });
    dropout.forward(ones([2, 3]), { training: true });
    assert.throws(() => dropout.backward(ones([3, 2])), {
      name: "TypeError",
      message:
        "Dropout.backward: dvalues is float64 [3, 2], expected float64 [2, 3] like the last forward's inputs",
    });
  });
  await t.step("rate must lie in [0, 1)", () => {
    for (const rate of [-0.1, 1, NaN]) {
      assert.throws(() => new Dropout(rate), {
        name: "RangeError",
        message: `new Dropout: rate must be a number in [0, 1), got ${rate}`,
      });
    }
  });
  await t.step("rebuilds from its config, seed included", () => {
    const dropout = new Dropout(0.2, { seed: 9 });
    const copy = createLayer("Dropout", JSON.parse(JSON.stringify(dropout.config()))) as Dropout;
    assert.equal(copy.toString(), "Dropout(rate=0.2)");
    assert.deepEqual(maskOf(copy, [3, 3]), maskOf(dropout, [3, 3]));
  });
});
