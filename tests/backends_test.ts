import assert from "node:assert/strict";
import { instantiateKernels, type WasmKernels } from "../backends/wasm.ts";
import {
  type AdamHyper,
  type Backend,
  type FloatArray,
  getBackend,
  RandomState,
  setBackend,
  wasmSupport,
  withBackend,
} from "../mod.ts";
import { jsBackend, naiveBackend, wasmBackend } from "../plugin.ts";

type Kind = "matmul" | "matmulTransA" | "matmulTransB";
const KINDS: Kind[] = ["matmul", "matmulTransA", "matmulTransB"];
// Sizes of every operand for (m, k, n): a, b, c.
const SIZES: Record<Kind, (m: number, k: number, n: number) => [number, number, number]> = {
  matmul: (m, k, n) => [m * k, k * n, m * n],
  matmulTransA: (m, k, n) => [m * k, m * n, k * n],
  matmulTransB: (m, k, n) => [m * n, k * n, m * k],
};
const ODD = [1, 2, 3, 5, 7, 8, 9, 17, 33, 129];

function randomArray(random: RandomState, length: number): Float64Array {
  return Float64Array.from({ length }, () => random.random() * 2 - 1);
}

// Random shapes: every odd size in every position, plus shapes that cross the kernels'
// cache blocks (reduction > 256, more than 32 row panels).
function shapes(random: RandomState): [number, number, number][] {
  const out: [number, number, number][] = [[1, 1, 1], [257, 300, 65], [200, 513, 19]];
  for (const size of ODD) {
    const pick = () => ODD[random.randint(ODD.length)];
    out.push([size, pick(), pick()], [pick(), size, pick()], [pick(), pick(), size]);
  }
  return out;
}

/** Runs `product` of every kind on random shapes and compares with the naive float64 result. */
function agreesWithNaive(
  name: string,
  dtype: "float32" | "float64",
  product: (
    kind: Kind,
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    dims: number[],
    acc: boolean,
  ) => void,
): void {
  const random = new RandomState(42);
  const make = (values: Float64Array) =>
    dtype === "float32" ? Float32Array.from(values) : Float64Array.from(values);
  for (const [m, k, n] of shapes(random)) {
    for (const kind of KINDS) {
      for (const accumulate of [false, true]) {
        const [as, bs, cs] = SIZES[kind](m, k, n);
        // Inputs rounded to the dtype first, so both sides multiply the same numbers.
        const a = make(randomArray(random, as));
        const b = make(randomArray(random, bs));
        const c0 = make(randomArray(random, cs));
        const expected = Float64Array.from(c0);
        naiveBackend[kind](
          Float64Array.from(a),
          Float64Array.from(b),
          expected,
          m,
          k,
          n,
          accumulate,
        );
        const got = c0.slice();
        product(kind, a, b, got, [m, k, n], accumulate);
        const depth = kind === "matmul" ? k : kind === "matmulTransA" ? m : n;
        // float32: each product term and partial sum rounds at 2⁻²⁴, |terms| ≤ 1.
        const tolerance = dtype === "float32" ? 4e-7 * (depth + 2) : 1e-13 * (depth + 2);
        for (let i = 0; i < cs; i++) {
          const error = Math.abs(got[i] - expected[i]);
          if (!(error <= tolerance)) {
            assert.fail(
              `${name} ${kind} ${dtype} m=${m} k=${k} n=${n} accumulate=${accumulate}: element ${i} is ${
                got[i]
              }, naive ${expected[i]} (error ${error}, tolerance ${tolerance})`,
            );
          }
        }
      }
    }
  }
}

function viaBackend(backend: Backend) {
  return (
    kind: Kind,
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    [m, k, n]: number[],
    acc: boolean,
  ) => backend[kind](a, b, c, m, k, n, acc);
}

function viaKernels(kernels: WasmKernels) {
  const index = { matmul: 0, matmulTransA: 1, matmulTransB: 2 } as const;
  return (
    kind: Kind,
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    [m, k, n]: number[],
    acc: boolean,
  ) => kernels.product(index[kind], a, b, c, m, k, n, acc);
}

