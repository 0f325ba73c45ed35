// Layers' training buffers resident in the shared kernels' memory (backends/_resident.ts):
// the kernels must read and write them in place with the same bits as copies, and keep
// their own scratch clear of them, whatever the thread count.
import assert from "node:assert/strict";
import { RESIDENT_MIN_ELEMENTS, ResidentHeap } from "../backends/_resident.ts";
import { parallelTuning, resetParallelTuning } from "../backends/wasm.ts";
import type { Backend, ConvGeometry } from "../core/backend.ts";
import { jsBackend, wasmBackend } from "../plugin.ts";
import {
  Conv2D,
  type DType,
  type FloatArray,
  MaxPool2D,
  ReLU,
  Sequential,
  setThreads,
  Tensor,
  withBackend,
} from "../mod.ts";
import { assertSameBits, livePool, threads } from "./_threads.ts";

const FLOATS = { float32: Float32Array, float64: Float64Array } as const;

// Deterministic values in [-1, 1) with some exact zeros (ReLU's kink).
function values(dtype: DType, length: number, seed: number): FloatArray {
  const array = new FLOATS[dtype](length);
  for (let i = 0; i < length; i++) {
    const r = Math.sin(seed * 12.9898 + i * 78.233) * 43758.5453;
    array[i] = i % 17 === 0 ? 0 : 2 * (r - Math.floor(r)) - 1;
  }
  return array;
}

// A resident copy of `array` in the shared memory.
function resident(array: FloatArray): FloatArray {
  const dtype: DType = array instanceof Float64Array ? "float64" : "float32";
  const view = threads().resident.allocate(dtype, array.length)!;
  view.set(array);
  return view;
}

Deno.test("a resident heap hands out aligned, zeroed blocks up to its cap, and knows them", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 100, shared: true });
  const heap = new ResidentHeap(memory, 3 << 16);
  const a = heap.allocate("float32", 3)!;
  assert.equal(a.byteOffset, 0);
  assert.equal(heap.top, 128);
  new Float32Array(memory.buffer).fill(7, 32, 10_000); // scratch written above the blocks
  const b = heap.allocate("float64", 20_000)!; // grows the memory past its first page
  assert.ok(b instanceof Float64Array);
  assert.equal(b.byteOffset, 128);
  assert.ok(b.every((value) => value === 0), "a block is zeroed");
  assert.deepEqual([...a], [0, 0, 0]);
  assert.equal(heap.top, 128 + 160_000);
  assert.ok(memory.buffer.byteLength >= heap.top);
  assert.equal(heap.allocate("float32", 10_000), undefined, "past the cap");
  assert.equal(heap.offsetOf(b), 128);
  assert.equal(heap.offsetOf(b.subarray(5)), 168);
  assert.equal(heap.offsetOf(new Float32Array(8)), -1, "an ordinary array");
  const above = new Float32Array(memory.buffer, heap.top, 4);
  assert.equal(heap.offsetOf(above), -1, "the memory above the blocks is scratch");
  memory.grow(1);
  b[19_999] = 5; // a block stays usable after the memory grows
  assert.equal(new Float64Array(memory.buffer)[(128 + 8 * 19_999) / 8], 5);
});

Deno.test("a block that passes the memory's end is zeroed below it and fresh above it", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 100, shared: true });
  const heap = new ResidentHeap(memory);
  memory.grow(2); // the kernels' scratch grew the memory and used all of it
  new Float32Array(memory.buffer).fill(7);
  const block = heap.allocate("float32", 70_000)!; // 280,000 bytes: 3 pages used, then 2 fresh
  assert.ok(memory.buffer.byteLength >= 280_000);
  const first7 = block.findIndex((value) => value !== 0);
  assert.equal(first7, -1, `a block is zero everywhere (element ${first7} is not)`);
});

