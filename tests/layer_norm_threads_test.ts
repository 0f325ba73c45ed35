// LayerNorm's float32 loops as the wasm kernels `layerNormForward` and `layerNormBackward`,
// split by rows across the worker pool (`wasmBackend.layerNormForward`/`layerNormBackward`):
// each row by the same float64 operations whichever thread runs it, and dgamma and dbeta
// summed by fixed groups of rows (each group from 0 in row order, then the groups in order)
// that depend on the shape only, so outputs, dinputs and the parameter gradients keep the
// JavaScript loops' bits on any thread count; and the backend declines what it cannot run.
import assert from "node:assert/strict";
import { parallelTuning } from "../backends/wasm.ts";
import { wasmBackend } from "../plugin.ts";
import { type FloatArray, LayerNorm, setThreads, Tensor, withBackend } from "../mod.ts";
import { assertSameBits, livePool, onThreadCounts, resident } from "./_threads.ts";

// ≥ 2^16 elements each (resident): W5's rows of 128 (512 rows), and odd feature counts.
const SHAPES = [[4, 128, 128], [1900, 37], [2, 300, 129]];

// Deterministic values in (−scale, scale) around a large offset that changes from row to row
// (so each row's mean cancels most of its values), with special rows: constant (variance 0)
// and huge; with `nonFinite`, also a row with a NaN and one with an infinity (which make
// every dgamma NaN).
function values(
  shape: number[],
  seed: number,
  scale: number,
  offset: number,
  nonFinite = false,
): Float32Array {
  const features = shape[shape.length - 1];
  const size = shape.reduce((a, b) => a * b, 1);
  let s = seed;
  const data = Float32Array.from({ length: size }, (_, i) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    const row = Math.floor(i / features);
    return ((row % 5) - 2) * offset + (s / 2147483648 * 2 - 1) * scale;
  });
  data.fill(7, 3 * features, 4 * features);
  for (let i = 5 * features; i < 6 * features; i += 3) data[i] = 1e30;
  if (nonFinite) {
    data[8 * features + 1] = NaN;
    data[11 * features + features - 1] = -Infinity; // the last feature: the odd tail
  }
  return data;
}

// What each layerNorm call answered, through a wasm backend that records it; with `decline`,
// one whose layer loops itself (the reference). `seen` receives each forward's means and
// invStds and each backward's dgamma and dbeta: the layer's own arrays, which the backend or
// the layer's loops fill.
function spyBackend(answers: boolean[], seen: Float64Array[][] = [], decline = false) {
  type Forward = Parameters<NonNullable<typeof wasmBackend.layerNormForward>>;
  type Backward = Parameters<NonNullable<typeof wasmBackend.layerNormBackward>>;
  return {
    ...wasmBackend,
    name: "wasm-layer-norm-spy",
    layerNormForward(...args: Forward) {
      seen.push([args[5], args[6]]);
      const done = !decline && wasmBackend.layerNormForward!(...args);
      answers.push(done);
      return done;
    },
    layerNormBackward(...args: Backward) {
      seen.push([args[5], args[6]]);
      const done = !decline && wasmBackend.layerNormBackward!(...args);
      answers.push(done);
      return done;
    },
  };
}

// Layer norm of `features` with deterministic gamma and beta.
function layer(features: number): LayerNorm {
  const gamma = values([features], 21, 2, 0), beta = values([features], 22, 1, 0);
  return new LayerNorm(features, { gamma: [...gamma], beta: [...beta] });
}

/** The results of {@linkcode pass}. */
interface Pass {
  outputs: FloatArray;
  dinputs: FloatArray;
  gammaGrad: FloatArray;
  betaGrad: FloatArray;
  /** The last backward's float64 sums: dgamma, dbeta. */
  dgamma: Float64Array;
  dbeta: Float64Array;
  /** Those of a backward without dinputs. */
  dgammaOnly: Float64Array;
  dbetaOnly: Float64Array;
  /** The rows' statistics of the last forward. */
  means: Float64Array;
  invStds: Float64Array;
}

