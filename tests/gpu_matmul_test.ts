// The tiled gpuMatmul against the naive kernel and a float64 CPU product: odd shapes, every
// transpose, accumulate, bias, batches with strides (0 included), offsets into the operands'
// buffers, vec4 and scalar loads.
import assert from "node:assert/strict";
import { planTiledMatmul, type TiledMatmulArgs } from "../backends/_webgpu_matmul.ts";
import type { WebGpuContext } from "../backends/webgpu.ts";
import {
  gpuMatmul,
  gpuMatmulNaive,
  type GpuMatmulOptions,
  kernel,
} from "../backends/webgpu_ops.ts";
import type { GpuTensor } from "../core/gpu.ts";
import { Tensor } from "../core/tensor.ts";
import { fromGpu, gpuTest, randomTensor, toGpu } from "./_gpu.ts";

/** One product's inputs on the CPU (float32 values) and its float64 reference. */
interface Case {
  m: number;
  k: number;
  n: number;
  options: GpuMatmulOptions;
  a: Tensor;
  b: Tensor;
  c0: Tensor; // c before the product (read when accumulating)
  bias?: Tensor;
  batch: number;
  strides: [number, number, number];
  offsets?: [number, number, number]; // elements before a, b, c in their buffers (0, 0, 0)
}

function makeCase(
  m: number,
  k: number,
  n: number,
  options: Omit<GpuMatmulOptions, "bias"> & { bias?: boolean } = {},
  seed = 1,
): Case {
  const batch = options.batch ?? 1;
  const strides: [number, number, number] = [
    options.strideA ?? m * k,
    options.strideB ?? k * n,
    options.strideC ?? m * n,
  ];
  const offsets: [number, number, number] = [
    options.offsetA ?? 0,
    options.offsetB ?? 0,
    options.offsetC ?? 0,
  ];
  const extent = (i: number, size: number) => offsets[i] + (batch - 1) * strides[i] + size;
  return {
    m,
    k,
    n,
    options: { ...options, bias: undefined },
    a: randomTensor([extent(0, m * k)], seed),
    b: randomTensor([extent(1, k * n)], seed + 1),
    c0: randomTensor([extent(2, m * n)], seed + 2),
    bias: options.bias ? randomTensor([n], seed + 3) : undefined,
    batch,
    strides,
    offsets,
  };
}

// The float64 product of the float32 inputs: what the GPU approximates. Elements of c outside
// every product (stride padding, before the offset) keep their initial values.
function reference(x: Case): Float64Array {
  const { m, k, n, a, b, batch, strides, offsets = [0, 0, 0] } = x;
  const { transA = false, transB = false, accumulate = false } = x.options;
  const c = Float64Array.from(x.c0.data);
  for (let z = 0; z < batch; z++) {
    const offA = offsets[0] + z * strides[0], offB = offsets[1] + z * strides[1];
    const offC = offsets[2] + z * strides[2];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) {
          const av = a.data[offA + (transA ? p * m + i : i * k + p)];
          const bv = b.data[offB + (transB ? j * k + p : p * n + j)];
          sum += av * bv;
        }
        if (x.bias) sum += x.bias.data[j];
        const at = offC + i * n + j;
        c[at] = accumulate ? c[at] + sum : sum;
      }
    }
  }
  return c;
}

type Runner = (
  a: GpuTensor,
  b: GpuTensor,
  c: GpuTensor,
  options: GpuMatmulOptions,
) => void;

// Runs one product on the device and returns c.
async function runCase(ctx: WebGpuContext, x: Case, run: Runner): Promise<Float32Array> {
  const [a, b, c] = [toGpu(ctx, x.a), toGpu(ctx, x.b), toGpu(ctx, x.c0)];
  const bias = x.bias ? toGpu(ctx, x.bias) : undefined;
  run(a, b, c, { ...x.options, bias });
  return (await fromGpu(ctx, c))[0];
}

