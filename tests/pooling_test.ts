import assert from "node:assert/strict";
import {
  AvgPool2D,
  createLayer,
  Dense,
  Flatten,
  GlobalAvgPool2D,
  type Layer,
  MaxPool2D,
  Tensor,
} from "../mod.ts";
import { assertGradientsOf } from "./_assert.ts";
import { maxDifference, naivePool, type NaiveWindow } from "./_conv_reference.ts";

const f64 = { dtype: "float64" } as const;

Deno.test("MaxPool2D", async (t) => {
  await t.step("known values, and the gradient to the maximum of each window", () => {
    const pool = new MaxPool2D(2);
    const x = Tensor.from([[[[1, 7, 2, 0], [3, 4, 9, 1], [0, 0, 5, 6], [8, 1, 6, 2]]]]);
    assert.deepEqual(pool.forward(x).toArray(), [[[[7, 9], [8, 6]]]]);
    assert.deepEqual(pool.backward(Tensor.from([[[[1, 2], [3, 4]]]])).toArray(), [[[
      [0, 1, 0, 0],
      [0, 0, 2, 0],
      [0, 0, 0, 4],
      [3, 0, 0, 0],
    ]]]);
  });
  await t.step("ties: the first maximum in row-major order gets the gradient, as PyTorch", () => {
    const pool = new MaxPool2D(2);
    const x = Tensor.from([[[[5, 5], [5, 5]], [[1, 3], [3, 3]], [[0, 0], [0, 0]]]]);
    assert.deepEqual(pool.forward(x).toArray(), [[[[5]], [[3]], [[0]]]]);
    assert.deepEqual(pool.backward(Tensor.from([[[[1]], [[2]], [[3]]]])).toArray(), [[
      [[1, 0], [0, 0]],
      [[0, 2], [0, 0]],
      [[3, 0], [0, 0]],
    ]]);
  });
  await t.step("overlapping windows add up their gradients", () => {
    // Kernel 2, stride 1 over one row: the 9 wins both windows it is in.
    const pool = new MaxPool2D([1, 2], { stride: 1 });
    assert.deepEqual(pool.forward(Tensor.from([[[[1, 9, 2]]]])).toArray(), [[[[9, 9]]]]);
    assert.deepEqual(pool.backward(Tensor.from([[[[1, 10]]]])).toArray(), [[[[0, 11, 0]]]]);
  });
  await t.step("padding never wins, even over negative inputs", () => {
    const pool = new MaxPool2D(2, { padding: 1 });
    const x = Tensor.from([[[[-1, -2], [-3, -4]]]]);
    assert.deepEqual(pool.forward(x).toArray(), [[[[-1, -2], [-3, -4]]]]);
  });
  await t.step("matches a naive loop on windows that overlap or do not divide the size", () => {
    const x = Tensor.randn([2, 3, 7, 5], { ...f64, seed: 1 });
    const cases: [number | [number, number], Record<string, unknown>, NaiveWindow][] = [
      [3, { stride: 2 }, { kernel: [3, 3], stride: [2, 2] }],
      [2, {}, { kernel: [2, 2], stride: [2, 2] }],
      [[3, 2], { stride: [2, 1], padding: 1 }, {
        kernel: [3, 2],
        stride: [2, 1],
        pad: [1, 1, 1, 1],
      }],
    ];
    for (const [kernel, options, window] of cases) {
      for (const kind of ["max", "avg"] as const) {
        const pool: Layer = kind === "max"
          ? new MaxPool2D(kernel, options)
          : new AvgPool2D(kernel, options);
        const out = pool.forward(x, { training: true });
        const d = Tensor.randn(out.shape, { ...f64, seed: 2 });
        const reference = naivePool(x.toArray(), window, kind, d.toArray());
        assert.ok(maxDifference(out.toArray(), reference.outputs) < 1e-12, `${pool}`);
        assert.ok(maxDifference(pool.backward(d).toArray(), reference.dinputs) < 1e-12, `${pool}`);
      }
    }
  });
  await t.step("float32 inputs (compared as integers, no branches) agree with the loop", () => {
    // Random values of both signs, repeated values (ties), zeros of both signs, ±∞.
    const random = Tensor.randn([2, 3, 7, 5], { seed: 11 });
    const x = random.data;
    for (let i = 0; i < x.length; i += 7) x[i] = x[i + 1] ?? 0; // ties
    x[3] = -0;
    x[4] = 0;
    x[20] = -Infinity;
    x[40] = Infinity;
    const cases: [number | [number, number], Record<string, unknown>, NaiveWindow][] = [
      [2, {}, { kernel: [2, 2], stride: [2, 2] }],
      [3, { stride: 2 }, { kernel: [3, 3], stride: [2, 2] }],
      [2, { padding: 1 }, { kernel: [2, 2], stride: [2, 2], pad: [1, 1, 1, 1] }],
      [[3, 2], { stride: [2, 1], padding: 1 }, {
        kernel: [3, 2],
        stride: [2, 1],
        pad: [1, 1, 1, 1],
      }],
    ];
    for (const [kernel, options, window] of cases) {
      const pool = new MaxPool2D(kernel, options);
      const out = pool.forward(random, { training: true });
      const d = Tensor.randn(out.shape, { seed: 12 });
      const reference = naivePool(random.toArray(), window, "max", d.toArray());
      assert.deepEqual(out.toArray(), reference.outputs, `${pool}`);
      const dinputs = pool.backward(d).toArray();
      assert.ok(maxDifference(dinputs, reference.dinputs) < 1e-6, `${pool}`);
    }
    const nan = new MaxPool2D(2).forward(Tensor.from([[[[1, NaN], [3, 2]]]]));
    assert.ok(Number.isNaN(nan.data[0]), "a NaN wins, as in PyTorch");
    const negativeNaN = Tensor.from([[[[1, 0], [3, 2]]]]);
    new Int32Array(negativeNaN.data.buffer)[1] = 0xffc00000 | 0; // x86's default NaN
    const out = new MaxPool2D(2).forward(negativeNaN);
    assert.ok(Number.isNaN(out.data[0]), "a NaN with its sign bit set wins too");
  });
  await t.step("2×2 windows with NaN, ±∞ and signed zeros, float32 and float64", () => {
    // [window, float32 winner, float64 winner]: a NaN wins (float32: the first of equal NaNs,
    // by their bits; float64: the last, as the general loop); ties go to the first.
    const cases: [number[][], number, number][] = [
      [[[1, NaN], [3, NaN]], 1, 3],
      [[[NaN, 5], [Infinity, 2]], 0, 0],
      [[[-Infinity, -Infinity], [-Infinity, -Infinity]], 0, 0],
      [[[Infinity, -Infinity], [1, 2]], 0, 0],
      [[[-0, 0], [0, -0]], 0, 0],
      [[[1, 2], [4, 4]], 2, 2],
    ];
    for (const [window, first32, first64] of cases) {
      for (const [dtype, winner] of [["float32", first32], ["float64", first64]] as const) {
        const pool = new MaxPool2D(2);
        const x = Tensor.from([[window]], { dtype });
        const out = pool.forward(x, { training: true });
        assert.ok(Object.is(out.data[0], x.data[winner]), `${dtype} ${window}: output`);
        const dinputs = pool.backward(Tensor.from([[[[1]]]], { dtype })).data;
        assert.deepEqual([...dinputs], [0, 1, 2, 3].map((i) => (i === winner ? 1 : 0)));
      }
    }
  });
  await t.step("gradients match central differences", () => assertGradientsOf("MaxPool2D"));
  await t.step("config, toString, and a stride that defaults to the kernel", () => {
    const pool = new MaxPool2D(3, { stride: 2, padding: 1 });
    assert.deepEqual(pool.config(), { kernelSize: 3, stride: 2, padding: 1 });
    assert.equal(pool.toString(), "MaxPool2D(kernel=3×3, stride=2, padding=1)");
    assert.deepEqual(new MaxPool2D([2, 3]).stride, [2, 3]);
    assert.equal(createLayer("MaxPool2D", pool.config()).toString(), pool.toString());
  });
  await t.step("padding more than half the kernel is refused, as PyTorch", () => {
    assert.throws(() => new MaxPool2D(2, { padding: 2 }), {
      name: "RangeError",
      message:
        "new MaxPool2D: padding must be at most half the kernel size (as PyTorch), got padding [2, 2] for kernel 2×2",
    });
    assert.throws(() => new MaxPool2D(0), {
      name: "RangeError",
      message:
        "new MaxPool2D: kernelSize must be a positive integer or [height, width] of positive integers, got 0",
    });
  });
});