// Two training passes of a LayerNorm (the second reuses its resident buffers), then a third
// backward without dinputs.
function pass(x: Tensor, dvalues: Tensor, answers: boolean[], decline = false): Pass {
  const norm = layer(x.shape[x.rank - 1]);
  // forward, backward, forward, backward, backward: the arrays at 2, 3 and 4
  const seen: Float64Array[][] = [];
  return withBackend(spyBackend(answers, seen, decline), () => {
    let outputs: FloatArray = new Float32Array(0), dinputs: FloatArray = outputs;
    for (let round = 0; round < 2; round++) {
      outputs = norm.forward(x, { training: true }).data.slice();
      dinputs = norm.backward(dvalues).data.slice();
    }
    const [means, invStds] = seen[2].map((s) => s.slice());
    const [dgamma, dbeta] = seen[3].map((s) => s.slice());
    norm.backward(dvalues, { inputGradient: false });
    const [dgammaOnly, dbetaOnly] = seen[4].map((s) => s.slice());
    return {
      outputs,
      dinputs,
      gammaGrad: norm.gamma.grad.data.slice(),
      betaGrad: norm.beta.grad.data.slice(),
      dgamma,
      dbeta,
      dgammaOnly,
      dbetaOnly,
      means,
      invStds,
    };
  });
}

// dgamma = Σ dv·x̂ and dbeta = Σ dv in float64 over groups of `groupRows` rows, each group
// from 0 in row order, then the groups in order (Backend.layerNormBackward's contract).
function sumsByGroups(
  x: FloatArray,
  dv: FloatArray,
  means: Float64Array,
  invStds: Float64Array,
  features: number,
  groupRows: number,
): [Float64Array, Float64Array] {
  const rows = means.length;
  const dgamma = new Float64Array(features), dbeta = new Float64Array(features);
  const groupGamma = new Float64Array(features), groupBeta = new Float64Array(features);
  for (let first = 0; first < rows; first += groupRows) {
    groupGamma.fill(0);
    groupBeta.fill(0);
    for (let r = first; r < Math.min(first + groupRows, rows); r++) {
      for (let f = 0, i = r * features; f < features; f++, i++) {
        groupGamma[f] += dv[i] * ((x[i] - means[r]) * invStds[r]);
        groupBeta[f] += dv[i];
      }
    }
    for (let f = 0; f < features; f++) {
      dgamma[f] += groupGamma[f];
      dbeta[f] += groupBeta[f];
    }
  }
  return [dgamma, dbeta];
}

// Whether two arrays differ in the bits of some element.
function differ(a: FloatArray, b: FloatArray): boolean {
  return a.some((v, i) => !Object.is(v, b[i]));
}

const CASES = SHAPES.map((shape, k) => ({
  shape,
  x: resident(shape, values(shape, 11 + k, 3, 1e4)),
  dvalues: resident(shape, values(shape, 5 + k, 1, 2)),
}));

// And one with a NaN and an infinity in the inputs and in dvalues; one whose inputs and
// dvalues are ordinary arrays (the backend copies them in: a layer's outputs and dinputs,
// its training buffers, are what must lie resident).
const NON_FINITE = {
  shape: SHAPES[1],
  x: resident(SHAPES[1], values(SHAPES[1], 31, 3, 1e4, true)),
  dvalues: resident(SHAPES[1], values(SHAPES[1], 32, 1, 2, true)),
};
const COPIED = {
  shape: SHAPES[2],
  x: new Tensor(values(SHAPES[2], 41, 3, 1e4), SHAPES[2]),
  dvalues: new Tensor(values(SHAPES[2], 42, 1, 2), SHAPES[2]),
};
const ALL = [...CASES, NON_FINITE, COPIED];

Deno.test("LayerNorm's float32 loops as wasm kernels on 1, 2 and 3 threads give the loops' bits", async (t) => {
  // tasks per thread: the default, and as many small tasks as there are groups
  for (const tasksPerThread of [4, 64]) {
    await t.step(`${tasksPerThread} tasks per thread`, () =>
      onThreadCounts(() => {
        parallelTuning.tasksPerThread = tasksPerThread;
        if (tasksPerThread > 4) parallelTuning.minTask = 1 << 12;
        return ALL.map((c) => {
          const answers: boolean[] = [];
          const reference = pass(c.x, c.dvalues, answers, true);
          assert.deepEqual(answers, [false, false, false, false, false]);
          return reference;
        });
      }, (references, threads, pool) => {
        // (a worker may sleep through a single small job on a busy machine: counted over all)
        const before = pool?.workerTasks ?? 0;
        ALL.forEach((c, k) => {
          const kind = c === NON_FINITE ? " (NaN, ∞)" : c === COPIED ? " (copied)" : "";
          const what = `[${c.shape}]${kind}, ${threads} threads`;
          const want = references[k];
          const answers: boolean[] = [];
          const got = pass(c.x, c.dvalues, answers);
          // 2 rounds × forward and backward, then a backward without dinputs (which has
          // nothing resident to write when the inputs and dvalues are not)
          assert.deepEqual(answers, [true, true, true, true, c !== COPIED], what);
          for (const key of Object.keys(want) as (keyof Pass)[]) {
            assertSameBits(got[key], want[key], `${what}: ${key}`);
          }
        });
        if (pool) assert.ok(pool.workerTasks > before, `${threads} threads: no worker task`);
      }));
  }
});

