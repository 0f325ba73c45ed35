// Conv2D's algorithms (layers/_winograd.ts): Winograd's F(2×2, 3×3) and im2col against the
// naive loop on shapes whose tiles do not divide the outputs, on the js and wasm backends,
// the same bits on 1, 2 and 3 threads, central differences, and the option itself.
import assert from "node:assert/strict";
import { parallelTuning, resetParallelTuning } from "../backends/wasm.ts";
import {
  checkGradients,
  Conv2D,
  type ConvAlgorithm,
  createLayer,
  type FloatArray,
  setThreads,
  Tensor,
  withBackend,
} from "../mod.ts";
import { maxDifference, naiveConv } from "./_conv_reference.ts";
import { assertSameBits, livePool } from "./_threads.ts";

// [what, [N, C, H, W], out, padding]: 3×3 kernels, stride 1.
type Case = [string, [number, number, number, number], number, number | "same"];
const CASES: Case[] = [
  ["5×7, padding 0", [2, 3, 5, 7], 4, 0],
  ["5×7, padding 1", [2, 3, 5, 7], 4, 1],
  ["9×6, padding 2", [3, 2, 9, 6], 5, 2],
  ["1×1, padding 1", [2, 3, 1, 1], 2, 1],
  ["4×4, padding 3 (more than the kernel reaches)", [1, 2, 4, 4], 3, 3],
  ['8×8, "same", 17 channels', [2, 17, 8, 8], 6, "same"],
  ["3×3, padding 0 (one output)", [2, 2, 3, 3], 2, 0],
];
const ALGORITHMS: ConvAlgorithm[] = ["im2col", "winograd"];

function layer(c: Case, algorithm: ConvAlgorithm, dtype: "float32" | "float64"): Conv2D {
  const [, [, channels], out, padding] = c;
  const conv = new Conv2D(channels, out, 3, { padding, algorithm, dtype, seed: 1 });
  conv.biases!.value.data.set(Array.from({ length: out }, (_, i) => 0.25 * i - 0.5));
  return conv;
}

// A training forward and backward: outputs, dinputs, dweights, dbiases.
function pass(c: Case, algorithm: ConvAlgorithm, dtype: "float32" | "float64"): FloatArray[] {
  const conv = layer(c, algorithm, dtype);
  const x = Tensor.randn(c[1], { dtype, seed: 2 });
  const outputs = conv.forward(x, { training: true });
  const d = Tensor.randn(outputs.shape, { dtype, seed: 3 });
  const dinputs = conv.backward(d);
  return [
    outputs.data.slice(),
    dinputs.data.slice(),
    conv.weights.grad.data.slice(),
    conv.biases!.grad.data.slice(),
  ];
}

Deno.test("Winograd and im2col match the naive convolution", async (t) => {
  for (const c of CASES) {
    await t.step(c[0], () => {
      const pad = c[3] === "same" ? 1 : c[3];
      const conv = layer(c, "im2col", "float64");
      const x = Tensor.randn(c[1], { dtype: "float64", seed: 2 });
      const d = Tensor.randn(conv.forward(x).shape, { dtype: "float64", seed: 3 });
      const want = naiveConv(
        x.toArray(),
        conv.weights.value.toArray(),
        [...conv.biases!.value.data],
        { kernel: [3, 3], pad: [pad, pad, pad, pad] },
        d.toArray(),
      );
      const flat = [want.outputs, want.dinputs, want.dweights].map((a) => a.flat(3) as number[]);
      flat.push(want.dbiases);
      for (const algorithm of ALGORITHMS) {
        for (const backend of ["js", "wasm"]) {
          for (const dtype of ["float64", "float32"] as const) {
            const got = withBackend(backend, () => pass(c, algorithm, dtype));
            got.forEach((array, i) => {
              const scale = Math.max(1, ...flat[i].map(Math.abs));
              const tolerance = (dtype === "float64" ? 1e-12 : 1e-5) * scale;
              const error = maxDifference([...array], flat[i]);
              assert.ok(
                error < tolerance,
                `${algorithm} ${backend} ${dtype} [${i}]: error ${error}, scale ${scale}`,
              );
            });
          }
        }
      }
    });
  }
});