Deno.test("the wasm backend places large training buffers in the shared memory only", async (t) => {
  await t.step("wasm: buffers of at least RESIDENT_MIN_ELEMENTS, both element types", () => {
    for (const dtype of ["float32", "float64"] as const) {
      const big = wasmBackend.allocate!(dtype, RESIDENT_MIN_ELEMENTS)!;
      assert.ok(big.buffer instanceof SharedArrayBuffer);
      assert.equal(big.length, RESIDENT_MIN_ELEMENTS);
      assert.ok(big instanceof FLOATS[dtype]);
      assert.equal(wasmBackend.allocate!(dtype, RESIDENT_MIN_ELEMENTS - 1), undefined);
    }
  });
  await t.step("a layer's training outputs under wasm, not under js", () => {
    const x = new Tensor(values("float32", 2 * 3 * 128 * 128, 1), [2, 3, 128, 128]);
    const layers = () => [new Conv2D(3, 4, 3, { padding: "same", seed: 2 }), new ReLU()];
    const wasm = new Sequential(layers()).forward(x, { training: true });
    const js = withBackend(
      "js",
      () => new Sequential(layers()).forward(x, { training: true }),
    );
    assert.ok(wasm.data.buffer instanceof SharedArrayBuffer);
    assert.ok(!(js.data.buffer instanceof SharedArrayBuffer));
    assert.ok(!(new ReLU().forward(x).data.buffer instanceof SharedArrayBuffer), "inference");
  });
});

// A convolution whose every array is large enough to be resident on its own terms.
const GEOMETRY: ConvGeometry = {
  batch: 5,
  channels: 3,
  height: 17,
  width: 15,
  outChannels: 6,
  outH: 17,
  outW: 15,
  kernelH: 3,
  kernelW: 3,
  strideH: 1,
  strideW: 1,
  dilationH: 1,
  dilationW: 1,
  padTop: 1,
  padBottom: 1,
  padLeft: 1,
  padRight: 1,
};
const STRIDED: ConvGeometry = {
  ...GEOMETRY,
  outH: 8,
  outW: 7,
  strideH: 2,
  strideW: 2,
  padBottom: 0,
  padRight: 0,
};

// conv forward and backward, ReLU and its gradient on `place`d arrays: every result.
function run(dtype: DType, g: ConvGeometry, place: (a: FloatArray) => FloatArray): FloatArray[] {
  const xLength = g.batch * g.channels * g.height * g.width;
  const yLength = g.batch * g.outChannels * g.outH * g.outW;
  const wLength = g.outChannels * g.channels * g.kernelH * g.kernelW;
  const x = place(values(dtype, xLength, 1)), w = values(dtype, wLength, 2);
  const bias = values(dtype, g.outChannels, 3);
  const y = place(new FLOATS[dtype](yLength));
  assert.ok(wasmBackend.conv2dForward!(x, w, bias, y, g));
  const activated = place(new FLOATS[dtype](yLength));
  wasmBackend.relu!(y, activated);
  const dvalues = place(values(dtype, yLength, 4)), dy = place(new FLOATS[dtype](yLength));
  wasmBackend.reluBackward!(y, dvalues, dy);
  const dw = values(dtype, wLength, 5), dbias = values(dtype, g.outChannels, 6);
  const dx = place(new FLOATS[dtype](xLength));
  assert.ok(wasmBackend.conv2dBackward!(x, w, dy, dw, dbias, dx, g));
  // Adam's moments resident (as the optimizer places them), its value and gradient not.
  const value = values(dtype, xLength, 7), grad = values(dtype, xLength, 8);
  const momentum = place(values(dtype, xLength, 9).map(Math.abs));
  const cache = place(values(dtype, xLength, 10).map(Math.abs));
  for (let step = 1; step <= 2; step++) {
    wasmBackend.adam!(value, grad, momentum, cache, {
      beta1: 0.9,
      beta2: 0.999,
      learningRate: 1e-3,
      correction1: 1 - 0.9 ** step,
      correction2: 1 - 0.999 ** step,
      epsilon: 1e-7,
    });
  }
  return [y, activated, dy, dw, dbias, dx, value, momentum, cache].map((array) => array.slice());
}

