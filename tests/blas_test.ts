// Run with `deno task test:blas` (--allow-ffi, needs `apt-get install libopenblas0`). Without
// the library or the permission these tests are ignored, and say so.
import assert from "node:assert/strict";
import { blasBackend, blasInfo } from "../blas.ts";
import { RESIDENT_MIN_ELEMENTS } from "../backends/_resident.ts";
import {
  type Backend,
  checkGradients,
  Conv2D,
  type Conv2DOptions,
  type ConvGeometry,
  Dense,
  type DType,
  Flatten,
  type FloatArray,
  getThreads,
  LSTM,
  MaxPool2D,
  RandomState,
  ReLU,
  Sequential,
  setThreads,
  SGD,
  SoftmaxCrossEntropy,
  Tensor,
  withBackend,
} from "../mod.ts";
import { jsBackend, naiveBackend, wasmBackend } from "../plugin.ts";

const blas = blasBackend();
if (!blas) {
  console.log(
    "blas tests skipped: OpenBLAS not found or --allow-ffi not granted " +
      "(apt-get install libopenblas0; deno task test:blas)",
  );
}

const KINDS = ["matmul", "matmulTransA", "matmulTransB"] as const;

Deno.test({
  name: "blasInfo says which library and which OpenBLAS kernels the blas backend runs",
  ignore: !blas,
  fn() {
    const info = blasInfo(blas);
    assert.ok(info, "blasInfo(blas) is null");
    assert.ok(info.path.length > 0);
    // The loader finds OpenBLAS in this repository's CI (libopenblas0): it names its kernels
    // (the machine's environment may force a core, so no particular name) and its build.
    assert.match(info.core ?? "", /^\w+$/);
    assert.match(info.config ?? "", /^OpenBLAS \d+\.\d+/);
    assert.equal(info.threads, getThreads());
    assert.deepEqual(blasInfo(), info); // the default: the backend blasBackend() returns
    assert.equal(blasInfo(wasmBackend), null);
    assert.equal(blasInfo(null), null);
  },
});

Deno.test({
  name: "blas backend agrees with the naive reference in float32 and float64",
  ignore: !blas,
  fn() {
    const random = new RandomState(9);
    for (const [m, k, n] of [[1, 1, 1], [3, 7, 17], [129, 17, 33], [64, 300, 9], [40, 40, 40]]) {
      for (const kind of KINDS) {
        for (const accumulate of [false, true]) {
          const size = kind === "matmul"
            ? [m * k, k * n, m * n]
            : kind === "matmulTransA"
            ? [m * k, m * n, k * n]
            : [m * n, k * n, m * k];
          const [a, b, c] = size.map((s) =>
            Float64Array.from({ length: s }, () => random.random() - 0.5)
          );
          const want = c.slice();
          naiveBackend[kind](a, b, want, m, k, n, accumulate);
          const got64 = c.slice();
          blas![kind](a, b, got64, m, k, n, accumulate);
          const got32 = Float32Array.from(c);
          blas![kind](Float32Array.from(a), Float32Array.from(b), got32, m, k, n, accumulate);
          const depth = kind === "matmul" ? k : kind === "matmulTransA" ? m : n;
          for (let i = 0; i < want.length; i++) {
            assert.ok(
              Math.abs(got64[i] - want[i]) < 1e-12 * (depth + 2),
              `${kind} f64 ${m}×${k}×${n}`,
            );
            assert.ok(
              Math.abs(got32[i] - want[i]) < 4e-7 * (depth + 2),
              `${kind} f32 ${m}×${k}×${n}`,
            );
          }
        }
      }
    }
  },
});

Deno.test({
  name: "gradient checks pass under the blas backend",
  ignore: !blas,
  fn() {
    withBackend(blas!, () => {
      const net = new Sequential([
        new Dense(20, 30, { dtype: "float64", seed: 1 }),
        new ReLU(),
        new Dense(30, 10, { dtype: "float64", seed: 2 }),
      ]);
      const random = new RandomState(4);
      const x = new Tensor(Float64Array.from({ length: 16 * 20 }, () => random.random() - 0.5), [
        16,
        20,
      ]);
      const targets = Array.from({ length: 16 }, (_, i) => i % 10);
      const report = checkGradients(net, x, { loss: new SoftmaxCrossEntropy(), targets });
      assert.ok(report.maxRelativeError < 1e-6, report.toString());
    });
  },
});

