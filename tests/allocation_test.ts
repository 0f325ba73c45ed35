// Allocation fails fast and by name (issue 18): every layer checks its params' bytes against
// the allocation limit before allocating; weights are drawn without a float64 temporary;
// the wasm backend keeps every call inside its memory budget, in blocks or on fewer threads,
// with the same bits, or fails saying what to do.
import assert from "node:assert/strict";
import { parallelTuning, resetParallelTuning, WASM_MEMORY_BYTES } from "../backends/wasm.ts";
import { initializers } from "../initializers/initializers.ts";
import {
  BatchNorm,
  Conv2D,
  Dense,
  Embedding,
  getAllocationLimit,
  GRU,
  LayerNorm,
  LSTM,
  MultiHeadAttention,
  PositionalEmbedding,
  RandomState,
  RUNTIME_BUFFER_BYTES,
  setAllocationLimit,
  setThreads,
  Tensor,
} from "../mod.ts";
import { wasmBackend } from "../plugin.ts";
import { assertSameBits } from "./_threads.ts";

// Runs `fn` under an allocation limit of `bytes`, restoring the default after.
function withLimit<T>(bytes: number, fn: () => T): T {
  setAllocationLimit(bytes);
  try {
    return fn();
  } finally {
    setAllocationLimit(undefined);
  }
}

// Runs `fn` with the wasm backend's memory budget at `bytes`, then restores it.
function withBudget<T>(bytes: number, fn: () => T): T {
  parallelTuning.memoryBytes = bytes;
  try {
    return fn();
  } finally {
    resetParallelTuning();
  }
}

// Asserts that `fn` throws `message` exactly, within `ms` milliseconds.
function throwsFast(fn: () => unknown, message: string, ms = 200): void {
  const start = performance.now();
  assert.throws(fn, (error: Error) => {
    assert.ok(error instanceof RangeError, `${error}`);
    assert.equal(error.message, message);
    return true;
  });
  const took = performance.now() - start;
  assert.ok(took < ms, `took ${took.toFixed(0)} ms`);
}

const ADVICE = "build a smaller layer, or raise the limit with setAllocationLimit(bytes)";

Deno.test("the allocation limit", async (t) => {
  await t.step("defaults to what the runtime can give", () => {
    // The machine's memory where sys access is granted (-A), else V8's largest buffer.
    const sys = Deno.permissions.querySync({ name: "sys", kind: "systemMemoryInfo" });
    const total = sys.state === "granted" ? Deno.systemMemoryInfo().total : Infinity;
    assert.equal(getAllocationLimit(), Math.min(total, RUNTIME_BUFFER_BYTES));
  });

  await t.step("is set, and restored by undefined", () => {
    const before = getAllocationLimit();
    withLimit(12345, () => assert.equal(getAllocationLimit(), 12345));
    assert.equal(getAllocationLimit(), before);
  });

  await t.step("refuses what is not a positive integer", () => {
    for (
      const [value, shown] of [
        [0, "0"],
        [-1, "-1"],
        [1.5, "1.5"],
        [NaN, "NaN"],
        [Infinity, "Infinity"],
        ["2", '"2"'],
      ] as const
    ) {
      assert.throws(
        () => setAllocationLimit(value as number),
        new RangeError(
          `setAllocationLimit: bytes must be a positive integer (or undefined for the default), got ${shown}`,
        ),
      );
    }
  });
});