Deno.test("resident operands give the same bits as copied ones, on 1 and 2 threads", async () => {
  try {
    parallelTuning.backoff = false; // tiny jobs gain nothing: do not judge them
    for (const count of [1, 2]) {
      if (count > 1) await livePool(count);
      else setThreads(1);
      // Every job on the pool, in many small tasks (ReLU included).
      parallelTuning.threshold = 1;
      parallelTuning.minTask = 64;
      for (const dtype of ["float32", "float64"] as const) {
        for (const [name, g] of [["same", GEOMETRY], ["strided", STRIDED]] as const) {
          const copied = run(dtype, g, (array) => array);
          const inPlace = run(dtype, g, resident);
          const names = ["y", "relu", "relu'", "dw", "dbias", "dx", "value", "momentum", "cache"];
          copied.forEach((want, i) => {
            assertSameBits(inPlace[i], want, `${count} threads, ${dtype} ${name}: ${names[i]}`);
          });
        }
      }
    }
  } finally {
    resetParallelTuning();
    setThreads(navigator.hardwareConcurrency);
  }
});

// The products a layer runs, with each operand `place`d by `where` ("a", "b", "c": which are
// resident): a·b, aᵀ·b summed into c, a·bᵀ, a·b + bias, and prepareRight's both ways (the
// second call summing into c), and column sums. Every result.
function products(
  dtype: DType,
  [m, k, n]: readonly number[],
  where: string,
): FloatArray[] {
  const place = (operand: string, array: FloatArray) =>
    where.includes(operand) ? resident(array) : array;
  const a = (length: number, seed: number) => place("a", values(dtype, length, seed));
  const b = (length: number, seed: number) => place("b", values(dtype, length, seed));
  const c = (length: number, seed: number) => place("c", values(dtype, length, seed));
  const results: FloatArray[] = [];
  let out = c(m * n, 1);
  wasmBackend.matmul(a(m * k, 2), b(k * n, 3), out, m, k, n);
  results.push(out);
  out = c(k * n, 4);
  wasmBackend.matmulTransA(a(m * k, 5), b(m * n, 6), out, m, k, n, true);
  results.push(out);
  out = c(m * k, 7);
  wasmBackend.matmulTransB(a(m * n, 8), b(k * n, 9), out, m, k, n);
  results.push(out);
  out = c(m * n, 10);
  wasmBackend.matmulBias!(a(m * k, 11), b(k * n, 12), values(dtype, n, 13), out, m, k, n);
  results.push(out);
  for (const transposed of [false, true]) {
    const product = wasmBackend.prepareRight!(b(k * n, 14), k, n, transposed);
    out = c(m * n, 15);
    product(a(m * k, 16), out, m);
    product(a(m * k, 17), out, m, true);
    results.push(out);
  }
  // The column sums (a bias's gradient), of a summed where it lies when resident.
  const sums = values(dtype, n, 18);
  wasmBackend.sumColumns(a(m * n, 19), sums, m, n, true);
  results.push(sums);
  return results.map((array) => array.slice());
}

const SHAPES = [[37, 29, 45], [64, 64, 64], [130, 70, 90]] as const;

Deno.test("products of resident operands give the same bits as copied ones, on 1 and 2 threads", async () => {
  try {
    parallelTuning.backoff = false;
    const first = new Map<string, FloatArray[]>();
    for (const count of [1, 2]) {
      if (count > 1) await livePool(count);
      else setThreads(1);
      parallelTuning.threshold = 1; // the pool for every product, in many tasks
      parallelTuning.minTask = 64;
      parallelTuning.minPackTask = 16;
      for (const dtype of ["float32", "float64"] as const) {
        for (const shape of SHAPES) {
          const copied = products(dtype, shape, "");
          for (const where of ["a", "b", "c", "ab", "ac", "bc", "abc"]) {
            const got = products(dtype, shape, where);
            const what = `${count} threads, ${dtype} ${shape.join("×")}, ${where} resident`;
            copied.forEach((want, i) => assertSameBits(got[i], want, `${what}: product ${i}`));
          }
          const key = `${dtype} ${shape}`;
          if (!first.has(key)) first.set(key, copied);
          first.get(key)!.forEach((want, i) =>
            assertSameBits(copied[i], want, `${count} threads against 1, ${key}: product ${i}`)
          );
        }
      }
    }
  } finally {
    resetParallelTuning();
    setThreads(navigator.hardwareConcurrency);
  }
});