Deno.test("js backend agrees with the naive reference in float64 and float32", () => {
  agreesWithNaive("js", "float64", viaBackend(jsBackend));
  agreesWithNaive("js", "float32", viaBackend(jsBackend));
});

Deno.test("wasm backend (dispatching) agrees with the naive reference", () => {
  agreesWithNaive("wasm", "float32", viaBackend(wasmBackend));
  agreesWithNaive("wasm", "float64", viaBackend(wasmBackend));
});

for (const variant of ["relaxed-simd", "simd"] as const) {
  for (const [float, dtype] of [["f32", "float32"], ["f64", "float64"]] as const) {
    const kernels = instantiateKernels(variant, float);
    Deno.test({
      name: `wasm ${variant} ${float} kernels agree with the naive reference on every size`,
      ignore: kernels === null,
      fn() {
        assert.equal(kernels!.float, float);
        agreesWithNaive(`wasm ${variant} ${float}`, dtype, viaKernels(kernels!));
      },
    });
  }
}

Deno.test("addBias and sumColumns agree with the naive reference", () => {
  const random = new RandomState(3);
  for (const backend of [jsBackend, wasmBackend]) {
    for (const [m, n] of [[1, 1], [7, 3], [129, 17]]) {
      const a = randomArray(random, m * n);
      const bias = randomArray(random, n);
      const got = a.slice();
      const want = a.slice();
      backend.addBias(got, bias, m, n);
      naiveBackend.addBias(want, bias, m, n);
      assert.deepEqual(got, want);
      for (const accumulate of [false, true]) {
        const sums = Float64Array.from(bias);
        const expected = Float64Array.from(bias);
        backend.sumColumns(a, sums, m, n, accumulate);
        naiveBackend.sumColumns(a, expected, m, n, accumulate);
        assert.deepEqual(sums, expected, `${backend.name} sumColumns ${m}×${n}`);
      }
    }
  }
});

Deno.test("the default backend is wasm where SIMD is supported", () => {
  assert.equal(wasmSupport(), "relaxed-simd"); // Deno 2 ships relaxed SIMD
  assert.equal(getBackend().name, "wasm");
});

Deno.test("setBackend and withBackend select by name and restore", () => {
  const previous = getBackend();
  try {
    setBackend("js");
    assert.equal(getBackend(), jsBackend);
    const inner = withBackend("naive", () => getBackend());
    assert.equal(inner, naiveBackend);
    assert.equal(getBackend(), jsBackend);
    assert.throws(() =>
      withBackend("naive", () => {
        throw new Error("boom");
      }), /boom/);
    assert.equal(getBackend(), jsBackend);
    assert.throws(
      () => setBackend("cuda"),
      /setBackend: unknown backend "cuda", expected one of naive, js, wasm/,
    );
    assert.throws(() => setBackend(42 as unknown as string), TypeError);
  } finally {
    setBackend(previous);
  }
});

Deno.test("relu and reluBackward of every backend match the book's definition", () => {
  const random = new RandomState(5);
  for (const backend of [jsBackend, wasmBackend]) {
    for (const length of [1, 3, 4, 2049, 4099]) {
      for (const dtype of ["float32", "float64"] as const) {
        const make = (values: number[]) =>
          dtype === "float32" ? Float32Array.from(values) : Float64Array.from(values);
        const xs = Array.from({ length }, (_, i) => (i % 5 === 0 ? 0 : random.random() * 2 - 1));
        const dvs = Array.from({ length }, () => random.random() * 2 - 1);
        const x = make(xs), dv = make(dvs), out = make(new Array(length).fill(7));
        backend.relu!(x, out);
        assert.deepEqual(out, make(xs.map((v) => (v > 0 ? v : 0))), `${backend.name} relu`);
        backend.reluBackward!(x, dv, out);
        const expected = make(xs.map((v, i) => (v > 0 ? dvs[i] : 0)));
        assert.deepEqual(out, expected, `${backend.name} reluBackward ${dtype} ${length}`);
      }
    }
  }
});