// --- Convolutions on OpenBLAS, and the passes it leaves to the wasm kernels ---

// max|got − want| / max|want|: the error relative to the array's scale (elements near zero
// would make an element-wise relative error meaningless).
function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length);
  let error = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    error = Math.max(error, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return error / (scale || 1);
}

// Deterministic values in [-1, 1).
function values(length: number, seed: number): number[] {
  const random = new RandomState(seed);
  return Array.from({ length }, () => 2 * random.random() - 1);
}

// A tensor of deterministic values.
function tensor(shape: readonly number[], dtype: DType, seed: number): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = values(size, seed);
  return new Tensor(dtype === "float64" ? Float64Array.from(data) : Float32Array.from(data), shape);
}

// OpenBLAS's thread count (dlopen of the same library gives the same instance), or −1.
function openblasThreads(): number {
  for (const name of ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"]) {
    try {
      const library = Deno.dlopen(name, {
        openblas_get_num_threads: { parameters: [], result: "i32" },
      });
      try {
        return library.symbols.openblas_get_num_threads();
      } finally {
        library.close();
      }
    } catch { /* the next name */ }
  }
  return -1;
}

// `backend` with a log of what each of the named optional methods returned.
function spied(
  backend: Backend,
  names: readonly string[],
): { backend: Backend; calls: Map<string, boolean[]> } {
  const calls = new Map<string, boolean[]>(names.map((name) => [name, []]));
  const copy: Record<string, unknown> = { ...backend };
  for (const name of names) {
    const method = (backend as unknown as Record<string, (...args: unknown[]) => boolean>)[name];
    copy[name] = (...args: unknown[]) => {
      const done = method(...args);
      calls.get(name)!.push(done);
      return done;
    };
  }
  return { backend: copy as unknown as Backend, calls };
}

// [inChannels, outChannels, H, W, kernel, options, batch]: stride 1 from 8 channels on takes
// the shifted products, the others im2col.
type ConvCase = [number, number, number, number, number | [number, number], Conv2DOptions, number];
const CONV_CASES: ConvCase[] = [
  [3, 4, 7, 6, 3, {}, 3],
  [3, 5, 8, 7, 3, { padding: 1, stride: 2 }, 1],
  [2, 3, 9, 9, 3, { padding: 2, dilation: 2 }, 3],
  [4, 6, 6, 5, 1, {}, 1],
  [3, 2, 9, 8, 5, { padding: 2 }, 3],
  [1, 4, 10, 10, [2, 3], { stride: [2, 1], padding: [1, 0] }, 3],
  [3, 4, 6, 6, 2, { padding: "same" }, 1],
  [8, 4, 9, 9, 3, { padding: 1, stride: 2 }, 3],
  [8, 5, 7, 6, 3, { padding: 1 }, 3],
  [8, 4, 6, 6, 3, {}, 1],
  [8, 4, 8, 9, 5, { padding: 2 }, 1],
  [9, 3, 9, 7, 3, { dilation: 2, padding: [2, 1] }, 3],
  [8, 3, 5, 5, 1, { padding: 2 }, 3],
  [10, 6, 7, 7, 2, { padding: "same" }, 3],
  [8, 3, 6, 7, [1, 3], { padding: [0, 1] }, 1],
];

// Outputs, then the gradients of two backward passes over the same forward (dw and dbias
// accumulate: twice the gradient; dx is overwritten: the gradient once).
function convPass(
  backend: Backend,
  dtype: DType,
  [inChannels, out, height, width, kernel, options, batch]: ConvCase,
  bias: boolean,
  inputGradient: boolean,
): FloatArray[] {
  return withBackend(backend, () => {
    const conv = new Conv2D(inChannels, out, kernel, { ...options, bias, dtype, seed: 7 });
    if (conv.biases) conv.biases.value.data.set(values(out, 8));
    const x = tensor([batch, inChannels, height, width], dtype, 9);
    const y = conv.forward(x, { training: true });
    const dv = tensor(y.shape, dtype, 10);
    conv.backward(dv, { inputGradient });
    const dx = conv.backward(dv, { inputGradient });
    const grads = conv.params().map((param) => param.grad.data.slice());
    return [y.data.slice(), ...grads, ...(inputGradient ? [dx.data.slice()] : [])];
  });
}

