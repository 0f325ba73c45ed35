import assert from "node:assert/strict";
import {
  createLayer,
  type Layer,
  LeakyReLU,
  Linear,
  ReLU,
  Sigmoid,
  Softmax,
  Tanh,
  Tensor,
} from "../mod.ts";
import { assertCloseTo, assertGradientsOf } from "./_assert.ts";

const f64 = { dtype: "float64" } as const;

// Every element-wise activation, with the one-line summary its config rebuilds.
const activations: [string, () => Layer][] = [
  ["ReLU()", () => new ReLU()],
  ["LeakyReLU(slope=0.2)", () => new LeakyReLU({ slope: 0.2 })],
  ["Sigmoid()", () => new Sigmoid()],
  ["Tanh()", () => new Tanh()],
  ["Linear()", () => new Linear()],
  ["Softmax()", () => new Softmax()],
];

Deno.test("Softmax", async (t) => {
  await t.step("the book's softmax of [4.8, 1.21, 2.385]", () => {
    const p = new Softmax().forward(Tensor.from([[4.8, 1.21, 2.385]], f64));
    assertCloseTo(p, [0.89528266, 0.02470831, 0.08000903], 5e-9);
  });
  await t.step("logits of ±1000 give finite, exact probabilities", () => {
    const p = new Softmax().forward(
      Tensor.from([[1000, -1000], [1000, 1000], [-1000, -1000]], f64),
    );
    assert.deepEqual(p.toArray(), [[1, 0], [0.5, 0.5], [0.5, 0.5]]);
    const p32 = new Softmax().forward(Tensor.from([[1000, 0, -1000]]));
    assert.deepEqual(Array.from(p32.data), [1, 0, 0]);
  });
  await t.step("backward is the full Jacobian-vector product J·dvalues", () => {
    const softmax = new Softmax();
    const s = softmax.forward(Tensor.from([[0.3, -1.2, 2]], f64)).data;
    const dvalues = [0.5, -2, 1];
    const d = softmax.backward(Tensor.from([dvalues], f64));
    // J[i][j] = s_i·(δ_ij − s_j), formed in full as the book does with diagflat.
    const expected = [0, 1, 2].map((i) =>
      [0, 1, 2].reduce((sum, j) => sum + s[i] * ((i === j ? 1 : 0) - s[j]) * dvalues[j], 0)
    );
    assertCloseTo(d, expected, 1e-15);
  });
  await t.step("the book's gradient of softmax followed by cross-entropy", () => {
    // Softmax outputs [[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]], targets [0, 1, 1]:
    // the book prints the same gradient for the separate and the combined backward.
    const softmax = new Softmax();
    const logits = [[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]].map((row) =>
      row.map(Math.log)
    );
    softmax.forward(Tensor.from(logits, f64));
    const dvalues = Tensor.from(
      [[-1 / 0.7 / 3, 0, 0], [0, -1 / 0.5 / 3, 0], [0, -1 / 0.9 / 3, 0]],
      f64,
    );
    assertCloseTo(softmax.backward(dvalues), [
      -0.1,
      0.03333333,
      0.06666667,
      0.03333333,
      -0.16666667,
      0.13333333,
      0.00666667,
      -0.03333333,
      0.02666667,
    ], 5e-9);
  });
  await t.step("float32 rows (the range-reduced exp) are float64's rounded", () => {
    const logits = Array.from({ length: 40 }, (_, i) => [
      ...Array.from({ length: 65 }, (_, j) => Math.sin(i * 65 + j) * (1 + i / 4)),
    ]);
    logits[0][3] = 90; // far below: e^(x − max) under float32's smallest
    logits[0][4] = -Infinity;
    const x32 = Tensor.from(logits);
    const p32 = new Softmax().forward(x32).data;
    const p64 = new Softmax().forward(x32.clone(f64)).data; // the same (rounded) logits
    assert.equal(p32[4], 0);
    for (let i = 0; i < p64.length; i++) {
      // an ulp (e is rounded to float32 before its division by the sum, as before), or the
      // smallest subnormal (1.4e−45) for row 0's tiny ones
      assert.ok(Math.abs(p32[i] - p64[i]) <= 1.2e-7 * p64[i] + 1.5e-45, `element ${i}`);
    }
  });
  await t.step("gradients match central differences", () => assertGradientsOf("Softmax"));
  await t.step("1-D inputs are rejected with their shape", () => {
    assert.throws(
      () => new Softmax().forward(Tensor.from([1, 2, 3])),
      {
        name: "TypeError",
        message: /Softmax\.forward: inputs must be 2-D \[batch, features\], got shape \[3\]/,
      },
    );
  });
});

