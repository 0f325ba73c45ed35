// The wasm backend's convolution (backends/_wasm_conv.ts): a sample at a time in each
// thread's scratch, on the worker pool. It must agree with a naive loop and with Conv2D's
// own lowering, and give the same bits on any thread count, gradients included.
import assert from "node:assert/strict";
import { parallelTuning, resetParallelTuning } from "../backends/wasm.ts";
import { backwardGroup } from "../backends/_wasm_conv.ts";
import { readConv, writeConvDescriptor } from "../backends/_conv_tasks.ts";
import { wasmBackend } from "../plugin.ts";
import {
  Adam,
  Conv2D,
  type Conv2DOptions,
  type FloatArray,
  type Param,
  setThreads,
  SoftmaxCrossEntropy,
  takeRows,
  Tensor,
  withBackend,
} from "../mod.ts";
import { workloadW4, workloadW4Model } from "../bench/_workload_data.ts";
import { maxDifference, naiveConv, type NaiveWindow } from "./_conv_reference.ts";
import { assertSameBits, livePool } from "./_threads.ts";

interface Case {
  what: string;
  input: [number, number, number, number]; // [N, C, H, W]
  out: number;
  kernel: [number, number];
  options: Conv2DOptions;
  window: NaiveWindow;
}

// Awkward geometries, and a batch of 300 (backward sums the weights' gradient in groups of
// two samples there, groups being at most 256).
const CASES: Case[] = [
  {
    what: "3×2, stride 2, padding 1",
    input: [5, 3, 9, 7],
    out: 4,
    kernel: [3, 2],
    options: { stride: 2, padding: 1 },
    window: { kernel: [3, 2], stride: [2, 2], pad: [1, 1, 1, 1] },
  },
  {
    what: '3×3 "same", 13 output channels',
    input: [7, 5, 11, 10],
    out: 13,
    kernel: [3, 3],
    options: { padding: "same" },
    window: { kernel: [3, 3], pad: [1, 1, 1, 1] },
  },
  {
    what: "2×3, dilation [2, 1], stride [1, 2], no bias",
    input: [4, 2, 12, 9],
    out: 3,
    kernel: [2, 3],
    options: { dilation: [2, 1], stride: [1, 2], bias: false },
    window: { kernel: [2, 3], dilation: [2, 1], stride: [1, 2] },
  },
  {
    what: "1×1 over 300 samples",
    input: [300, 3, 4, 5],
    out: 2,
    kernel: [1, 1],
    options: {},
    window: { kernel: [1, 1] },
  },
];

function layer(c: Case, dtype: "float32" | "float64"): Conv2D {
  const conv = new Conv2D(c.input[1], c.out, c.kernel, { ...c.options, dtype, seed: 1 });
  conv.biases?.value.data.set(Array.from({ length: c.out }, (_, i) => 0.25 * i - 0.5));
  return conv;
}

// Forward and backward of one case: outputs, dinputs, dweights, dbiases. The backward pass
// follows the forward at once, while the workers still spin (and the memory grows between).
function pass(c: Case, dtype: "float32" | "float64", training = true): FloatArray[] {
  const conv = layer(c, dtype);
  const x = Tensor.randn(c.input, { dtype, seed: 2 });
  const d = Tensor.randn(conv.forward(x).shape, { dtype, seed: 3 });
  const outputs = conv.forward(x, { training });
  const dinputs = conv.backward(d);
  return [
    outputs.data.slice(),
    dinputs.data.slice(),
    conv.weights.grad.data.slice(),
    ...(conv.biases ? [conv.biases.grad.data.slice()] : []),
  ];
}

Deno.test("the wasm convolution matches a naive loop and Conv2D's own lowering", () => {
  const flat = (nested: unknown) => (nested as number[]).flat(4) as number[];
  for (const c of CASES) {
    // pass()'s layer and data, through the naive float64 loop.
    const conv = layer(c, "float64");
    const x = Tensor.randn(c.input, { dtype: "float64", seed: 2 });
    const d = Tensor.randn(conv.forward(x).shape, { dtype: "float64", seed: 3 });
    const want = naiveConv(
      x.toArray(),
      conv.weights.value.toArray(),
      conv.biases ? [...conv.biases.value.data] : null,
      c.window,
      d.toArray(),
    );
    const [outputs, dinputs, dweights, dbiases] = withBackend("wasm", () => pass(c, "float64"));
    assert.ok(maxDifference([...outputs], flat(want.outputs)) < 1e-12, `${c.what}: outputs`);
    assert.ok(maxDifference([...dinputs], flat(want.dinputs)) < 1e-12, `${c.what}: dinputs`);
    assert.ok(maxDifference([...dweights], flat(want.dweights)) < 1e-11, `${c.what}: dweights`);
    if (dbiases) {
      assert.ok(maxDifference([...dbiases], want.dbiases) < 1e-11, `${c.what}: dbiases`);
    }
    // float32: the wasm convolution against Conv2D's own lowering on the js backend.
    const fast = withBackend("wasm", () => pass(c, "float32"));
    const lowered = withBackend("js", () => pass(c, "float32"));
    assert.equal(fast.length, lowered.length);
    fast.forEach((got, i) => {
      const scale = Math.max(1, ...lowered[i].map(Math.abs));
      assert.ok(maxDifference([...got], [...lowered[i]]) < 2e-5 * scale, `${c.what}: ${i}`);
    });
  }
});

