// Conv2D's algorithms (layers/_winograd.ts): Winograd's F(2×2, 3×3) and im2col against the
// naive loop on shapes whose tiles do not divide the outputs, on the js and wasm backends,
// the same bits on 1, 2 and 3 threads, central differences, and the option itself.
import assert from "node:assert/strict";
import { parallelTuning, resetParallelTuning, wasmBackend } from "../backends/wasm.ts";
import type { WinogradTransforms } from "../backends/_conv_tasks.ts";
import { winogradInputs, winogradOutputs } from "../layers/_winograd.ts";
import {
  type Backend,
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
      const wider: Case[] = [
        ["W4's conv2 shape, 4 samples (two units of the whole job)", [4, 32, 14, 14], 64, 1],
        ["10×10, 26 samples (seven units of 4, the last of 2)", [26, 3, 10, 10], 5, 1],
      ];
      for (const c of [...CASES, ...wider]) {
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

// The wasm backend's float32 transforms (SIMD kernels on its pool) against the JavaScript
// ones (float64, rounded once), each a plane of [N, C, H, W] with zeros top/left (negative:
// cut), the outputs [outH, outW] = [H + 2·top − 2, W + 2·left − 2].
type TransformCase = [string, [number, number, number, number], number, number];
const TRANSFORM_CASES: TransformCase[] = [
  ["W4's conv2, 14×14, padding 1", [4, 32, 14, 14], 1, 1],
  ["9×6, padding 2 (tiles 4×3)", [3, 17, 9, 6], 2, 2],
  ["7×11, padding 0 (odd outputs)", [5, 9, 7, 11], 0, 0],
  ["5×5, rows cut, columns padded by 3", [2, 40, 5, 5], -1, 3],
  ["1×1, padding 1 (one tile)", [64, 24, 1, 1], 1, 1],
  ["13×10, padding 1 (7×5 tiles)", [3, 11, 13, 10], 1, 1],
];

const transforms = wasmBackend as typeof wasmBackend & WinogradTransforms;

// An array of `length` float32 elements, placed in the wasm backend's memory (resident) or
// not, the first `used` of them filled from `seed`, the rest NaN (they must stay so).
function floats(length: number, used: number, seed: number, resident: boolean): Float32Array {
  const size = Math.max(length, 1 << 16);
  const data = resident
    ? transforms.allocate!("float32", size) as Float32Array
    : new Float32Array(size);
  data.fill(NaN);
  data.set(Tensor.randn([used], { seed }).data.subarray(0, used));
  return data.subarray(0, length);
}

// dm [16, C, count·tilesH·tilesW] = A·dy·Aᵀ for the 2×2 blocks of dy's samples [first,
// first + count) ([N, C, H, W], zeros past its edges), in float64, rounded once: the reference
// for the output transform's gradient. A = [[1, 0], [1, 1], [1, −1], [0, −1]].
function gradOutputsReference(
  dy: Float32Array,
  first: number,
  count: number,
  [channels, height, width]: [number, number, number],
  dm: Float32Array,
): void {
  const tilesH = (height + 1) >> 1, tilesW = (width + 1) >> 1;
  const tiles = count * tilesH * tilesW, plane = channels * tiles;
  const at = (s: number, c: number, r: number, q: number) =>
    r < height && q < width ? dy[(((first + s) * channels + c) * height + r) * width + q] : 0;
  for (let s = 0; s < count; s++) {
    for (let c = 0; c < channels; c++) {
      for (let ty = 0; ty < tilesH; ty++) {
        for (let tx = 0; tx < tilesW; tx++) {
          const t = c * tiles + (s * tilesH + ty) * tilesW + tx;
          const [d00, d01] = [at(s, c, 2 * ty, 2 * tx), at(s, c, 2 * ty, 2 * tx + 1)];
          const [d10, d11] = [at(s, c, 2 * ty + 1, 2 * tx), at(s, c, 2 * ty + 1, 2 * tx + 1)];
          const rows = [[d00, d01], [d00 + d10, d01 + d11], [d00 - d10, d01 - d11], [-d10, -d11]];
          rows.forEach(([r0, r1], i) =>
            [r0, r0 + r1, r0 - r1, -r1].forEach((value, j) => dm[(4 * i + j) * plane + t] = value)
          );
        }
      }
    }
  }
}

// The transforms of one case both ways: [v, y, dm] of the wasm kernels and of the
// JavaScript; dm is the output transform's gradient of x taken as dvalues.
function transformBoth(c: TransformCase, resident: boolean): Float32Array[][] {
  const [, [batch, channels, height, width], top, left] = c;
  const outH = height + 2 * top - 2, outW = width + 2 * left - 2;
  const tilesH = (outH + 1) >> 1, tilesW = (outW + 1) >> 1, tiles = batch * tilesH * tilesW;
  const x = floats(
    batch * channels * height * width + 7,
    batch * channels * height * width,
    1,
    resident,
  );
  const bias = Tensor.randn([channels], { seed: 2 }).data as Float32Array;
  const results: Float32Array[][] = [];
  const gradTiles = ((height + 1) >> 1) * ((width + 1) >> 1);
  for (const wasm of [true, false]) {
    // Chunks of two samples, as Conv2D's run takes them (the first sample not 0).
    const v = floats(16 * channels * tiles, 0, 3, true);
    const y = floats(batch * channels * outH * outW + 5, 0, 4, resident);
    const dm = floats(16 * channels * batch * gradTiles, 0, 5, true);
    for (let first = 0; first < batch; first += 2) {
      const count = Math.min(2, batch - first), chunk = count * tilesH * tilesW;
      const vc = v.subarray(0, 16 * channels * chunk);
      const dmc = dm.subarray(0, 16 * channels * count * gradTiles);
      if (wasm) {
        assert.ok(
          transforms.winogradGradOutputs!(
            x,
            first,
            count,
            channels,
            height,
            width,
            (height + 1) >> 1,
            (width + 1) >> 1,
            dmc,
          ),
          "winogradGradOutputs ran",
        );
        assert.ok(
          transforms.winogradInputs(
            x,
            first,
            count,
            channels,
            height,
            width,
            top,
            left,
            tilesH,
            tilesW,
            vc,
          ),
          "winogradInputs ran",
        );
        // The products' stand-in: m = v (as many channels out as in).
        assert.ok(
          transforms.winogradOutputs(
            vc,
            first,
            count,
            channels,
            outH,
            outW,
            tilesH,
            tilesW,
            y,
            bias,
          ),
          "winogradOutputs ran",
        );
      } else {
        winogradInputs(x, first, count, channels, height, width, top, left, tilesH, tilesW, vc);
        winogradOutputs(vc, first, count, channels, outH, outW, tilesH, tilesW, y, bias);
        gradOutputsReference(x, first, count, [channels, height, width], dmc);
      }
    }
    results.push([v.slice(), y.slice(), dm.slice()]);
  }
  return results;
}

Deno.test("the wasm backend's Winograd transforms match the JavaScript ones", async (t) => {
  for (const c of TRANSFORM_CASES) {
    for (const resident of [true, false]) {
      await t.step(`${c[0]}, x and y ${resident ? "" : "not "}resident`, () => {
        const [[v, y, dm], [vJs, yJs, dmJs]] = transformBoth(c, resident);
        // The last chunk's v and dm are compared: every element the transforms wrote.
        const pairs = [[v, vJs, "v"], [y, yJs, "y"], [dm, dmJs, "dm"]] as const;
        for (const [got, want, what] of pairs) {
          let scale = 0;
          for (const value of want) {
            if (!Number.isNaN(value)) scale = Math.max(scale, Math.abs(value));
          }
          for (let i = 0; i < want.length; i++) {
            if (Number.isNaN(want[i])) {
              assert.ok(Number.isNaN(got[i]), `${what}[${i}] was written: ${got[i]}`);
            } else {
              // Rounded at each of ≤ 4 float32 operations instead of once.
              assert.ok(
                Math.abs(got[i] - want[i]) <= 4 * 2 ** -23 * scale,
                `${what}[${i}]: ${got[i]}, JavaScript ${want[i]} (scale ${scale})`,
              );
            }
          }
        }
      });
    }
  }
});

Deno.test("the wasm backend's Winograd transforms give the same bits on 1, 2 and 3 threads", async () => {
  const references = new Map<string, Float32Array[]>();
  try {
    Object.assign(parallelTuning, { minTask: 1, backoff: false });
    for (const threads of [1, 2, 3]) {
      const pool = threads > 1 ? await livePool(threads) : undefined;
      if (threads === 1) setThreads(1);
      const before = pool?.workerTasks ?? 0;
      for (const c of TRANSFORM_CASES) {
        const [[v, y, dm]] = transformBoth(c, true);
        if (threads === 1) references.set(c[0], [v, y, dm]);
        else {
          const [vOne, yOne, dmOne] = references.get(c[0])!;
          assertSameBits(v, vOne, `${c[0]}: v, ${threads} threads`);
          assertSameBits(y, yOne, `${c[0]}: y, ${threads} threads`);
          assertSameBits(dm, dmOne, `${c[0]}: dm, ${threads} threads`);
        }
      }
      if (pool) assert.ok(pool.workerTasks > before, `${threads} threads: no task ran on a worker`);
    }
  } finally {
    resetParallelTuning();
    setThreads(1);
  }
});

// The wasm backend with its whole Winograd convolutions, weight gradients and transforms
// counted (how many ran there rather than in JavaScript), and its im2col convolutions
// (`lowered`); with `whole` false, it has neither whole convolutions nor weight gradients
// (the transforms and products chunk by chunk, the weights' gradient by im2col).
function countingBackend(whole = true): {
  backend: Backend;
  calls: { whole: number; weights: number; inputs: number; outputs: number; lowered: number };
} {
  const calls = { whole: 0, weights: 0, inputs: 0, outputs: 0, lowered: 0 };
  const backend = {
    ...transforms,
    winogradConvolution: whole
      ? (...args: Parameters<WinogradTransforms["winogradConvolution"]>): boolean => {
        const ran = transforms.winogradConvolution(...args);
        if (ran) calls.whole++;
        return ran;
      }
      : undefined,
    winogradWeights: whole
      ? (...args: Parameters<WinogradTransforms["winogradWeights"]>): boolean => {
        const ran = transforms.winogradWeights(...args);
        if (ran) calls.weights++;
        return ran;
      }
      : undefined,
    winogradInputs(...args: Parameters<WinogradTransforms["winogradInputs"]>): boolean {
      const ran = transforms.winogradInputs(...args);
      if (ran) calls.inputs++;
      return ran;
    },
    winogradOutputs(...args: Parameters<WinogradTransforms["winogradOutputs"]>): boolean {
      const ran = transforms.winogradOutputs(...args);
      if (ran) calls.outputs++;
      return ran;
    },
    conv2dForward(...args: Parameters<NonNullable<Backend["conv2dForward"]>>): boolean {
      calls.lowered++;
      return transforms.conv2dForward!(...args);
    },
  };
  return { backend: backend as Backend, calls };
}

// (The tiles' planes must be large enough to be placed in the backend's memory: 2¹⁶ elements.)
Deno.test("Conv2D by Winograd on the wasm backend matches the naive convolution, whole or by chunks", async (t) => {
  const cases: Case[] = [
    ["W4's conv2 shape, 4 samples", [4, 32, 14, 14], 64, 1],
    ["9×13, padding 0, 40 → 24", [8, 40, 9, 13], 24, 0],
    ["11×7, padding 2, 24 → 40", [8, 24, 11, 7], 40, 2],
  ];
  for (const c of cases) {
    await t.step(c[0], () => {
      const pad = c[3] === "same" ? 1 : c[3];
      const conv64 = layer(c, "im2col", "float64");
      const x = Tensor.randn(c[1], { dtype: "float64", seed: 2 });
      const d = Tensor.randn(conv64.forward(x).shape, { dtype: "float64", seed: 3 });
      const want = naiveConv(
        x.toArray(),
        conv64.weights.value.toArray(),
        [...conv64.biases!.value.data],
        { kernel: [3, 3], pad: [pad, pad, pad, pad] },
        d.toArray(),
      );
      const flat = [want.outputs, want.dinputs, want.dweights].map((a) => a.flat(3) as number[]);
      flat.push(want.dbiases);
      for (const whole of [true, false]) {
        const { backend, calls } = countingBackend(whole);
        const got = withBackend(backend, () => pass(c, "winograd", "float32"));
        // forward and the input gradient: whole, or their transforms one chunk each
        const want = whole
          ? { whole: 2, weights: 1, inputs: 0, outputs: 0, lowered: 0 }
          : { whole: 0, weights: 0, inputs: 2, outputs: 2, lowered: 0 };
        assert.deepEqual(calls, want);
        got.forEach((array, i) => {
          const scale = Math.max(1, ...flat[i].map(Math.abs));
          const error = maxDifference([...array], flat[i]);
          assert.ok(error < 1e-5 * scale, `whole ${whole} [${i}]: error ${error}, scale ${scale}`);
        });
      }
    });
  }
});

Deno.test('"auto" takes Winograd on the wasm backend for float32 layers of ≥ 16 channels', () => {
  const cases: [string, number, number, 3 | 5, "float32" | "float64", boolean][] = [
    ["64 → 64", 64, 64, 3, "float32", true],
    ["64 → 96", 64, 96, 3, "float32", true],
    ["32 → 64 (W4's conv2)", 32, 64, 3, "float32", true],
    ["64 → 32", 64, 32, 3, "float32", true],
    ["16 → 16", 16, 16, 3, "float32", true],
    ["8 → 64", 8, 64, 3, "float32", false],
    ["64 → 8", 64, 8, 3, "float32", false],
    ["1 → 32 (W4's conv1)", 1, 32, 3, "float32", false],
    ["64 → 64, float64", 64, 64, 3, "float64", false],
    ["64 → 64, 5×5", 64, 64, 5, "float32", false],
  ];
  // 16·64·tiles < 2¹⁶: the tiles' planes would not be placed in the backend's memory.
  const small = countingBackend();
  const conv64 = new Conv2D(64, 64, 3, { padding: 1, seed: 1 });
  withBackend(small.backend, () => conv64.forward(Tensor.randn([1, 64, 8, 8], { seed: 2 })));
  const none = { whole: 0, weights: 0, inputs: 0, outputs: 0, lowered: 1 };
  assert.deepEqual(small.calls, none, "16 tiles");
  for (const [what, inC, outC, kernel, dtype, winograd] of cases) {
    const { backend, calls } = countingBackend();
    const conv = new Conv2D(inC, outC, kernel, { padding: "same", dtype, seed: 1 });
    // 32 samples: 512 tiles, enough for 16 channels (16·16·512 ≥ 2¹⁶)
    const x = Tensor.randn([32, inC, 8, 8], { dtype, seed: 2 });
    const y = withBackend(backend, () => conv.forward(x, { training: true }));
    const want = { ...none, whole: winograd ? 1 : 0, lowered: winograd ? 0 : 1 };
    assert.deepEqual(calls, want, `${what}: Winograd's whole convolution ran, or im2col`);
    const reference = new Conv2D(inC, outC, kernel, {
      padding: "same",
      dtype,
      weights: conv.weights.value.data,
      algorithm: "im2col",
    });
    let scale = 1;
    for (const value of y.data) scale = Math.max(scale, Math.abs(value));
    const error = maxDifference([...y.data], [
      ...withBackend("js", () => reference.forward(x)).data,
    ]);
    assert.ok(error < 1e-5 * scale, `${what}: error ${error}`);
  }
  // A backend with only the transforms (a product per plane): im2col.
  const { backend, calls } = countingBackend(false);
  withBackend(backend, () => conv64.forward(Tensor.randn([8, 64, 8, 8], { seed: 2 })));
  assert.deepEqual(calls, none, "transforms only");
});

// x and dvalues in the backend's memory (as a training step's neighbouring layers leave them)
// or not, with and without biases: the same bits either way, and the naive convolution's
// values (the whole convolution and the weights' gradient read resident arrays in place).
Deno.test("the wasm backend's whole Winograd convolution reads resident arrays in place", async (t) => {
  // 2¹⁶ elements or more: the backend places them (69,120 each)
  const shape: [number, number, number, number] = [8, 24, 18, 20];
  for (const bias of [true, false]) {
    await t.step(bias ? "with biases" : "without biases", () => {
      const results = [false, true].map((resident) => {
        const { backend, calls } = countingBackend();
        const result = withBackend(backend, () => {
          const conv = new Conv2D(24, 24, 3, { padding: 1, bias, algorithm: "winograd", seed: 5 });
          const place = (values: Tensor) => {
            if (!resident) return values;
            const data = transforms.allocate!("float32", values.size)!;
            data.set(values.data);
            return new Tensor(data, values.shape);
          };
          const x = place(Tensor.randn(shape, { seed: 6 }));
          const y = conv.forward(x, { training: true });
          const d = place(Tensor.randn(y.shape, { seed: 7 }));
          const dx = conv.backward(d);
          const grads = conv.params().map((p) => p.grad.data.slice());
          return { conv, x, d, arrays: [y.data.slice(), dx.data.slice(), ...grads] };
        });
        assert.deepEqual(calls, { whole: 2, weights: 1, inputs: 0, outputs: 0, lowered: 0 });
        return result;
      });
      results[1].arrays.forEach((array, i) =>
        assertSameBits(array, results[0].arrays[i], `array ${i}, resident against copied`)
      );
      const { conv, x, d, arrays } = results[0];
      const want = naiveConv(
        x.toArray(),
        conv.weights.value.toArray(),
        bias ? [...conv.biases!.value.data] : new Array(24).fill(0),
        { kernel: [3, 3], pad: [1, 1, 1, 1] },
        d.toArray(),
      );
      const flat = [want.outputs, want.dinputs, want.dweights].map((a) => a.flat(3) as number[]);
      if (bias) flat.push(want.dbiases);
      flat.forEach((values, i) => {
        let scale = 1;
        for (const value of values) scale = Math.max(scale, Math.abs(value));
        const error = maxDifference([...arrays[i]], values);
        assert.ok(error < 1e-5 * scale, `[${i}]: error ${error}, scale ${scale}`);
      });
    });
  }
});
