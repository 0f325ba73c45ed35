import assert from "node:assert/strict";
import { Dense, initializers, RandomState } from "../mod.ts";

function draw(name: string, fanIn: number, fanOut: number, seed = 0): Float64Array {
  const out = new Float64Array(fanIn * fanOut);
  initializers[name](out, fanIn, fanOut, new RandomState(seed));
  return out;
}

function variance(values: Float64Array): number {
  let sum = 0;
  let squares = 0;
  for (const v of values) {
    sum += v;
    squares += v * v;
  }
  const mean = sum / values.length;
  return squares / values.length - mean * mean;
}

Deno.test("initializers follow their formulas", async (t) => {
  await t.step(
    "normal ones are randn scaled: he √(2/fanIn), glorotNormal √(2/(fanIn+fanOut)), nnfs 0.01",
    () => {
      const random = new RandomState(3);
      const randn = Array.from({ length: 12 }, () => random.randn());
      assert.deepEqual(Array.from(draw("he", 4, 3, 3)), randn.map((v) => v * Math.sqrt(2 / 4)));
      assert.deepEqual(
        Array.from(draw("glorotNormal", 4, 3, 3)),
        randn.map((v) => v * Math.sqrt(2 / 7)),
      );
      assert.deepEqual(Array.from(draw("nnfs", 4, 3, 3)), randn.map((v) => 0.01 * v));
    },
  );
  await t.step(
    "uniform ones are (2u − 1)·a: heUniform a = √(6/fanIn), glorot a = √(6/(fanIn+fanOut))",
    () => {
      const random = new RandomState(4);
      const u = Array.from({ length: 12 }, () => 2 * random.random() - 1);
      assert.deepEqual(Array.from(draw("heUniform", 4, 3, 4)), u.map((v) => v * Math.sqrt(6 / 4)));
      assert.deepEqual(
        Array.from(draw("glorotUniform", 4, 3, 4)),
        u.map((v) => v * Math.sqrt(6 / 7)),
      );
    },
  );
  await t.step(
    "variances match on a large matrix: 2/fanIn for He, 2/(fanIn+fanOut) for Glorot",
    () => {
      const [fanIn, fanOut] = [200, 300];
      const expected: Record<string, number> = {
        he: 2 / fanIn,
        heUniform: 2 / fanIn, // a²/3 = 6/fanIn/3
        glorotUniform: 2 / (fanIn + fanOut),
        glorotNormal: 2 / (fanIn + fanOut),
        nnfs: 1e-4,
      };
      for (const [name, target] of Object.entries(expected)) {
        const v = variance(draw(name, fanIn, fanOut, 5));
        // 60,000 draws: the sample variance is within 2% of the true one at over 4σ.
        assert.ok(Math.abs(v / target - 1) < 0.02, `${name}: variance ${v}, expected ${target}`);
      }
    },
  );
  await t.step(
    "aliases: he = heNormal, glorot = xavier = glorotUniform, xavierNormal = glorotNormal",
    () => {
      assert.equal(initializers.he, initializers.heNormal);
      assert.equal(initializers.glorot, initializers.glorotUniform);
      assert.equal(initializers.xavier, initializers.glorotUniform);
      assert.equal(initializers.xavierUniform, initializers.glorotUniform);
      assert.equal(initializers.xavierNormal, initializers.glorotNormal);
    },
  );
  await t.step("Dense takes them by name and rejects unknown names", () => {
    const dense = new Dense(4, 3, { init: "glorotNormal", seed: 3, dtype: "float64" });
    assert.deepEqual(
      Array.from(dense.weights.value.data),
      Array.from(draw("glorotNormal", 4, 3, 3)),
    );
    assert.throws(() => new Dense(2, 2, { init: "lecun" }), {
      name: "RangeError",
      message:
        /^new Dense: unknown init "lecun", expected one of he, heNormal, heUniform, glorot, /,
    });
  });
});