Deno.test({
  name: "blas convolutions equal the js backend's (float64 to 1e-12, float32 to 1e-5)",
  ignore: !blas,
  async fn(t) {
    const { backend, calls } = spied(blas!, ["conv2dForward", "conv2dBackward"]);
    // One thread: a sample at a time; several: the shifted products by groups of samples,
    // the weights' products on one thread.
    try {
      for (const threads of [1, 2]) {
        setThreads(threads);
        for (const c of CONV_CASES) {
          const [inChannels, out, height, width, kernel, options, batch] = c;
          const name = `${threads} thread(s): ${inChannels}→${out}, ${height}×${width}, ` +
            `kernel ${kernel}, ${JSON.stringify(options)}, batch ${batch}`;
          await t.step(name, () => {
            for (const dtype of ["float64", "float32"] as const) {
              for (const bias of [true, false]) {
                for (const inputGradient of [true, false]) {
                  calls.forEach((log) => (log.length = 0));
                  const got = convPass(backend, dtype, c, bias, inputGradient);
                  const want = convPass(jsBackend, dtype, c, bias, inputGradient);
                  assert.deepEqual(calls.get("conv2dForward"), [true], "blas ran the forward");
                  assert.deepEqual(calls.get("conv2dBackward"), [true, true], "and backward");
                  const tolerance = dtype === "float64" ? 1e-12 : 1e-5;
                  const what = ["outputs", "dweights", ...(bias ? ["dbiases"] : []), "dinputs"];
                  got.forEach((array, i) => {
                    const error = relativeError(array, want[i]);
                    assert.ok(
                      error <= tolerance,
                      `${dtype}, bias ${bias}, dx ${inputGradient}: ${what[i]} off by ${error}`,
                    );
                  });
                }
              }
            }
          });
        }
        assert.equal(openblasThreads(), threads, "OpenBLAS's threads as setThreads left them");
      }
    } finally {
      setThreads(Math.min(navigator.hardwareConcurrency, 8));
    }
  },
});