Deno.test("AvgPool2D", async (t) => {
  await t.step("known values; padded cells count as zeros in the mean", () => {
    const pool = new AvgPool2D(2, { stride: 2, padding: 1 });
    const x = Tensor.from([[[[4, 8], [12, 16]]]]);
    // Every window holds one input and three padded zeros: the input / 4.
    assert.deepEqual(pool.forward(x).toArray(), [[[[1, 2], [3, 4]]]]);
    assert.deepEqual(pool.backward(Tensor.from([[[[4, 4], [4, 4]]]])).toArray(), [[[[1, 1], [
      1,
      1,
    ]]]]);
  });
  await t.step("gradients match central differences", () => assertGradientsOf("AvgPool2D"));
  await t.step("config and toString", () => {
    const pool = new AvgPool2D([2, 3], { stride: 1 });
    assert.deepEqual(pool.config(), { kernelSize: [2, 3], stride: 1 });
    assert.equal(pool.toString(), "AvgPool2D(kernel=2×3, stride=1)");
  });
});

Deno.test("GlobalAvgPool2D", async (t) => {
  await t.step("the mean of each channel; backward spreads it evenly", () => {
    const pool = new GlobalAvgPool2D();
    const x = Tensor.from([[[[1, 2, 3]], [[4, 4, 7]]], [[[0, 0, 3]], [[9, 9, 9]]]], f64);
    assert.deepEqual(pool.forward(x).toArray(), [[2, 5], [1, 9]]);
    assert.deepEqual(
      pool.backward(Tensor.from([[3, 6], [0, -3]], f64)).toArray(),
      [[[[1, 1, 1]], [[2, 2, 2]]], [[[0, 0, 0]], [[-1, -1, -1]]]],
    );
  });
  await t.step("gradients match central differences", () => assertGradientsOf("GlobalAvgPool2D"));
  await t.step("a Dense head after it needs no Flatten", () => {
    const head = new Dense(2, 1, { weights: [[1], [1]] });
    const pooled = new GlobalAvgPool2D().forward(Tensor.filled([3, 2, 4, 4], 1));
    assert.deepEqual(head.forward(pooled).toArray(), [[2], [2], [2]]);
  });
});