// max |gpu − ref| / max(max |ref|, 1): float32 noise grows like √k.
function error(gpu: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(gpu.length, ref.length);
  let diff = 0, scale = 1;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(gpu[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / scale;
}

const tolerance = (k: number) => 1e-5 * Math.sqrt(Math.max(k, 1));
const worst = { vsFloat64: 0, vsNaive: 0, at: "", perRootK: 0 };

// The largest errors so far, for the report (after the assertions that bound them).
function logWorst(): void {
  console.log(
    `  largest so far: tiled vs float64 ${worst.vsFloat64.toExponential(2)} (${worst.at}), ` +
      `tiled vs naive ${worst.vsNaive.toExponential(2)}, ` +
      `largest error/√k ${worst.perRootK.toExponential(2)}`,
  );
}

// Checks the tiled product against float64 and against the naive kernel; returns the plan.
async function check(
  ctx: WebGpuContext,
  x: Case,
  what: string,
  args: Partial<TiledMatmulArgs> = {},
) {
  const owner = {};
  const tiled = await runCase(ctx, x, (a, b, c, options) => {
    if (Object.keys(args).length === 0) {
      gpuMatmul(ctx, owner, "tiled", a, b, c, x.m, x.k, x.n, options);
    } else {
      const plan = planTiledMatmul({ ...options, ...args, a, b, c, m: x.m, k: x.k, n: x.n })!;
      ctx.run(owner, "tiled", kernel(plan.label, plan.code), plan.tensors, plan.uniforms, [
        ...plan.workgroups,
      ]);
    }
  });
  const naive = await runCase(ctx, x, (a, b, c, options) => {
    gpuMatmulNaive(ctx, owner, "naive", a, b, c, x.m, x.k, x.n, options);
  });
  const ref = reference(x);
  const vsFloat64 = error(tiled, ref), vsNaive = error(tiled, naive);
  if (vsFloat64 > worst.vsFloat64) worst.at = what;
  worst.vsFloat64 = Math.max(worst.vsFloat64, vsFloat64);
  worst.vsNaive = Math.max(worst.vsNaive, vsNaive);
  worst.perRootK = Math.max(worst.perRootK, vsFloat64 / Math.sqrt(Math.max(x.k, 1)));
  const limit = tolerance(x.k);
  assert.ok(vsFloat64 <= limit, `${what}: tiled vs float64 ${vsFloat64.toExponential(2)}`);
  const naiveError = error(naive, ref);
  assert.ok(naiveError <= limit, `${what}: naive vs float64 ${naiveError.toExponential(2)}`);
  assert.ok(vsNaive <= limit, `${what}: tiled vs naive ${vsNaive.toExponential(2)}`);
  return tiled;
}

// The plan gpuMatmul makes for a case (to see which loads it uses).
function planOf(ctx: WebGpuContext, x: Case) {
  const [a, b, c] = [toGpu(ctx, x.a), toGpu(ctx, x.b), toGpu(ctx, x.c0)];
  return planTiledMatmul({ ...x.options, a, b, c, m: x.m, k: x.k, n: x.n })!.variant;
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 1],
  [5, 3, 7],
  [33, 17, 65],
  [64, 64, 64],
  [65, 129, 67],
  [130, 1, 3],
  [8, 1, 12], // k = 1
  [70, 20, 1], // n = 1
  [1, 40, 70], // m = 1
  [12, 8, 16], // everything a multiple of 4
  [12, 6, 20], // vec4 for the operand read along m or n, scalar along k
  [128, 48, 96], // whole tiles, three k-tiles
];
const TRANSPOSES = [[false, false], [true, false], [false, true], [true, true]] as const;
const name = (t: readonly [boolean, boolean]) =>
  `${t[0] ? "transA" : "a"}·${t[1] ? "transB" : "b"}`;

gpuTest("gpuMatmul (tiled) equals float64 and the naive kernel", async (ctx, t) => {
  const seen = new Set<string>();
  for (const [m, k, n] of SHAPES) {
    for (const trans of TRANSPOSES) {
      await t.step(`${m}×${k}×${n} ${name(trans)}`, async () => {
        const x = makeCase(m, k, n, { transA: trans[0], transB: trans[1] }, m + k + n);
        const v = planOf(ctx, x);
        seen.add(`a:${v.vecA} b:${v.vecB} c:${v.vecC}`);
        await check(ctx, x, `${m}×${k}×${n} ${name(trans)}`);
      });
    }
  }
  await t.step("the shapes covered vec4 and scalar loads of a, b and c", () => {
    for (const flag of ["a:true", "a:false", "b:true", "b:false", "c:true", "c:false"]) {
      assert.ok([...seen].some((s) => s.includes(flag)), `no case with ${flag}`);
    }
  });
  logWorst();
});

gpuTest("gpuMatmul (tiled) accumulates and adds a bias", async (ctx, t) => {
  for (const [m, k, n] of [[5, 3, 7], [33, 17, 65], [64, 64, 64], [1, 1, 1], [12, 8, 16]]) {
    for (const trans of TRANSPOSES) {
      for (const [accumulate, bias] of [[true, false], [false, true], [true, true]]) {
        const what = `${m}×${k}×${n} ${name(trans)}${accumulate ? " +=" : ""}${
          bias ? " +bias" : ""
        }`;
        await t.step(what, async () => {
          const x = makeCase(m, k, n, { transA: trans[0], transB: trans[1], accumulate, bias });
          await check(ctx, x, what);
        });
      }
    }
  }
  logWorst();
});

gpuTest("gpuMatmul (tiled) runs batches with strides, stride 0 sharing b", async (ctx, t) => {
  const cases: [string, number, number, number, GpuMatmulOptions][] = [
    ["defaults", 5, 8, 12, { batch: 3 }],
    ["padded strides, vec4", 12, 8, 16, { batch: 4, strideA: 100, strideB: 132, strideC: 196 }],
    ["odd strides, scalar", 12, 8, 16, { batch: 3, strideA: 97, strideB: 129, strideC: 193 }],
    ["shared b (stride 0)", 33, 17, 65, { batch: 3, strideB: 0 }],
    ["shared a (stride 0), transposes", 20, 12, 8, {
      batch: 5,
      strideA: 0,
      transA: true,
      transB: true,
    }],
    ["shared b, += and bias", 65, 4, 8, { batch: 2, strideB: 0, accumulate: true }],
    ["batch of 1×1×1", 1, 1, 1, { batch: 9 }],
  ];
  for (const [what, m, k, n, options] of cases) {
    await t.step(`${what}: ${options.batch} × ${m}×${k}×${n}`, async () => {
      const x = makeCase(m, k, n, { ...options, bias: what.includes("bias") });
      await check(ctx, x, what);
    });
  }
  logWorst();
});

gpuTest("gpuMatmul (tiled) reads and writes at offsets into the buffers", async (ctx, t) => {
  const cases: [string, number, number, number, GpuMatmulOptions][] = [
    ["odd offsets, scalar", 5, 3, 7, { offsetA: 3, offsetB: 5, offsetC: 7 }],
    ["offsets of 4s, vec4", 12, 8, 16, { offsetA: 8, offsetB: 12, offsetC: 4 }],
    ["a step of a sequence", 3, 16, 64, { offsetA: 32, offsetC: 128, accumulate: true }],
    ["odd offset of c only", 12, 8, 16, { offsetC: 5 }],
    ["transposes, odd", 33, 17, 65, { offsetA: 9, offsetB: 1, transA: true, transB: true }],
    ["transA over later rows", 5, 6, 20, { offsetB: 40, transA: true, accumulate: true }],
    ["batch with offsets", 12, 8, 16, {
      batch: 3,
      strideA: 100,
      strideB: 132,
      strideC: 196,
      offsetA: 4,
      offsetB: 3,
      offsetC: 8,
    }],
    ["bias at an offset", 7, 5, 12, { offsetA: 2, offsetC: 11 }],
  ];
  const seen = new Set<string>();
  for (const [what, m, k, n, options] of cases) {
    await t.step(`${what}: ${m}×${k}×${n}`, async () => {
      const x = makeCase(m, k, n, { ...options, bias: what.includes("bias") });
      const v = planOf(ctx, x);
      seen.add(`a:${v.vecA} b:${v.vecB} c:${v.vecC}`);
      await check(ctx, x, what);
      // What lies before an offset is left alone.
      const got = await runCase(
        ctx,
        x,
        (a, b, c, o) => gpuMatmul(ctx, {}, "x", a, b, c, m, k, n, o),
      );
      const before = options.offsetC ?? 0;
      assert.deepEqual(got.subarray(0, before), x.c0.data.subarray(0, before));
    });
  }
  await t.step("odd offsets took scalar loads, offsets of 4 vec4s", () => {
    assert.ok([...seen].some((s) => s.includes("a:false") && s.includes("c:false")));
    assert.ok([...seen].some((s) => s === "a:true b:true c:true"));
  });
  await t.step("an offset past the buffer throws, naming it", () => {
    const x = makeCase(4, 3, 5);
    const [a, b, c] = [toGpu(ctx, x.a), toGpu(ctx, x.b), toGpu(ctx, x.c0)];
    assert.throws(
      () => gpuMatmul(ctx, {}, "x", a, b, c, 4, 3, 5, { offsetB: 1 }),
      /gpuMatmul: b has 15 elements .*offset 1/,
    );
    assert.throws(() => gpuMatmul(ctx, {}, "x", a, b, c, 4, 3, 5, { offsetC: -1 }), RangeError);
  });
  logWorst();
});

gpuTest(
  "gpuMatmul (tiled): vec4 and scalar loads give the same bits, every run",
  async (ctx, t) => {
    for (const [m, k, n] of [[64, 64, 64], [12, 8, 16], [68, 36, 72]]) {
      for (const trans of TRANSPOSES) {
        await t.step(`${m}×${k}×${n} ${name(trans)}`, async () => {
          const x = makeCase(m, k, n, { transA: trans[0], transB: trans[1], bias: true });
          const v = planOf(ctx, x);
          assert.ok(v.vecA && v.vecB && v.vecC, "this shape should take vec4 loads");
          const vec = await check(ctx, x, "vec4", {});
          const again = await check(ctx, x, "vec4 again", {});
          const scalar = await check(ctx, x, "scalar", { vec4: false });
          const deep = await check(ctx, x, "tileK 32", { tileK: 32 });
          assert.deepEqual(again, vec, "two runs differ");
          assert.deepEqual(scalar, vec, "scalar and vec4 loads differ");
          assert.deepEqual(deep, vec, "tileK 32 and 16 differ");
        });
      }
    }
    logWorst();
  },
);

gpuTest("gpuMatmul (tiled): a and b in one buffer are bound once", async (ctx) => {
  // x·xᵀ and xᵀ·x with the same tensor as both operands.
  for (const [m, k] of [[7, 5], [16, 8]]) {
    const x = randomTensor([m, k], 11);
    const gpu = toGpu(ctx, x);
    const gram = toGpu(ctx, Tensor.zeros([m, m], { dtype: "float32" }));
    const plan = planTiledMatmul({ a: gpu, b: gpu, c: gram, m, k, n: m, transB: true })!;
    assert.equal(plan.tensors.length, 2);
    gpuMatmul(ctx, {}, "gram", gpu, gpu, gram, m, k, m, { transB: true });
    const [got] = await fromGpu(ctx, gram);
    const ref = reference({
      m,
      k,
      n: m,
      options: { transB: true },
      a: x,
      b: x,
      c0: Tensor.zeros([m, m], { dtype: "float32" }),
      batch: 1,
      strides: [m * k, m * k, m * m],
    });
    assert.ok(error(got, ref) <= tolerance(k), `x·xᵀ ${m}×${k}: ${error(got, ref)}`);
  }
});

gpuTest("gpuMatmul (tiled) folds more than 65535 workgroups", async (ctx) => {
  // 66000 products of 1×2×1: batch past a dispatch dimension.
  const x = makeCase(1, 2, 1, { batch: 66000, strideB: 0 });
  const plan = planOf(ctx, x);
  assert.ok(plan);
  const [a, b, c] = [toGpu(ctx, x.a), toGpu(ctx, x.b), toGpu(ctx, x.c0)];
  const workgroups = planTiledMatmul({ ...x.options, a, b, c, m: 1, k: 2, n: 1 })!.workgroups;
  assert.ok(workgroups.every((g) => g <= 65535), `${workgroups}`);
  assert.ok(workgroups[0] * workgroups[1] * workgroups[2] >= 66000);
  gpuMatmul(ctx, {}, "many", a, b, c, 1, 2, 1, x.options);
  const [got] = await fromGpu(ctx, c);
  assert.ok(error(got, reference(x)) <= tolerance(2));
});

gpuTest("gpuMatmul: bad arguments throw, naming the argument", async (ctx) => {
  const t = (shape: number[]) => toGpu(ctx, randomTensor(shape, 1));
  const [a, b, c] = [t([4, 3]), t([3, 5]), t([4, 5])];
  const owner = {};
  assert.throws(() => gpuMatmul(ctx, owner, "x", a, b, c, 4, 3, 6), /gpuMatmul: b has 15 elements/);
  assert.throws(() => gpuMatmul(ctx, owner, "x", a, b, c, 5, 3, 5), /gpuMatmul: a has 12 elements/);
  assert.throws(
    () => gpuMatmul(ctx, owner, "x", a, b, c, 4, 3, 5, { batch: 2, strideA: 0, strideB: 0 }),
    /gpuMatmul: c has 20 elements/,
  );
  assert.throws(
    () => gpuMatmul(ctx, owner, "x", a, b, c, 2, 3, 5, { batch: 2, strideC: 5 }),
    /strideC 5 makes the 2 products' c overlap/,
  );
  assert.throws(() => gpuMatmul(ctx, owner, "x", a, b, c, 4, 1.5, 5), RangeError);
  assert.throws(() => gpuMatmul(ctx, owner, "x", a, b, b, 3, 1, 5), /b and c are the same buffer/);
  assert.throws(
    () => gpuMatmul(ctx, owner, "x", a, b, c, 4, 3, 5, { bias: t([4]) }),
    /gpuMatmul: bias has 4 elements/,
  );
  const ints = ctx.upload(new Int32Array(12), [4, 3], "int32");
  assert.throws(() => gpuMatmul(ctx, owner, "x", ints, b, c, 4, 3, 5), TypeError);
  // Nothing to do: no dispatch, no error.
  gpuMatmul(ctx, owner, "x", a, b, c, 0, 3, 5);
  await fromGpu(ctx, c);
});