Deno.test({
  name: "blas convolutions honour the backend contract and refuse mixed element types",
  ignore: !blas,
  fn() {
    // 8 channels, stride 1 (shifted products) and 3 channels (im2col).
    for (const channels of [8, 3]) {
      const g: ConvGeometry = {
        batch: 2,
        channels,
        height: 5,
        width: 6,
        outChannels: 4,
        outH: 5,
        outW: 6,
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
      const x = Float64Array.from(values(2 * channels * 30, 1));
      const w = Float64Array.from(values(4 * channels * 9, 2));
      const b = Float64Array.from(values(4, 3));
      const dv = Float64Array.from(values(2 * 4 * 30, 4));
      // The reference: Conv2D on the js backend with these weights.
      const conv = new Conv2D(channels, 4, 3, {
        padding: 1,
        weights: w,
        biases: b,
        dtype: "float64",
      });
      const [y, dx] = withBackend(jsBackend, () => {
        const outputs = conv.forward(new Tensor(x, [2, channels, 5, 6]), { training: true });
        return [outputs.data, conv.backward(new Tensor(dv, outputs.shape)).data];
      });
      const [dwWant, dbWant] = [conv.weights.grad.data, conv.biases!.grad.data];
      const yGot = new Float64Array(y.length).fill(NaN);
      assert.equal(blas!.conv2dForward!(x, w, b, yGot, g), true);
      assert.ok(relativeError(yGot, y) < 1e-12, `outputs, ${channels} channels`);
      // dw and dbias are added to, dx is overwritten.
      const dw = new Float64Array(w.length).fill(0.5), db = new Float64Array(4).fill(-2);
      const dxGot = new Float64Array(x.length).fill(NaN);
      assert.equal(blas!.conv2dBackward!(x, w, dv, dw, db, dxGot, g), true);
      assert.ok(relativeError(dw.map((v) => v - 0.5), dwWant) < 1e-12, "dweights added to");
      assert.ok(relativeError(db.map((v) => v + 2), dbWant) < 1e-12, "dbiases added to");
      assert.ok(relativeError(dxGot, dx) < 1e-12, "dinputs overwritten");
      // Mixed element types: nothing done, false.
      const x32 = Float32Array.from(x);
      assert.equal(blas!.conv2dForward!(x32, w, b, yGot, g), false);
      assert.equal(blas!.conv2dForward!(x, w, Float32Array.from(b), yGot, g), false);
      assert.equal(blas!.conv2dBackward!(x32, w, dv, dw, db, dxGot, g), false);
      assert.equal(blas!.conv2dBackward!(x, w, dv, dw, db, Float32Array.from(dxGot), g), false);
    }
  },
});

Deno.test({
  name: "blas allocates float32 training buffers resident in the wasm memory",
  ignore: !blas,
  fn() {
    const block = blas!.allocate!("float32", RESIDENT_MIN_ELEMENTS + 5);
    assert.ok(block instanceof Float32Array, "a float32 array");
    assert.ok(block.buffer instanceof SharedArrayBuffer, "in the shared memory");
    assert.equal(block.length, RESIDENT_MIN_ELEMENTS + 5);
    assert.ok(block.every((v) => v === 0), "zeroed");
    assert.equal(blas!.allocate!("float32", RESIDENT_MIN_ELEMENTS - 1), undefined, "too small");
    assert.equal(blas!.allocate!("float64", RESIDENT_MIN_ELEMENTS), undefined, "float64: none");
    // OpenBLAS reads and writes such views in place.
    const [m, k, n] = [64, 32, 1024];
    const a = Float32Array.from(values(m * k, 1)), b = Float32Array.from(values(k * n, 2));
    const c = blas!.allocate!("float32", m * n)!;
    blas!.matmul(a, b, c, m, k, n);
    const want = new Float32Array(m * n);
    naiveBackend.matmul(a, b, want, m, k, n);
    assert.ok(relativeError(c, want) < 1e-5);
  },
});

// A small CNN's training step (SGD), with the backend's calls logged.
function cnnStep(backend: Backend): { loss: number; grads: FloatArray[]; params: FloatArray[] } {
  return withBackend(backend, () => {
    const net = new Sequential([
      new Conv2D(3, 8, 3, { padding: 1, seed: 1 }), // im2col
      new ReLU(),
      new MaxPool2D(2),
      new Conv2D(8, 8, 3, { padding: 1, seed: 2 }), // the shifted products
      new ReLU(),
      new MaxPool2D(2),
      new Flatten(),
      new Dense(8 * 16 * 16, 10, { seed: 3 }),
    ]);
    const x = tensor([16, 3, 64, 64], "float32", 4);
    const targets = Array.from({ length: 16 }, (_, i) => (7 * i) % 10);
    const options = { loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ learningRate: 0.1 }) };
    const { loss } = net.trainBatch(x, targets, options);
    const params = net.params();
    return {
      loss,
      grads: params.map((param) => param.grad.data.slice()),
      params: params.map((param) => param.value.data.slice()),
    };
  });
}

Deno.test({
  name: "a Conv2D, ReLU, MaxPool2D training step on blas equals the wasm backend's",
  ignore: !blas,
  fn() {
    const names = ["conv2dForward", "conv2dBackward", "maxPool2dForward", "maxPool2dBackward"];
    const { backend, calls } = spied(blas!, names);
    const got = cnnStep(backend);
    const want = cnnStep(wasmBackend);
    assert.deepEqual(calls.get("conv2dForward"), [true, true]);
    assert.deepEqual(calls.get("conv2dBackward"), [true, true]);
    // The first pool's buffers are resident, so the wasm kernels pool them.
    assert.equal(calls.get("maxPool2dForward")![0], true);
    assert.equal(calls.get("maxPool2dBackward")!.at(-1), true);
    assert.ok(Math.abs(got.loss - want.loss) <= 1e-5 * want.loss, `loss ${got.loss} ${want.loss}`);
    got.grads.forEach((grad, i) => {
      const error = relativeError(grad, want.grads[i]);
      assert.ok(error < 1e-4, `gradient ${i} off by ${error}`);
    });
    got.params.forEach((param, i) => {
      const error = relativeError(param, want.params[i]);
      assert.ok(error < 1e-5, `parameter ${i} off by ${error}`);
    });
  },
});