Deno.test("Flatten", async (t) => {
  await t.step("rows in (C, H, W) order, sharing the storage both ways", () => {
    const flatten = new Flatten();
    const x = Tensor.from([[[[1, 2], [3, 4]], [[5, 6], [7, 8]]], [[[9, 10], [11, 12]], [[
      13,
      14,
    ], [15, 16]]]]);
    const out = flatten.forward(x);
    assert.deepEqual(out.shape, [2, 8]);
    assert.deepEqual(out.toArray(), [[1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14, 15, 16]]);
    assert.equal(out.data, x.data);
    const d = Tensor.zeros([2, 8]);
    const back = flatten.backward(d);
    assert.deepEqual(back.shape, [2, 2, 2, 2]);
    assert.equal(back.data, d.data);
    assert.equal(flatten.forward(Tensor.zeros([3, 4])).shape.length, 2, "2-D passes through");
  });
  await t.step("gradients match central differences", () => assertGradientsOf("Flatten"));
  await t.step("a tensor without a feature axis is refused", () => {
    assert.throws(() => new Flatten().forward(Tensor.zeros([4])), {
      name: "TypeError",
      message:
        "Flatten.forward: inputs must have a batch axis and at least one more, [batch, …], got shape [4]",
    });
    const flatten = new Flatten();
    flatten.forward(Tensor.zeros([2, 3, 4]));
    assert.throws(() => flatten.backward(Tensor.zeros([2, 11])), {
      name: "TypeError",
      message: /Flatten\.backward: dvalues is float32 \[2, 11\], expected float32 \[2, 12\]/,
    });
  });
});

Deno.test("the 2-D layers check their inputs and need forward before backward", () => {
  for (const layer of [new MaxPool2D(2), new AvgPool2D(2), new GlobalAvgPool2D()]) {
    const name = layer.kind;
    assert.throws(() => layer.backward(Tensor.zeros([1, 1, 1, 1])), {
      message: `${name}.backward: call forward first`,
    });
    assert.throws(() => layer.forward(Tensor.zeros([8, 784])), {
      name: "TypeError",
      message: new RegExp(
        `${name}\\.forward: inputs must be 4-D \\[batch, channels, height, width\\], got shape \\[8, 784\\]`,
      ),
    });
  }
  assert.throws(() => new MaxPool2D(3).forward(Tensor.zeros([1, 1, 2, 5])), {
    name: "TypeError",
    message:
      "MaxPool2D.forward: the kernel 3×3 is larger than the padded input 2×5; expected inputs of at least 3×3 (height×width), got shape [1, 1, 2, 5]",
  });
  const pool = new MaxPool2D(2);
  pool.forward(Tensor.zeros([1, 1, 4, 4]));
  assert.throws(() => pool.backward(Tensor.zeros([1, 1, 3, 3])), {
    name: "TypeError",
    message:
      "MaxPool2D.backward: dvalues is float32 [1, 1, 3, 3], expected float32 [1, 1, 2, 2] like the last forward's outputs",
  });
});