Deno.test("LayerNorm's parameter sums go by groups of rows that do not depend on the thread count", async (t) => {
  const reference = (c: typeof CASES[number]) => {
    setThreads(1);
    return pass(c.x, c.dvalues, [], true);
  };
  await t.step("the cases' sums change with the grouping (so the next steps can fail)", () => {
    for (const c of CASES) {
      const features = c.shape[c.shape.length - 1];
      const want = reference(c);
      const rows = want.means.length;
      // What a backend that summed each thread's share (halves, thirds) or all rows in one
      // run would give.
      for (const groupRows of [Math.ceil(rows / 2), Math.ceil(rows / 3), rows]) {
        const [dgamma] = sumsByGroups(
          c.x.data,
          c.dvalues.data,
          want.means,
          want.invStds,
          features,
          groupRows,
        );
        assert.ok(differ(dgamma, want.dgamma), `[${c.shape}]: groups of ${groupRows} rows`);
      }
    }
  });
  await t.step(
    "wasmBackend.layerNormBackward sums by the groups it is given, on 1, 2 and 3 threads",
    () =>
      onThreadCounts(() => {
        parallelTuning.tasksPerThread = 64;
        parallelTuning.minTask = 1 << 12;
        return CASES.map((c) => reference(c));
      }, (references, threads, pool) => {
        const before = pool?.workerTasks ?? 0;
        CASES.forEach((c, k) => {
          const features = c.shape[c.shape.length - 1], want = references[k];
          const rows = want.means.length, gamma = layer(features).gamma.value.data;
          const dx = resident(c.shape, new Float32Array(c.x.size)).data;
          for (const groupRows of [1, 7, 64, rows]) {
            const what = `[${c.shape}], groups of ${groupRows}, ${threads} threads`;
            const dgamma = new Float64Array(features), dbeta = new Float64Array(features);
            const done = wasmBackend.layerNormBackward!(
              c.x.data,
              c.dvalues.data,
              gamma,
              want.means,
              want.invStds,
              dgamma,
              dbeta,
              dx,
              groupRows,
            );
            assert.ok(done, what);
            const [wantGamma, wantBeta] = sumsByGroups(
              c.x.data,
              c.dvalues.data,
              want.means,
              want.invStds,
              features,
              groupRows,
            );
            assertSameBits(dgamma, wantGamma, `${what}: dgamma`);
            assertSameBits(dbeta, wantBeta, `${what}: dbeta`);
            // the dinputs of the reference layer's last backward, whatever the grouping
            assertSameBits(dx, want.dinputs, `${what}: dinputs`);
          }
        });
        if (pool) assert.ok(pool.workerTasks > before, `${threads} threads: no worker task`);
      }),
  );
});

Deno.test("wasmBackend.layerNormForward computes known values", () => {
  // rows [1, 3] and [0, 10]: means 2 and 5, standard deviations 1 and 5 (epsilon 1e-300
  // vanishes next to them), gamma [2, 1], beta [0, 5]
  const size = 1 << 16;
  const x = resident([size / 2, 2], new Float32Array(size).map((_, i) => [1, 3, 0, 10][i % 4]));
  const y = resident([size / 2, 2], new Float32Array(size)).data;
  const means = new Float64Array(size / 2), invStds = new Float64Array(size / 2);
  const gamma = Float32Array.of(2, 1), beta = Float32Array.of(0, 5);
  assert.ok(wasmBackend.layerNormForward!(x.data, gamma, beta, 1e-300, y, means, invStds));
  assert.deepEqual([...y.subarray(0, 8)], [-2, 6, -2, 6, -2, 6, -2, 6]);
  assert.deepEqual([...means.subarray(0, 4)], [2, 5, 2, 5]);
  assert.deepEqual([...invStds.subarray(0, 4)], [1, 0.2, 1, 0.2]);
  // and back: dvalues of ones give dbeta = rows and dgamma = Σ x̂ = ∓rows (x̂ = [−1, 1])
  const dx = resident([size / 2, 2], new Float32Array(size)).data;
  const dgamma = new Float64Array(2), dbeta = new Float64Array(2);
  const ones = resident([size / 2, 2], new Float32Array(size).fill(1)).data;
  const args = [x.data, ones, gamma, means, invStds, dgamma, dbeta, dx, 100] as const;
  assert.ok(wasmBackend.layerNormBackward!(...args));
  assert.deepEqual([...dbeta], [size / 2, size / 2]);
  assert.deepEqual([...dgamma], [-size / 2, size / 2]);
  // g = gamma·1 = [2, 1]: mean(g) = 1.5, mean(g·x̂) = (−2 + 1)/2 = −0.5 in every row;
  // dx = invStd·(g − 1.5 − x̂·(−0.5)) = invStd·([0.5, −0.5] + [−0.5, 0.5]) = 0
  assert.deepEqual([...dx.subarray(0, 4)], [0, 0, 0, 0]);
});