Deno.test("a convolution too large to copy whole into the kernels' memory is lowered by Conv2D", () => {
  const c = CASES[1];
  const answers: boolean[] = [];
  const spy = {
    ...wasmBackend,
    name: "wasm-spy",
    conv2dForward(...args: Parameters<NonNullable<typeof wasmBackend.conv2dForward>>) {
      answers.push(wasmBackend.conv2dForward!(...args));
      return answers.at(-1)!;
    },
    conv2dBackward(...args: Parameters<NonNullable<typeof wasmBackend.conv2dBackward>>) {
      answers.push(wasmBackend.conv2dBackward!(...args));
      return answers.at(-1)!;
    },
  };
  const whole = withBackend(spy, () => pass(c, "float64"));
  assert.deepEqual(answers, [true, true, true]); // forward twice (pass() takes the shape first)
  try {
    parallelTuning.convElements = 1000; // below this case's arrays
    const lowered = withBackend(spy, () => pass(c, "float64"));
    assert.deepEqual(answers.slice(3), [false, false, false]);
    whole.forEach((array, i) => assert.ok(maxDifference([...array], [...lowered[i]]) < 1e-12));
  } finally {
    resetParallelTuning();
  }
});

Deno.test("backward's groups of samples depend on the sizes only", () => {
  assert.equal(backwardGroup(64, 18432), 1); // W4's second layer: one sample a group
  assert.equal(backwardGroup(300, 6), 2); // at most 256 groups
  assert.equal(backwardGroup(64, 1 << 20), 16); // at most 2^22 elements of group sums
  assert.equal(backwardGroup(3, 1 << 23), 3);
});

Deno.test("the wasm convolution gives the same bits on 1, 2, 3 and 4 threads", async () => {
  const references = new Map<string, FloatArray[]>();
  try {
    // Every convolution to the pool, however small.
    Object.assign(parallelTuning, { threshold: 0, backoff: false });
    for (const threads of [1, 2, 3, 4]) {
      const pool = threads > 1 ? await livePool(threads) : undefined;
      if (threads === 1) setThreads(1);
      const before = pool?.workerTasks ?? 0;
      for (const c of CASES) {
        for (const dtype of ["float32", "float64"] as const) {
          const got = withBackend("wasm", () => pass(c, dtype));
          const key = `${c.what} ${dtype}`;
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

Deno.test("W4's first 8 training steps end in the same weights on 1, 2 and 3 threads", async () => {
  const batch = 64, steps = 8;
  const workload = workloadW4({ samples: batch * steps });
  const train = () => {
    const model = workloadW4Model(workload);
    const step = { loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ learningRate: 1e-3 }) };
    for (let s = 0; s < steps; s++) {
      const rows = Int32Array.from({ length: batch }, (_, i) => s * batch + i);
      const labels = workload.y.subarray(s * batch, (s + 1) * batch);
      withBackend("wasm", () => model.trainBatch(takeRows(workload.x, rows), labels, step));
    }
    return model.params().map((p: Param) => p.value.data.slice());
  };
  try {
    parallelTuning.backoff = false; // every large job on the pool, even on a busy machine
    setThreads(1);
    const reference = train();
    for (const threads of [2, 3]) {
      const pool = await livePool(threads);
      const before = pool.workerTasks;
      const weights = train();
      assert.ok(pool.workerTasks > before, `${threads} threads: no task ran on a worker`);
      weights.forEach((w, i) =>
        assertSameBits(w, reference[i], `parameter ${i}, ${threads} threads`)
      );
    }
  } finally {
    resetParallelTuning();
    setThreads(1);
  }
});

Deno.test("a task whose view of the memory lags behind a grow refreshes it, or says so", () => {
  // Seen in a worker: the calling thread grew the memory to 3.5 MB for a backward pass, the
  // worker's memory.buffer still covered 2.9 MB. Here a memory whose buffer lags until grow.
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 4, shared: true });
  const geometry = {
    batch: 1,
    channels: 1,
    height: 3,
    width: 3,
    outChannels: 1,
    outH: 3,
    outW: 3,
    kernelH: 1,
    kernelW: 1,
    strideH: 1,
    strideW: 1,
    dilationH: 1,
    dilationW: 1,
    padTop: 0,
    padBottom: 0,
    padLeft: 0,
    padRight: 0,
  };
  const placement = {
    module: 0,
    tile: [6, 8] as const,
    x: 64,
    y: 80,
    packedWeights: 96,
    bias: -1,
    dx: -1,
    weightParts: -1,
    biasParts: -1,
    scratch: 128,
    scratchLength: 1024,
    group: 1,
  };
  writeConvDescriptor(new Int32Array(memory.buffer), 0, geometry, placement);
  const lagging = (refreshes: boolean) => {
    let stale = true;
    const short = new SharedArrayBuffer(65536); // the first page: the descriptor
    new Uint8Array(short).set(new Uint8Array(memory.buffer, 0, 65536));
    return {
      get buffer() {
        return stale ? short : memory.buffer;
      },
      grow(pages: number) {
        if (refreshes) stale = false;
        return memory.grow(pages);
      },
    } as unknown as WebAssembly.Memory;
  };
  const view = readConv({ memory: lagging(true), exports: [] }, 0, 0);
  assert.equal(view.heap.length, 2 * 65536 / 4);
  assert.throws(
    () => readConv({ memory: lagging(false), exports: [] }, 0, 0),
    /convolution task: the memory is 65536 bytes, expected 131072/,
  );
  // A descriptor above resident blocks, beyond what the lagging buffer covers.
  writeConvDescriptor(new Int32Array(memory.buffer), 70_000 / 4, geometry, placement);
  assert.equal(readConv({ memory: lagging(true), exports: [] }, 0, 70_000).heap.length, 32768);
  assert.throws(
    () => readConv({ memory: lagging(false), exports: [] }, 0, 70_000),
    /convolution task: the memory is 65536 bytes, expected 70128/,
  );
});