// Every kernel the wasm backend runs on the shared memory: products of each shape class,
// the element-wise passes, Adam, and the convolution, each checked against the js backend.
function exerciseKernels(dtype: DType, seed: number): void {
  const F = FLOATS[dtype];
  const tolerance = dtype === "float32" ? 1e-4 : 1e-12;
  const close = (got: FloatArray, want: FloatArray, what: string) => {
    for (let i = 0; i < want.length; i++) {
      if (Math.abs(got[i] - want[i]) > tolerance * (1 + Math.abs(want[i]))) {
        assert.fail(`${dtype} ${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
      }
    }
  };
  for (const [m, k, n] of [[37, 29, 45], [300, 40, 3], [3, 200, 50], [64, 64, 64]]) {
    // The Backend's shapes: a·b [m,k]·[k,n]; aᵀ·b [m,k]ᵀ·[m,n]; a·bᵀ [m,n]·[k,n]ᵀ.
    const products = [
      ["matmul", m * k, k * n, m * n],
      ["matmulTransA", m * k, m * n, k * n],
      ["matmulTransB", m * n, k * n, m * k],
    ] as const;
    for (const [fn, left, right, size] of products) {
      const [a, b] = [values(dtype, left, seed), values(dtype, right, seed + 1)];
      const [got, want] = [new F(size), new F(size)];
      wasmBackend[fn](a, b, got, m, k, n);
      jsBackend[fn](a, b, want, m, k, n);
      close(got, want, `${fn} ${m}×${k}×${n}`);
    }
  }
  // Resident operands: a and b left as they were, c written in place (summed into, with
  // a bias), and not a byte of its block outside it.
  for (const [m, k, n] of [[37, 29, 45], [64, 64, 64]]) {
    const [a0, b0, bias] = [
      values(dtype, m * k, seed),
      values(dtype, k * n, seed + 1),
      values(dtype, n, seed + 2),
    ];
    const a = resident(a0), b = resident(b0);
    const block = resident(values(dtype, m * n + 32, seed + 3));
    const outside = [block.slice(0, 16), block.slice(16 + m * n)];
    const c = block.subarray(16, 16 + m * n), want = c.slice();
    wasmBackend.matmulBias!(a, b, bias, c, m, k, n);
    jsBackend.matmul(a0, b0, want, m, k, n);
    jsBackend.addBias(want, bias, m, n);
    close(c, want, `resident matmulBias ${m}×${k}×${n}`);
    const product = wasmBackend.prepareRight!(b, k, n, false);
    product(a, c, m, true);
    jsBackend.matmul(a0, b0, want, m, k, n, true);
    close(c, want, `resident prepareRight summing ${m}×${k}×${n}`);
    assertSameBits(a, a0, "a resident left operand");
    assertSameBits(b, b0, "a resident right operand");
    assertSameBits(block.subarray(0, 16), outside[0], "the bytes before a resident c");
    assertSameBits(block.subarray(16 + m * n), outside[1], "the bytes after a resident c");
  }
  const c = values(dtype, 40_000, seed + 4), bias = values(dtype, 100, seed + 5);
  const [c1, c2] = [c.slice(), c.slice()];
  wasmBackend.addBias(c1, bias, 400, 100);
  jsBackend.addBias(c2, bias, 400, 100);
  close(c1, c2, "addBias");
  const [s1, s2] = [new F(100), new F(100)];
  wasmBackend.sumColumns(c, s1, 400, 100);
  jsBackend.sumColumns(c, s2, 400, 100);
  close(s1, s2, "sumColumns");
  const [r1, r2] = [new F(40_000), new F(40_000)];
  wasmBackend.relu!(c, r1);
  jsBackend.relu!(c, r2);
  close(r1, r2, "relu");
  const hyper = {
    beta1: 0.9,
    beta2: 0.999,
    learningRate: 1e-3,
    correction1: 0.1,
    correction2: 0.001,
    epsilon: 1e-7,
  };
  const state = () => [values(dtype, 5000, 7), values(dtype, 5000, 8), new F(5000), new F(5000)];
  const [v1, g1, m1, q1] = state(), [v2, g2, m2, q2] = state();
  wasmBackend.adam!(v1, g1, m1, q1, hyper);
  jsBackend.adam!(v2, g2, m2, q2, hyper);
  close(v1, v2, "adam");
  run(dtype, STRIDED, resident);
}

Deno.test("the kernels keep their scratch above the resident blocks", async () => {
  // Every resident byte so far (earlier tests' blocks, and two more here) must survive.
  resident(values("float32", 3000, 11));
  resident(values("float64", 4000, 12));
  const { memory } = threads();
  try {
    parallelTuning.backoff = false; // tiny jobs gain nothing: do not judge them
    for (const count of [1, 2]) {
      if (count > 1) await livePool(count);
      else setThreads(1);
      parallelTuning.threshold = 1; // products on the shared kernels, in many tasks
      parallelTuning.minTask = 64;
      parallelTuning.minPackTask = 16;
      const top = threads().resident.top;
      const before = new Uint8Array(memory.buffer, 0, top).slice();
      for (const dtype of ["float32", "float64"] as const) exerciseKernels(dtype, 20 + count);
      const after = new Uint8Array(memory.buffer, 0, top);
      const changed = after.findIndex((byte, i) => byte !== before[i]);
      assert.equal(changed, -1, `${count} threads: resident byte ${changed} of ${top} changed`);
    }
  } finally {
    resetParallelTuning();
    setThreads(navigator.hardwareConcurrency);
  }
});

Deno.test("a model trains the same on resident and on ordinary buffers", () => {
  const x = new Tensor(values("float32", 4 * 2 * 64 * 64, 9), [4, 2, 64, 64]);
  const trained = (backend: "wasm" | "js") =>
    withBackend(backend, () => {
      const net = new Sequential([
        new Conv2D(2, 8, 3, { padding: "same", seed: 3 }),
        new ReLU(),
        new MaxPool2D(2),
        new Conv2D(8, 4, 3, { padding: "same", seed: 4 }),
        new ReLU(),
      ]);
      const out = net.forward(x, { training: true });
      const dx = net.backward(out); // d(½‖out‖²)/d out = out
      return [out.data.slice(), dx.data.slice(), ...net.params().map((p) => p.grad.data.slice())];
    });
  const [wasm, js] = [trained("wasm"), trained("js")];
  wasm.forEach((got, i) => {
    const want = js[i];
    let worst = 0;
    for (let j = 0; j < want.length; j++) {
      worst = Math.max(worst, Math.abs(got[j] - want[j]) / (1 + Math.abs(want[j])));
    }
    assert.ok(worst < 1e-4, `array ${i}: differs by ${worst}`);
  });
});

Deno.test("MaxPool2D on resident buffers (the wasm tasks) gives its own loops' bits", async () => {
  // Activations with ties, NaN, ±∞ and −0 in some windows; enough to be resident.
  const special = [0, -0, NaN, Infinity, -Infinity, 1, 1];
  const images = (dtype: DType, wasm: boolean) => {
    const x = values(dtype, 4 * 8 * 96 * 90, 13);
    for (let i = 0; i < x.length; i += 97) x[i] = special[(i / 97) % special.length];
    return new Tensor(wasm ? resident(x) : x, [4, 8, 96, 90]); // resident: a layer's outputs
  };
  // Two steps, so that stale buffers of the first would show in the second.
  const pass = (pool: MaxPool2D, x: Tensor) => {
    let y = pool.forward(x, { training: true });
    const gradient = values(x.dtype, y.size, 14); // resident under wasm, as a layer's dinputs
    const dvalues = new Tensor(
      x.data.buffer instanceof SharedArrayBuffer ? resident(gradient) : gradient,
      y.shape,
    );
    pool.backward(dvalues);
    y = pool.forward(x, { training: true });
    const dx = pool.backward(dvalues);
    return { y: y.data.slice(), dx: dx.data.slice() };
  };
  parallelTuning.backoff = false;
  try {
    for (const count of [1, 2]) {
      if (count > 1) await livePool(count);
      else setThreads(1);
      parallelTuning.minTask = 64; // the pool for these sizes too
      for (const dtype of ["float32", "float64"] as const) {
        for (const [kernel, options] of [[2, {}], [3, { stride: 2, padding: 1 }]] as const) {
          const want = withBackend(
            "js",
            () => pass(new MaxPool2D(kernel, options), images(dtype, false)),
          );
          const ran: boolean[] = [];
          const spy: Backend = {
            ...wasmBackend,
            name: "spy",
            maxPool2dForward: (...args) => record(ran, wasmBackend.maxPool2dForward!(...args)),
            maxPool2dBackward: (...args) => record(ran, wasmBackend.maxPool2dBackward!(...args)),
          };
          const got = withBackend(
            spy,
            () => pass(new MaxPool2D(kernel, options), images(dtype, true)),
          );
          assert.deepEqual(ran, [true, true, true, true], "the wasm tasks ran every pass");
          // An inference pass on a larger batch between training steps leaves them resident.
          const layer = new MaxPool2D(kernel, options);
          ran.length = 0;
          withBackend(spy, () => {
            layer.forward(images(dtype, true), { training: true });
            layer.forward(new Tensor(new FLOATS[dtype](8 * 8 * 96 * 90), [8, 8, 96, 90]));
            layer.forward(images(dtype, true), { training: true });
          });
          assert.deepEqual(ran, [true, false, true], "training after inference");
          const what = `${count} threads, ${dtype}, kernel ${kernel}`;
          assertSameBits(got.y, want.y, `${what}: outputs`);
          assertSameBits(got.dx, want.dx, `${what}: dinputs`);
        }
      }
    }
  } finally {
    resetParallelTuning();
    setThreads(navigator.hardwareConcurrency);
  }
});

Deno.test("MaxPool2D's 2×2 windows by the wasm kernels give the loops' bits", async () => {
  // No NaN (a range holding one is redone by the loop): ties, ±0, ±∞, and widths whose
  // outputs are and are not a multiple of the kernels' four lanes, odd and even sizes.
  const special = [0, -0, Infinity, -Infinity, 1, 1, -2, -2];
  // (outputs of 2¹⁶ elements or more: the layer's buffers are resident)
  const shapes: [number, number, number, number][] = [
    [64, 8, 22, 30],
    [64, 8, 25, 27],
    [64, 8, 24, 24],
    [64, 8, 33, 21],
    [400, 8, 9, 13],
    [8192, 8, 2, 2],
  ];
  parallelTuning.backoff = false;
  try {
    for (const count of [1, 2, 3]) {
      if (count > 1) await livePool(count);
      else setThreads(1);
      parallelTuning.minTask = 64;
      for (const shape of shapes) {
        const size = shape.reduce((a, b) => a * b);
        const x = values("float32", size, 21) as Float32Array;
        for (let i = 0; i < size; i += 7) x[i] = special[(i / 7) % special.length];
        for (let i = 3; i < size; i += 11) x[i] = x[i - 1]; // ties in a row
        const run = (wasm: boolean) => {
          const pool = new MaxPool2D(2);
          const input = new Tensor(wasm ? resident(x.slice()) : x.slice(), shape);
          const y = pool.forward(input, { training: true });
          const d = values("float32", y.size, 22);
          for (let i = 5; i < d.length; i += 13) d[i] = -0; // dx gets +0, as 0 + −0
          const dx = pool.backward(new Tensor(wasm ? resident(d) : d, y.shape));
          return [y.data.slice(), dx.data.slice()];
        };
        const want = withBackend("js", () => run(false));
        const ran: boolean[] = [];
        const spy: Backend = {
          ...wasmBackend,
          name: "spy",
          maxPool2dForward: (...args) => record(ran, wasmBackend.maxPool2dForward!(...args)),
        };
        const got = withBackend(spy, () => run(true));
        assert.deepEqual(ran, [true], "the wasm tasks ran");
        const what = `${count} threads, [${shape}]`;
        assertSameBits(got[0], want[0], `${what}: outputs`);
        assertSameBits(got[1], want[1], `${what}: dinputs`);
      }
    }
  } finally {
    resetParallelTuning();
    setThreads(navigator.hardwareConcurrency);
  }
});

function record(log: boolean[], result: boolean): boolean {
  log.push(result);
  return result;
}