Deno.test("wasm matmulBias equals matmul followed by addBias, bit for bit", () => {
  const random = new RandomState(7);
  for (const dtype of ["float32", "float64"] as const) {
    const make = (values: Float64Array) =>
      dtype === "float32" ? Float32Array.from(values) : Float64Array.from(values);
    // Thin (n ≤ 4), packed, and below the crossover (JS).
    for (const [m, k, n] of [[300, 64, 3], [300, 2, 64], [37, 9, 17], [2, 2, 2]]) {
      const a = make(randomArray(random, m * k));
      const b = make(randomArray(random, k * n));
      const bias = make(randomArray(random, n));
      const fused = make(new Float64Array(m * n));
      const separate = make(new Float64Array(m * n));
      wasmBackend.matmulBias!(a, b, bias, fused, m, k, n);
      wasmBackend.matmul(a, b, separate, m, k, n);
      wasmBackend.addBias(separate, bias, m, n);
      assert.deepEqual(fused, separate, `${dtype} ${m}×${k}×${n}`);
    }
  }
});

// The book's Adam update in float32 arithmetic (every operation rounded to float32, the
// hyper-parameters too), which the wasm float32 kernel computes.
function adamFloat32(
  value: FloatArray,
  grad: FloatArray,
  momentum: FloatArray,
  cache: FloatArray,
  hyper: AdamHyper,
): void {
  const r = Math.fround;
  const [b1, nb1, b2, nb2] = [
    r(hyper.beta1),
    r(1 - hyper.beta1),
    r(hyper.beta2),
    r(1 - hyper.beta2),
  ];
  const [rate, c1, c2, eps] = [
    -hyper.learningRate,
    hyper.correction1,
    hyper.correction2,
    hyper.epsilon,
  ]
    .map(r);
  for (let i = 0; i < value.length; i++) {
    const g = grad[i];
    const m = momentum[i] = r(r(b1 * momentum[i]) + r(nb1 * g));
    const v = cache[i] = r(r(b2 * cache[i]) + r(nb2 * r(g * g)));
    value[i] = r(value[i] + r(r(rate * r(m / c1)) / r(r(Math.sqrt(r(v / c2))) + eps)));
  }
}

Deno.test("wasm adam: float64 as the JS loop, float32 in float32 arithmetic, bit for bit", () => {
  const random = new RandomState(9);
  const hyper = {
    beta1: 0.9,
    beta2: 0.999,
    learningRate: 0.001,
    correction1: 1 - 0.9 ** 3,
    correction2: 1 - 0.999 ** 3,
    epsilon: 1e-7,
  };
  for (const dtype of ["float32", "float64"] as const) {
    const make = (values: Float64Array) =>
      dtype === "float32" ? Float32Array.from(values) : Float64Array.from(values);
    // Below the element-wise threshold (the JS loop), and in wasm: whole vectors and a tail.
    for (const length of [1, 3, 2048, 4099]) {
      const start = [0, 1, 2, 3].map(() => randomArray(random, length));
      start[3] = start[3].map(Math.abs); // the second moment is ≥ 0
      const [value, grad, momentum, cache] = start.map(make);
      const [value2, grad2, momentum2, cache2] = start.map(make);
      const reference = dtype === "float32" && length >= 2048 ? adamFloat32 : jsBackend.adam!;
      for (let step = 0; step < 3; step++) {
        wasmBackend.adam!(value, grad, momentum, cache, hyper);
        reference(value2, grad2, momentum2, cache2, hyper);
      }
      assert.deepEqual(value, value2, `${dtype} ${length} value`);
      assert.deepEqual(momentum, momentum2, `${dtype} ${length} momentum`);
      assert.deepEqual(cache, cache2, `${dtype} ${length} cache`);
      // Float32 arithmetic stays within float32 rounding of the float64 loop's.
      const [value3, grad3, momentum3, cache3] = start.map(make);
      for (let step = 0; step < 3; step++) jsBackend.adam!(value3, grad3, momentum3, cache3, hyper);
      for (let i = 0; i < length; i++) {
        assert.ok(Math.abs(value[i] - value3[i]) <= 1e-6 * Math.abs(value3[i]) + 1e-9);
      }
      assert.notDeepEqual(value, make(start[0]), "the values moved");
    }
  }
});