Deno.test("every layer with params checks their bytes before allocating", async (t) => {
  await t.step(
    "Dense(100000, 100000) fails at once by name (was: Array buffer allocation failed)",
    () => {
      const limit = getAllocationLimit().toLocaleString("en-US");
      throwsFast(
        () => new Dense(100000, 100000),
        `new Dense: the params need 80,000,800,000 bytes (weights [100000, 100000], biases [100000]: float32 values and gradients), past the allocation limit of ${limit} bytes; ${ADVICE}`,
      );
    },
  );

  await t.step(
    "Dense(40000, 32768) under an 8 GiB limit fails at once (was: 78 s, > 10 GiB)",
    () => {
      throwsFast(
        () => withLimit(8 * 2 ** 30, () => new Dense(40000, 32768)),
        `new Dense: the params need 10,486,022,144 bytes (weights [40000, 32768], biases [32768]: float32 values and gradients), past the allocation limit of 8,589,934,592 bytes; ${ADVICE}`,
      );
    },
  );

  await t.step("a shape whose size is not even a safe integer", () => {
    const limit = getAllocationLimit().toLocaleString("en-US");
    throwsFast(
      () => new Embedding(2 ** 40, 2 ** 20, { dtype: "float64" }),
      `new Embedding: the params need 18,446,744,073,709,551,616 bytes (weights [1099511627776, 1048576]: float64 values and gradients), past the allocation limit of ${limit} bytes; ${ADVICE}`,
    );
  });

  // Each layer, built at exactly its bytes and refused one byte below.
  const cases: [string, number, () => unknown, string][] = [
    ["Dense", 2 * 4 * (10 * 20 + 20), () => new Dense(10, 20), "weights [10, 20], biases [20]"],
    [
      "Conv2D",
      2 * 8 * (4 * 3 * 3 * 3 + 4),
      () => new Conv2D(3, 4, 3, { dtype: "float64" }),
      "weights [4, 3, 3, 3], biases [4]",
    ],
    [
      "Conv2D",
      2 * 4 * (4 * 3 * 3 * 3),
      () => new Conv2D(3, 4, 3, { bias: false }),
      "weights [4, 3, 3, 3]",
    ],
    ["Embedding", 2 * 4 * 50 * 8, () => new Embedding(50, 8), "weights [50, 8]"],
    [
      "PositionalEmbedding",
      2 * 4 * 16 * 8,
      () => new PositionalEmbedding(16, 8),
      "weights [16, 8]",
    ],
    ["BatchNorm", 2 * 4 * 2 * 6, () => new BatchNorm(6), "gamma [6], beta [6]"],
    [
      "LayerNorm",
      2 * 8 * 2 * 6,
      () => new LayerNorm(6, { dtype: "float64" }),
      "gamma [6], beta [6]",
    ],
    [
      "LSTM",
      2 * 4 * (3 * 20 + 5 * 20 + 2 * 20),
      () => new LSTM(3, 5),
      "inputWeights [3, 20], recurrentWeights [5, 20], inputBiases [20], recurrentBiases [20]",
    ],
    [
      "GRU",
      2 * 4 * (3 * 15 + 5 * 15 + 2 * 15),
      () => new GRU(3, 5),
      "inputWeights [3, 15], recurrentWeights [5, 15], inputBiases [15], recurrentBiases [15]",
    ],
    [
      "MultiHeadAttention",
      2 * 4 * (8 * 24 + 8 * 8 + 24 + 8),
      () => new MultiHeadAttention(8, 2),
      "inProjWeights [8, 24], outProjWeights [8, 8], inProjBiases [24], outProjBiases [8]",
    ],
    [
      "MultiHeadAttention",
      2 * 4 * (8 * 24 + 8 * 8),
      () => new MultiHeadAttention(8, 2, { bias: false }),
      "inProjWeights [8, 24], outProjWeights [8, 8]",
    ],
  ];
  for (const [kind, bytes, build, shapes] of cases) {
    await t.step(`${kind}: ${shapes}`, () => {
      withLimit(bytes, build); // exactly at the limit: built
      const dtype = /float64/.test(build.toString()) ? "float64" : "float32";
      throwsFast(
        () => withLimit(bytes - 1, build),
        `new ${kind}: the params need ${
          bytes.toLocaleString("en-US")
        } bytes (${shapes}: ${dtype} values and gradients), past the allocation limit of ${
          (bytes - 1).toLocaleString("en-US")
        } bytes; ${ADVICE}`,
      );
    });
  }
});