Deno.test({
  name: "blas leaves max pooling, Winograd's transforms and the LSTM cells to the wasm kernels",
  ignore: !blas,
  async fn(t) {
    await t.step("max pooling: the same bits as the layer's own loops; float64 stays there", () => {
      // Inputs and gradients resident where the backend places float32 buffers, as a
      // network's would be.
      const placed = (backend: Backend, t: Tensor) => {
        const block = backend.allocate?.(t.dtype, t.size);
        block?.set(t.data);
        return block ? new Tensor(block, t.shape) : t;
      };
      const run = (backend: Backend, dtype: DType) =>
        withBackend(backend, () => {
          const pool = new MaxPool2D(2);
          const y = pool.forward(placed(backend, tensor([8, 8, 64, 64], dtype, 5)), {
            training: true,
          });
          const dx = pool.backward(placed(backend, tensor(y.shape, dtype, 6)));
          return [y.data.slice(), dx.data.slice()];
        });
      const names = ["maxPool2dForward", "maxPool2dBackward"];
      const { backend, calls } = spied(blas!, names);
      const own = { ...blas!, maxPool2dForward: undefined, maxPool2dBackward: undefined };
      assert.deepEqual(run(backend, "float32"), run(own, "float32"));
      assert.deepEqual([calls.get(names[0]), calls.get(names[1])], [[true], [true]]);
      assert.deepEqual(run(backend, "float64"), run(own, "float64"));
      assert.deepEqual(calls.get(names[0]), [true, false], "float64: the layer's loops");
    });
    await t.step(
      "Winograd: the wasm pool's whole convolution on two threads; on one, chunks of OpenBLAS products",
      () => {
        // 24 samples of 8 channels: two chunks (16 + 8) of the blas backend's 2¹⁹ elements.
        const run = (backend: Backend) =>
          withBackend(backend, () => {
            const conv = new Conv2D(8, 8, 3, { padding: 1, algorithm: "winograd", seed: 3 });
            const x = tensor([24, 8, 32, 32], "float32", 7);
            const y = conv.forward(x, { training: true });
            const dx = conv.backward(tensor(y.shape, "float32", 8));
            return [y, dx, conv.weights.grad, conv.biases!.grad].map((t) => t.data.slice());
          });
        const names = [
          "winogradConvolution",
          "winogradWeights",
          "winogradInputs",
          "winogradOutputs",
          "winogradGradOutputs",
        ];
        const threads = getThreads();
        try {
          setThreads(2);
          const want = run(wasmBackend);
          const whole = spied(blas!, names);
          run(whole.backend).forEach((array, i) =>
            assert.ok(relativeError(array, want[i]) < 1e-5, `two threads: ${i}`)
          );
          assert.deepEqual(whole.calls.get(names[0]), [true, true], "forward and input gradient");
          assert.deepEqual(whole.calls.get(names[1]), [true], "the weights' gradient");
          setThreads(1);
          const chunked = spied(blas!, names);
          run(chunked.backend).forEach((array, i) =>
            assert.ok(relativeError(array, want[i]) < 1e-5, `one thread: ${i}`)
          );
          assert.deepEqual(chunked.calls.get(names[0]), [false, false], "declined");
          assert.deepEqual(chunked.calls.get(names[1]), [false], "declined");
          // Two chunks each: forward, input gradient and weights' gradient.
          assert.deepEqual(chunked.calls.get(names[2]), Array(6).fill(true), "input transforms");
          assert.deepEqual(chunked.calls.get(names[3]), Array(4).fill(true), "output transforms");
          assert.deepEqual(chunked.calls.get(names[4]), [true, true], "output gradients");
        } finally {
          setThreads(threads);
        }
      },
    );
    await t.step("the LSTM's float32 recurrence, forward and backward", () => {
      const run = (backend: Backend) =>
        withBackend(backend, () => {
          const lstm = new LSTM(8, 64, { seed: 4 });
          const x = tensor([64, 16, 8], "float32", 9);
          const y = lstm.forward(x, { training: true });
          const dx = lstm.backward(tensor(y.shape, "float32", 10));
          const grads = lstm.params().map((param) => param.grad.data.slice());
          return [y.data.slice(), dx.data.slice(), ...grads];
        });
      const { backend, calls } = spied(blas!, ["lstmForward", "lstmBackward"]);
      const own = { ...blas!, lstmForward: undefined, lstmBackward: undefined };
      const got = run(backend), want = run(own);
      assert.deepEqual([calls.get("lstmForward"), calls.get("lstmBackward")], [[true], [true]]);
      got.forEach((array, i) => assert.ok(relativeError(array, want[i]) < 1e-5, `array ${i}`));
    });
  },
});