Deno.test("Winograd gives the same bits on 1, 2 and 3 threads", async () => {
  const references = new Map<string, FloatArray[]>();
  try {
    // Every product to the pool, however small.
    Object.assign(parallelTuning, { threshold: 0, backoff: false });
    for (const threads of [1, 2, 3]) {
      const pool = threads > 1 ? await livePool(threads) : undefined;
      if (threads === 1) setThreads(1);
      const before = pool?.workerTasks ?? 0;
      for (const c of [...CASES, ["W4's conv2 shape, 4 samples", [4, 32, 14, 14], 64, 1] as Case]) {
        for (const dtype of ["float32", "float64"] as const) {
          const got = withBackend("wasm", () => pass(c, "winograd", dtype));
          const key = `${c[0]} ${dtype}`;
          if (threads === 1) references.set(key, got);
          else {
            got.forEach((array, i) =>
              assertSameBits(array, references.get(key)![i], `${key} [${i}], ${threads} threads`)
            );
          }
        }
      }
      if (pool) assert.ok(pool.workerTasks > before, `${threads} threads: no task ran on a worker`);
    }
  } finally {
    resetParallelTuning();
    setThreads(1);
  }
});

Deno.test("a Winograd layer's gradients match central differences", () => {
  for (const padding of [0, 1, 2]) {
    const conv = new Conv2D(2, 3, 3, { padding, algorithm: "winograd", dtype: "float64", seed: 4 });
    const x = Tensor.randn([2, 2, 5, 4], { dtype: "float64", seed: 5 });
    const report = checkGradients(conv, x);
    assert.ok(report.maxRelativeError < 1e-6, `padding ${padding}: ${report}`);
  }
});

Deno.test("Conv2D's algorithm option", async (t) => {
  await t.step('"auto" by default, kept in config() only when not "auto"', () => {
    assert.equal(new Conv2D(1, 2, 3).algorithm, "auto");
    assert.equal(new Conv2D(1, 2, 3).config().algorithm, undefined);
    const conv = new Conv2D(2, 3, 3, { padding: 1, algorithm: "winograd" });
    assert.equal(conv.config().algorithm, "winograd");
    const copy = createLayer("Conv2D", conv.config()) as Conv2D;
    assert.equal(copy.algorithm, "winograd");
    assert.deepEqual(copy.config(), conv.config());
    assert.equal(
      conv.toString(),
      'Conv2D(in=2, out=3, kernel=3×3, padding=1, algorithm="winograd")',
    );
    assert.equal(new Conv2D(2, 3, 5, { algorithm: "im2col" }).config().algorithm, "im2col");
  });
  await t.step(
    '"winograd" on a layer that is not 3×3, stride 1, dilation 1 is a RangeError',
    () => {
      for (
        const [kernel, options, got] of [
          [5, {}, "kernel 5×5, stride [1, 1], dilation [1, 1]"],
          [3, { stride: 2 }, "kernel 3×3, stride [2, 2], dilation [1, 1]"],
          [3, { dilation: [1, 2] }, "kernel 3×3, stride [1, 1], dilation [1, 2]"],
          [[3, 2], {}, "kernel 3×2, stride [1, 1], dilation [1, 1]"],
        ] as const
      ) {
        assert.throws(() => new Conv2D(1, 2, kernel, { ...options, algorithm: "winograd" }), {
          name: "RangeError",
          message: `new Conv2D: algorithm "winograd" needs a 3×3 kernel with stride 1 and ` +
            `dilation 1, got ${got}; use "im2col" or "auto"`,
        });
      }
    },
  );
  await t.step("an unknown algorithm is a RangeError", () => {
    assert.throws(
      () => new Conv2D(1, 2, 3, { algorithm: "fft" as ConvAlgorithm }),
      {
        name: "RangeError",
        message: 'new Conv2D: algorithm must be "auto", "im2col" or "winograd", got "fft"',
      },
    );
  });
  await t.step("inference and a backward without the input gradient", () => {
    const c: Case = ["6×6", [2, 3, 6, 6], 4, 1];
    const x = Tensor.randn(c[1], { dtype: "float64", seed: 6 });
    const [a, b] = ALGORITHMS.map((algorithm) => layer(c, algorithm, "float64"));
    assert.ok(maxDifference([...a.forward(x).data], [...b.forward(x).data]) < 1e-12);
    const d = Tensor.randn([2, 4, 6, 6], { dtype: "float64", seed: 7 });
    a.forward(x, { training: true });
    b.forward(x, { training: true });
    a.backward(d, { inputGradient: false });
    b.backward(d, { inputGradient: false });
    assert.ok(maxDifference([...a.weights.grad.data], [...b.weights.grad.data]) < 1e-12);
  });
});