Deno.test("weights are drawn without a float64 temporary", async (t) => {
  await t.step("the same values as drawn in float64 and rounded once", () => {
    for (const init of ["he", "glorot", "glorotNormal", "heUniform", "nnfs"]) {
      const dense = new Dense(7, 5, { init, seed: 3 });
      const reference = new Float64Array(35);
      initializers[init](reference, 7, 5, new RandomState(3));
      assertSameBits(dense.weights.value.data, Float32Array.from(reference), `Dense ${init}`);
      const conv = new Conv2D(2, 3, 3, { init, seed: 4 });
      const conv64 = new Float64Array(3 * 2 * 9);
      initializers[init](conv64, 2 * 9, 3 * 9, new RandomState(4));
      assertSameBits(conv.weights.value.data, Float32Array.from(conv64), `Conv2D ${init}`);
    }
  });

  await t.step("Dense(4096, 4096)'s peak memory grows by about its weights only", async () => {
    // A fresh process: its peak resident memory (VmHWM) before and after the constructor.
    // The weights are 64 MiB of float32, touched as drawn; the gradients are zero pages,
    // untouched; the old float64 temporary added 128 MiB more.
    const code = `
      import { Dense } from "${new URL("../mod.ts", import.meta.url).href}";
      const peak = () => Number(/VmHWM:\\s+(\\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))[1]) * 1024;
      const before = peak();
      const layer = new Dense(4096, 4096, { seed: 1 });
      console.log(JSON.stringify({ grown: peak() - before, size: layer.weights.value.data.byteLength }));
    `;
    const { code: status, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(status, 0, new TextDecoder().decode(stderr));
    const { grown, size } = JSON.parse(new TextDecoder().decode(stdout));
    assert.equal(size, 64 * 2 ** 20);
    assert.ok(grown < 1.4 * size, `peak grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
  });
});

// Operands of small integers, so that any order of summation gives exact sums is NOT what is
// wanted here: random values show a changed order as changed bits.
function randomArray(
  length: number,
  seed: number,
  dtype: "float32" | "float64",
): Float32Array | Float64Array {
  return Tensor.randn([length], { seed, dtype }).data;
}

Deno.test("the wasm backend keeps within its memory budget", async (t) => {
  await t.step("its default budget is 4 GiB", () => {
    assert.equal(WASM_MEMORY_BYTES, 2 ** 32);
    assert.equal(parallelTuning.memoryBytes, WASM_MEMORY_BYTES);
  });

  // [output rows, output columns, terms summed] of each product, against a budget below its
  // operands' own bytes.
  const products = [
    ["matmul", 0],
    ["matmulTransA", 1],
    ["matmulTransB", 2],
  ] as const;
  for (const dtype of ["float32", "float64"] as const) {
    for (const [name, kind] of products) {
      for (
        const [rows, cols, depth] of [[700, 900, 90], [1201, 650, 40], [4000, 3, 60], [3, 1700, 80]]
      ) {
        const [m, k, n] = kind === 0
          ? [rows, depth, cols]
          : kind === 1
          ? [depth, rows, cols]
          : [rows, cols, depth];
        await t.step(`${name} ${dtype} [${m}, ${k}, ${n}] in blocks: the same bits`, () => {
          const sizes = kind === 0
            ? [m * k, k * n, m * n]
            : kind === 1
            ? [m * k, m * n, k * n]
            : [m * n, k * n, m * k];
          const a = randomArray(sizes[0], 1, dtype), b = randomArray(sizes[1], 2, dtype);
          for (const accumulate of [false, true]) {
            const start = randomArray(sizes[2], 3, dtype);
            const want = start.slice(), got = start.slice();
            wasmBackend[name](a, b, want, m, k, n, accumulate);
            const whole = (sizes[0] + sizes[1] + sizes[2]) * want.BYTES_PER_ELEMENT;
            const budget = Math.ceil(whole / 3) + 300_000; // too small for one piece
            assert.ok(budget < whole);
            withBudget(budget, () => wasmBackend[name](a, b, got, m, k, n, accumulate));
            assertSameBits(got, want, `${name} accumulate=${accumulate}`);
          }
        });
      }
    }
  }

  await t.step("matmulBias in blocks: the same bits", () => {
    const [m, k, n] = [400, 64, 300];
    const a = randomArray(m * k, 1, "float32"), b = randomArray(k * n, 2, "float32");
    const bias = randomArray(n, 3, "float32");
    const want = new Float32Array(m * n), got = new Float32Array(m * n);
    wasmBackend.matmulBias!(a, b, bias, want, m, k, n);
    withBudget(300_000, () => wasmBackend.matmulBias!(a, b, bias, got, m, k, n));
    assertSameBits(got, want, "matmulBias");
  });

  await t.step("element-wise passes in pieces: the same bits", () => {
    const [m, n] = [500, 300];
    const x = randomArray(m * n, 1, "float32"), dv = randomArray(m * n, 2, "float32");
    const bias = randomArray(n, 3, "float32");
    const run = () => {
      const c = x.slice(), sums = randomArray(n, 4, "float32"), relu = new Float32Array(m * n);
      const drelu = new Float32Array(m * n);
      wasmBackend.addBias(c, bias, m, n);
      wasmBackend.sumColumns(x, sums, m, n, true);
      wasmBackend.relu!(x, relu);
      wasmBackend.reluBackward!(x, dv, drelu);
      const [value, grad, momentum, cache] = [5, 6, 7, 8].map((seed) =>
        randomArray(m * n, seed, "float32")
      );
      cache.forEach((v, i) => cache[i] = Math.abs(v));
      const hyper = {
        learningRate: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-7,
        correction1: 0.5,
        correction2: 0.3,
      };
      wasmBackend.adam!(value, grad, momentum, cache, hyper);
      return [c, sums, relu, drelu, value, momentum, cache];
    };
    const want = run();
    const got = withBudget(200_000, run); // pieces of 6,250 elements
    const names = [
      "addBias",
      "sumColumns",
      "relu",
      "reluBackward",
      "adam value",
      "momentum",
      "cache",
    ];
    got.forEach((array, i) => assertSameBits(array, want[i], names[i]));
  });

  await t.step("a reduction too long for one block fails, saying what to do", () => {
    const [m, k, n] = [64, 40000, 64];
    const a = new Float32Array(m * k), b = new Float32Array(k * n), c = new Float32Array(m * n);
    withBudget(4_000_000, () =>
      assert.throws(
        () => wasmBackend.matmul(a, b, c, m, k, n),
        new RangeError(
          `wasmBackend.matmul: a product summing 40000 terms per output needs 43,091,136 bytes of WebAssembly memory even in blocks of at most 32 × 32 outputs, past the wasm backend's budget of 4,000,000 bytes; use a smaller batch, or setBackend("js") for this work`,
        ),
      ));
  });

  // The probe: [1, C, 1024, 1024] through Conv2D(C, C, 3, { padding: 1 }) failed for C = 24–32
  // and 64 on 2 threads (Memory.grow(): Maximum memory size exceeded) and passed for 33–48.
  // Here the same shapes scaled down 16× in area against a budget scaled down 16×, forward
  // and backward, on 2 threads and 1: every C runs. C = 8 fits on 2 threads, C = 24–32 run
  // on one (the same bits); from C = 40 one thread's scratch passes the budget, and Conv2D
  // lowers the convolution into products, computed in blocks: the outputs and dinputs keep
  // their bits, dweights and dbiases (sums of 65,536 terms) are summed in another order.
  for (const channels of [8, 24, 32, 40, 64]) {
    await t.step(`Conv2D(${channels}, ${channels}, 3) on [1, C, 256, 256], budget 256 MiB`, () => {
      const size = 256;
      const conv = new Conv2D(channels, channels, 3, { padding: 1, seed: 1 });
      const x = Tensor.randn([1, channels, size, size], { seed: 2 });
      const dv = Tensor.randn([1, channels, size, size], { seed: 3 });
      const pass = () => {
        conv.weights.zeroGrad();
        conv.biases!.zeroGrad();
        const y = conv.forward(x);
        const dx = conv.backward(dv);
        return [y.data, dx.data, conv.weights.grad.data.slice(), conv.biases!.grad.data.slice()];
      };
      setThreads(1);
      const want = pass();
      for (const threads of [2, 1]) {
        setThreads(threads);
        const got = withBudget(2 ** 28, pass);
        const names = ["outputs", "dinputs", "dweights", "dbiases"];
        got.forEach((array, i) => {
          const what = `${names[i]}, ${threads} threads`;
          if (channels < 40 || i < 2) return assertSameBits(array, want[i], what);
          for (let j = 0; j < array.length; j++) {
            // float32 sums of 65,536 terms of about 1: a few ulps of 256 apart.
            const error = Math.abs(array[j] - want[i][j]);
            assert.ok(
              error < 1e-2 + 1e-5 * Math.abs(want[i][j]),
              `${what}: element ${j} is ${array[j]}, ${want[i][j]} whole`,
            );
          }
        });
      }
      setThreads(1);
    });
  }
});

Deno.test("a convolution's outputs past the limit are refused before they are allocated", () => {
  // The probe, a [64, 3, 512, 512] batch through Conv2D(3, 64, 3, padding 1), needs 4 GiB
  // of outputs and as much again for their gradient in training (it was killed at a 6 GiB cap);
  // here the same at 1/64 the size: [8, 3, 128, 128] → 32 MiB of outputs, 64 MiB in training.
  const conv = new Conv2D(3, 64, 3, { padding: 1, seed: 1 });
  const x = Tensor.zeros([8, 3, 128, 128]);
  withLimit(48 * 2 ** 20, () => {
    assert.throws(() => conv.forward(x, { training: true }), {
      name: "RangeError",
      message: "Conv2D.forward: the outputs [8, 64, 128, 128] need 67,108,864 bytes (float32, " +
        "with their gradient in training), past the allocation limit of 50,331,648 bytes; use " +
        "a smaller batch, or raise the limit with setAllocationLimit(bytes)",
    });
    assert.deepEqual(conv.forward(x).shape, [8, 64, 128, 128], "inference needs half");
  });
});
