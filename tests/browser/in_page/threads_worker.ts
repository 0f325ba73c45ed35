// Inside a Worker of a cross-origin isolated page: the products and a convolution on one
// thread and on two must give the same bits, and the pool's workers must have done part of
// the work (the convolution's tasks run the JavaScript copied into the workers' source).
import {
  Conv2D,
  getThreads,
  MaxPool2D,
  ReLU,
  Sequential,
  setThreads,
  Tensor,
  threadsUnavailable,
  wasmSupport,
} from "../../../mod.ts";
import { wasmBackend } from "../../../plugin.ts";
import { loadThreads } from "../../../backends/wasm.ts";

// Odd sizes, large enough (≥ 2^20 multiply-adds) to go to the pool.
const M = 301, K = 257, N = 131;
const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i) * 0.5);
const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.7));
const bt = Float32Array.from({ length: N * K }, (_, i) => Math.cos(i * 0.3));
const g = Float32Array.from({ length: M * N }, (_, i) => Math.sin(i * 1.3));

function products(): Float32Array[] {
  const forward = new Float32Array(M * N);
  const transA = new Float32Array(K * N);
  const transB = new Float32Array(M * N);
  wasmBackend.matmul(a, b, forward, M, K, N);
  wasmBackend.matmulTransA(a, g, transA, M, K, N);
  wasmBackend.matmulTransB(a, bt, transB, M, N, K); // [M, K]·[N, K]ᵀ
  return [forward, transA, transB];
}

// A convolution's outputs and gradients (3.6 M multiply-adds a product: on the pool).
const conv = new Conv2D(8, 16, 3, { padding: 1, seed: 1 });
const images = Tensor.randn([8, 8, 14, 14], { seed: 2 });
const dvalues = Tensor.randn([8, 16, 14, 14], { seed: 3 });
function convolution(): Float32Array[] {
  conv.weights.grad.data.fill(0);
  conv.biases!.grad.data.fill(0);
  const outputs = conv.forward(images, { training: true }).data.slice();
  const dinputs = conv.backward(dvalues).data.slice();
  return [outputs, dinputs, conv.weights.grad.data.slice(), conv.biases!.grad.data.slice()]
    .map((array) => array as Float32Array);
}

const sameBits = (x: Float32Array, y: Float32Array) =>
  x.length === y.length &&
  new Uint32Array(x.buffer).every((v, i) => v === new Uint32Array(y.buffer)[i]);

setThreads(1);
const one = products();
const convOne = convolution();
setThreads(2);
// The caller claims tasks too, so the first products may finish before the workers have
// started (tens of ms in Chromium): repeat until they have taken part, for up to 5 s.
const variant = wasmSupport() === "relaxed-simd" ? "relaxed-simd" : "simd";
const identical = [true, true, true];
const started = performance.now();
let rounds = 0;
do {
  products().forEach((product, i) => identical[i] &&= sameBits(product, one[i]));
  rounds++;
  await new Promise((resolve) => setTimeout(resolve, 10));
} while (!(loadThreads(variant)?.current?.workerTasks) && performance.now() - started < 5000);
// Workers live now: the convolution, until they have run some of its tasks.
const tasksBefore = loadThreads(variant)?.current?.workerTasks ?? 0;
let convIdentical = true, convRounds = 0;
do {
  convolution().forEach((array, i) => convIdentical &&= sameBits(array, convOne[i]));
  convRounds++;
} while (
  (loadThreads(variant)?.current?.workerTasks ?? 0) === tasksBefore && convRounds < 100
);
const workerTasks = loadThreads(variant)?.current?.workerTasks ?? 0;

// A Conv2D → ReLU → MaxPool2D training step whose activations are resident in the shared
// memory (large enough), so that its passes run in place: the same bits on 1 and 2 threads.
const cnnImages = Tensor.randn([16, 8, 32, 32], { seed: 5 });
function cnnStep(): { arrays: Float32Array[]; resident: boolean } {
  const net = new Sequential([
    new Conv2D(8, 16, 3, { padding: 1, seed: 4 }),
    new ReLU(),
    new MaxPool2D(2),
  ]);
  const outputs = net.forward(cnnImages, { training: true });
  const dinputs = net.backward(outputs);
  const grads = net.params().map((param) => param.grad.data.slice());
  return {
    arrays: [outputs.data.slice(), dinputs.data.slice(), ...grads] as Float32Array[],
    resident: outputs.data.buffer instanceof SharedArrayBuffer,
  };
}
setThreads(1);
const cnnOne = cnnStep();
setThreads(2);
const cnnTwo = cnnStep();
postMessage({
  cnnIdentical: cnnOne.arrays.every((array, i) => sameBits(array, cnnTwo.arrays[i])),
  cnnResident: cnnOne.resident && cnnTwo.resident,
  threads: getThreads(),
  convIdentical,
  convWorkerTasks: workerTasks - tasksBefore,
  why: threadsUnavailable(),
  identical,
  workerTasks,
  rounds,
});
setThreads(1); // the pool's workers exit at once
