import assert from "node:assert/strict";
import {
  argmaxRows,
  BinaryAccuracy,
  CategoricalAccuracy,
  RegressionAccuracy,
  Tensor,
} from "../mod.ts";

Deno.test("CategoricalAccuracy: argmax against class indices or one-hot rows", () => {
  const metric = new CategoricalAccuracy();
  assert.equal(metric.name, "accuracy");
  const outputs = Tensor.from([[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]]);
  // The book's example (chapter 5): predictions 0, 1, 1 against targets 0, 1, 1.
  assert.equal(metric.measure(outputs, [0, 1, 1]), 1);
  assert.equal(metric.measure(outputs, [0, 2, 1]), 2 / 3);
  assert.equal(metric.measure(outputs, Tensor.from([[1, 0, 0], [0, 0, 1], [0, 0, 1]])), 1 / 3);
  assert.equal(new CategoricalAccuracy({ name: "acc" }).name, "acc");
  assert.throws(
    () => metric.measure(outputs, [0, 1]),
    /CategoricalAccuracy\(\)\.measure: targets hold 2 samples, outputs hold 3/,
  );
  assert.throws(() => metric.measure(outputs, [0, 1, 3]), /label 3 at sample 2 is out of range/);
});

Deno.test("BinaryAccuracy: (output > 0.5) == target, per element", () => {
  const metric = new BinaryAccuracy();
  // Two independent outputs per sample: 3 of 4 elements right.
  const outputs = Tensor.from([[0.9, 0.2], [0.4, 0.51]]);
  assert.equal(metric.measure(outputs, Tensor.from([[1, 0], [0, 0]])), 3 / 4);
  // A single output takes [batch] targets too; exactly 0.5 counts as 0.
  assert.equal(metric.measure(Tensor.from([[0.5], [0.7]]), [0, 1]), 1);
  assert.equal(new BinaryAccuracy({ threshold: 0 }).measure(Tensor.from([[-1], [2]]), [0, 1]), 1);
  assert.throws(
    () => metric.measure(outputs, [1, 0]),
    /BinaryAccuracy\.measure: targets have shape \[2\], expected \[2, 2\] like the outputs/,
  );
  assert.throws(
    () => metric.measure(outputs, Tensor.from([[1, 0, 1], [0, 0, 1]])),
    /targets have shape \[2, 3\], expected \[2, 2\]/,
  );
  assert.throws(() => new BinaryAccuracy({ threshold: NaN }), RangeError);
});

Deno.test("RegressionAccuracy: |prediction − y| < std(y) / 250, the book's precision", () => {
  const metric = new RegressionAccuracy();
  assert.equal(metric.tolerance, undefined);
  assert.throws(() => metric.measure(Tensor.from([[0]]), [0]), /no tolerance yet/);
  // y = 0, 250, 500, 750: mean 375, population std √(2·375² + 2·125²)/2 = √78125 ≈ 279.508.
  const y = Tensor.from([[0], [250], [500], [750]]);
  metric.prepare(y);
  const tolerance = Math.sqrt(78125) / 250;
  assert.ok(Math.abs(metric.tolerance! - tolerance) < 1e-12);
  // Prepared once, like the book's init(y) without reinit: later targets do not change it.
  metric.prepare(Tensor.from([[0], [1]]));
  assert.ok(Math.abs(metric.tolerance! - tolerance) < 1e-12);
  const outputs = Tensor.from([[1.1], [250.5], [501.2], [740]], { dtype: "float64" });
  // |errors| = 1.1, 0.5, 1.2, 10 against 1.118…: two right.
  assert.equal(metric.measure(outputs, y), 0.5);
  assert.equal(new RegressionAccuracy({ tolerance: 2 }).measure(outputs, y), 0.75);
  assert.throws(
    () => new RegressionAccuracy({ tolerance: -1 }),
    /tolerance must be a finite number ≥ 0/,
  );
  assert.throws(
    () => metric.measure(outputs, [1, 2]),
    /RegressionAccuracy\.measure: targets have shape \[2\], expected \[4, 1\] like the outputs or \[4\]/,
  );
});

Deno.test("CategoricalAccuracy on sequences: the fraction of positions right", async (t) => {
  // [batch 2, T 3, classes 3]; argmax per position: [1, 0, 2] and [2, 2, 0].
  const outputs = Tensor.from([
    [[0.1, 0.8, 0.1], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]],
    [[0.3, 0.3, 0.4], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05]],
  ]);
  await t.step("class indices [batch, T], as a tensor or flat, and one-hot rows", () => {
    assert.deepEqual(Array.from(argmaxRows(outputs)), [1, 0, 2, 2, 2, 0]);
    const metric = new CategoricalAccuracy();
    // Right at [0, 0], [0, 2], [1, 1]: 3 of 6.
    assert.equal(metric.measure(outputs, Tensor.from([[1, 1, 2], [0, 2, 1]])), 0.5);
    assert.equal(metric.measure(outputs, [1, 1, 2, 0, 2, 1]), 0.5);
    const oneHot = Tensor.from([
      [[0, 1, 0], [0, 1, 0], [0, 0, 1]],
      [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
    ]);
    assert.equal(metric.measure(outputs, oneHot), 0.5);
  });
  await t.step("ignoreIndex leaves positions out; all of them ignored scores 0", () => {
    const metric = new CategoricalAccuracy({ ignoreIndex: 0 });
    assert.equal(metric.toString(), "CategoricalAccuracy(ignoreIndex=0)");
    // Targets 0 at [1, 0] (wrong) and [1, 2] (right) are left out: 3 of the 4 others.
    const targets = Tensor.from([[1, 1, 2], [0, 2, 0]]);
    assert.equal(metric.measure(outputs, targets), 3 / 4);
    assert.equal(new CategoricalAccuracy().measure(outputs, targets), 4 / 6);
    assert.equal(metric.measure(outputs, Tensor.zeros([2, 3])), 0);
    // The rank-2 form ignores samples the same way.
    assert.equal(metric.measure(Tensor.from([[0.1, 0.9], [0.8, 0.2]]), [1, 0]), 1);
    assert.throws(() => new CategoricalAccuracy({ ignoreIndex: NaN }), {
      name: "RangeError",
      message: /^new CategoricalAccuracy: ignoreIndex must be an integer/,
    });
  });
  await t.step("targets of another shape name both shapes", () => {
    assert.throws(() => new CategoricalAccuracy().measure(outputs, Tensor.zeros([3, 2])), {
      name: "TypeError",
      message: "CategoricalAccuracy().measure: targets have shape [3, 2], expected class " +
        "indices [2, 3] or one-hot rows [2, 3, 3] (outputs shape [2, 3, 3])",
    });
    assert.throws(
      () => new CategoricalAccuracy().measure(outputs, Tensor.from([[1, 1, 2], [0, 3, 1]])),
      {
        name: "RangeError",
        message: /label 3 at position \[1, 1\] is out of range for 3 classes/,
      },
    );
  });
});