Deno.test("Sigmoid", async (t) => {
  await t.step("known values, and no overflow for large negative inputs", () => {
    const out = new Sigmoid().forward(Tensor.from([[0, 2, -2, -1000, 1000, -745]], f64)).data;
    assert.equal(out[0], 0.5);
    assertCloseTo(out.subarray(1, 3), [0.8807970779778823, 0.11920292202211755], 1e-16);
    assert.equal(out[3], 0);
    assert.equal(out[4], 1);
    assert.ok(out[5] > 0 && out[5] < 1e-300, `σ(−745) = ${out[5]}`);
    // float32: σ(−100) = e^−100 survives as a subnormal, σ(100) rounds to 1.
    const out32 = new Sigmoid().forward(Tensor.from([[-1000, -100, 100]])).data;
    assert.deepEqual(Array.from(out32), [0, Math.fround(Math.exp(-100)), 1]);
  });
  await t.step("backward is dvalues·σ·(1 − σ)", () => {
    const sigmoid = new Sigmoid();
    sigmoid.forward(Tensor.from([[0, 2]], f64));
    const s = 0.8807970779778823;
    assertCloseTo(sigmoid.backward(Tensor.from([[4, 1]], f64)), [1, s * (1 - s)], 1e-16);
  });
  await t.step("gradients match central differences", () => assertGradientsOf("Sigmoid"));
});

Deno.test("Tanh", async (t) => {
  await t.step("known values and derivative", () => {
    const tanh = new Tanh();
    assertCloseTo(tanh.forward(Tensor.from([[0.5, -1000]], f64)), [0.46211715726000974, -1], 1e-16);
    assertCloseTo(
      tanh.backward(Tensor.from([[1, 1]], f64)),
      [1 - 0.46211715726000974 ** 2, 0],
      1e-16,
    );
  });
  await t.step("gradients match central differences", () => assertGradientsOf("Tanh"));
});

Deno.test("LeakyReLU", async (t) => {
  await t.step("known values with the default slope 0.01", () => {
    const leaky = new LeakyReLU();
    assert.deepEqual(leaky.forward(Tensor.from([[-3, 0, 2]], f64)).toArray(), [[-0.03, 0, 2]]);
    assert.deepEqual(leaky.backward(Tensor.from([[1, 1, 1]], f64)).toArray(), [[0.01, 0.01, 1]]);
  });
  await t.step("gradients match central differences", () => assertGradientsOf("LeakyReLU"));
  await t.step("a slope that is not a finite number is rejected", () => {
    assert.throws(() => new LeakyReLU({ slope: NaN }), {
      name: "RangeError",
      message: "new LeakyReLU: slope must be a finite number, got NaN",
    });
  });
});

Deno.test("Linear", async (t) => {
  await t.step("is the identity both ways", () => {
    const linear = new Linear();
    const x = Tensor.from([[1.5, -2]], f64);
    assert.equal(linear.forward(x), x);
    const d = Tensor.from([[3, 4]], f64);
    assert.equal(linear.backward(d), d);
  });
  await t.step("gradients match central differences", () => assertGradientsOf("Linear"));
  await t.step("ReLU's gradients still match too", () => assertGradientsOf("ReLU"));
});

Deno.test("every activation", async (t) => {
  for (const [summary, make] of activations) {
    await t.step(`${summary}: backward before forward is an error`, () => {
      assert.throws(() => make().backward(Tensor.from([[1, 2]])), {
        message: `${summary.split("(")[0]}.backward: call forward first`,
      });
    });
    await t.step(`${summary}: dvalues of the wrong shape are rejected with both shapes`, () => {
      const layer = make();
      layer.forward(Tensor.from([[1, 2, 3], [4, 5, 6]], f64));
      assert.throws(() => layer.backward(Tensor.from([[1, 2], [3, 4], [5, 6]], f64)), {
        name: "TypeError",
        message: new RegExp(
          `^${
            summary.split("(")[0]
          }\\.backward: dvalues is float64 \\[3, 2\\], expected float64 \\[2, 3\\]`,
        ),
      });
    });
    await t.step(`${summary}: rebuilds from its config through the registry`, () => {
      const layer = make();
      const copy = createLayer(layer.kind, JSON.parse(JSON.stringify(layer.config())));
      assert.equal(copy.toString(), summary);
      assert.deepEqual(copy.params(), []);
    });
  }
});