Deno.test("wasmBackend's LayerNorm passes reject arguments of the wrong sizes", () => {
  const size = 1 << 16, features = 128, rows = size / features;
  const x = resident([rows, features], new Float32Array(size)).data;
  const y = resident([rows, features], new Float32Array(size)).data;
  const gamma = new Float32Array(features), stats = new Float64Array(rows);
  const sums = new Float64Array(features);
  assert.throws(
    () => wasmBackend.layerNormForward!(x, gamma, gamma, 1e-5, y.subarray(1), stats, stats),
    {
      name: "TypeError",
      message: "wasmBackend.layerNormForward: x and y must hold rows × features elements " +
        "(rows = means.length = invStds.length, features = gamma.length > 0), got 65536 and " +
        "65535 for 512 and 512 rows of 128",
    },
  );
  assert.throws(
    () => wasmBackend.layerNormForward!(x, gamma, gamma.subarray(1), 1e-5, y, stats, stats),
    /wasmBackend\.layerNormForward: beta has 127 elements, expected 128 like gamma/,
  );
  assert.throws(
    () => wasmBackend.layerNormBackward!(x, y, gamma, stats, stats, sums, sums, y, 0),
    {
      name: "RangeError",
      message: "wasmBackend.layerNormBackward: groupRows must be a positive integer, got 0",
    },
  );
  assert.throws(
    () => wasmBackend.layerNormBackward!(x, y, gamma, stats, stats, sums.subarray(1), sums, y, 4),
    /wasmBackend\.layerNormBackward: dgamma and dbeta must have 128 elements like gamma, got 127 and 128/,
  );
});

Deno.test("the wasm backend declines LayerNorm's loops it cannot run", async (t) => {
  try {
    await livePool(2);
    const c = CASES[0], features = c.shape[c.shape.length - 1];
    await t.step(
      "an inference forward's outputs (and its backward's dinputs) are not resident",
      () => {
        const answers: boolean[] = [];
        const norm = layer(features);
        withBackend(spyBackend(answers), () => {
          norm.forward(c.x);
          norm.backward(c.dvalues);
        });
        assert.deepEqual(answers, [false, false]);
      },
    );
    await t.step("a backward without dinputs from inputs and dvalues not resident", () => {
      const answers: boolean[] = [];
      const norm = layer(features);
      withBackend(spyBackend(answers), () => {
        norm.forward(c.x.clone());
        norm.backward(c.dvalues.clone(), { inputGradient: false });
      });
      assert.deepEqual(answers, [false, false]);
    });
    await t.step("tiny inputs are not resident", () => {
      const answers: boolean[] = [];
      const norm = layer(5);
      const small = new Tensor(values([3, 5], 3, 1, 0), [3, 5]);
      withBackend(spyBackend(answers), () => {
        norm.forward(small, { training: true });
        norm.backward(new Tensor(values([3, 5], 9, 1, 0), [3, 5]));
      });
      assert.deepEqual(answers, [false, false]);
    });
    await t.step("float64 arrays, and a float64 layer does not call it", () => {
      const size = 1 << 16;
      const x64 = wasmBackend.allocate!("float64", size)!;
      const y64 = wasmBackend.allocate!("float64", size)!;
      const gamma = new Float64Array(128), stats = new Float64Array(size / 128);
      assert.equal(
        wasmBackend.layerNormForward!(x64, gamma, gamma, 1e-5, y64, stats, stats),
        false,
      );
      const answers: boolean[] = [];
      withBackend(spyBackend(answers), () => {
        const norm = new LayerNorm(features, { dtype: "float64" });
        norm.forward(c.x.clone({ dtype: "float64" }), { training: true });
        norm.backward(c.dvalues.clone({ dtype: "float64" }));
      });
      assert.deepEqual(answers, []);
    });
  } finally {
    setThreads(1);
  }
});
