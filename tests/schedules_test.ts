import assert from "node:assert/strict";
import {
  CosineDecay,
  createOptimizer,
  createSchedule,
  ExponentialDecay,
  InverseTimeDecay,
  type LearningRateSchedule,
  registerSchedule,
  scheduleKinds,
  SGD,
  StepDecay,
} from "../mod.ts";
import { assertCloseTo } from "./_assert.ts";

const factors = (schedule: LearningRateSchedule, steps: number[]) =>
  steps.map((t) => schedule.factor(t));

Deno.test("schedule factors, worked by hand", async (t) => {
  await t.step("InverseTimeDecay: 1 / (1 + decay·t), the book's decay", () => {
    assertCloseTo(factors(new InverseTimeDecay({ decay: 0.1 }), [0, 1, 10, 30]), [
      1,
      1 / 1.1,
      0.5,
      0.25,
    ], 1e-15);
  });
  await t.step("StepDecay: gamma^floor(t / stepSize)", () => {
    assert.deepEqual(factors(new StepDecay({ stepSize: 3, gamma: 0.5 }), [0, 2, 3, 5, 6, 9]), [
      1,
      1,
      0.5,
      0.5,
      0.25,
      0.125,
    ]);
    assert.deepEqual(factors(new StepDecay({ stepSize: 1 }), [0, 1]), [1, 0.1]);
  });
  await t.step("ExponentialDecay: gamma^t", () => {
    assert.deepEqual(factors(new ExponentialDecay({ gamma: 0.5 }), [0, 1, 2, 3]), [
      1,
      0.5,
      0.25,
      0.125,
    ]);
  });
  await t.step("CosineDecay: from 1 to minFactor along half a cosine, then flat", () => {
    // steps 6: t = 2 → ½(1 + cos(π/3)) = 0.75; t = 3 → 0.5; t = 4 → 0.25.
    assertCloseTo(factors(new CosineDecay({ steps: 6 }), [0, 2, 3, 4, 6, 100]), [
      1,
      0.75,
      0.5,
      0.25,
      0,
      0,
    ], 1e-15);
    // minFactor 0.2: 0.2 + 0.8·0.5 = 0.6 halfway.
    assertCloseTo(factors(new CosineDecay({ steps: 6, minFactor: 0.2 }), [0, 3, 6, 7]), [
      1,
      0.6,
      0.2,
      0.2,
    ], 1e-15);
  });
});

Deno.test("an optimizer's step size follows its schedule", () => {
  const sgd = new SGD({ learningRate: 0.4, schedule: new StepDecay({ stepSize: 1, gamma: 0.5 }) });
  const rates: number[] = [];
  for (let t = 0; t < 3; t++) {
    rates.push(sgd.currentLearningRate);
    sgd.step([]);
  }
  assert.deepEqual(rates, [0.4, 0.2, 0.1]);
});

Deno.test("schedules rebuild from config through the registry, and third-party ones register", () => {
  const schedules: LearningRateSchedule[] = [
    new InverseTimeDecay({ decay: 1e-3 }),
    new StepDecay({ stepSize: 100, gamma: 0.3 }),
    new ExponentialDecay({ gamma: 0.99 }),
    new CosineDecay({ steps: 1000, minFactor: 0.1 }),
  ];
  for (const schedule of schedules) {
    const copy = createSchedule(schedule.kind, JSON.parse(JSON.stringify(schedule.config())));
    assert.equal(copy.toString(), schedule.toString());
    assert.deepEqual(factors(copy, [0, 7, 150]), factors(schedule, [0, 7, 150]));
  }
  assert.deepEqual(scheduleKinds().slice(0, 4), [
    "CosineDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "StepDecay",
  ]);
  registerSchedule("Warmup", (config) => ({
    kind: "Warmup",
    factor: (step: number) => Math.min(1, (step + 1) / (config.steps as number)),
    config: () => config,
    toString: () => `Warmup(steps=${config.steps})`,
  }));
  const sgd = new SGD({ schedule: createSchedule("Warmup", { steps: 4 }) });
  const copy = createOptimizer("SGD", JSON.parse(JSON.stringify(sgd.config()))) as SGD;
  assert.equal(copy.toString(), "SGD(learningRate=1, schedule=Warmup(steps=4))");
  assert.equal(copy.currentLearningRate, 0.25);
});

Deno.test("schedule options out of range are rejected", () => {
  const cases: [() => unknown, string][] = [
    [
      () => new InverseTimeDecay({ decay: -1 }),
      "new InverseTimeDecay: decay must be a finite number ≥ 0, got -1",
    ],
    [
      () => new StepDecay({ stepSize: 0 }),
      "new StepDecay: stepSize must be a positive integer, got 0",
    ],
    [
      () => new StepDecay({ stepSize: 2, gamma: 2 }),
      "new StepDecay: gamma must be a finite number in [0, 1], got 2",
    ],
    [
      () => new ExponentialDecay({ gamma: -0.5 }),
      "new ExponentialDecay: gamma must be a finite number in [0, 1], got -0.5",
    ],
    [
      () => new CosineDecay({ steps: 1.5 }),
      "new CosineDecay: steps must be a positive integer, got 1.5",
    ],
  ];
  for (const [make, message] of cases) assert.throws(make, { name: "RangeError", message });
  assert.throws(() => createSchedule("Nope"), {
    name: "RangeError",
    message: /^createSchedule: unknown schedule kind "Nope"; known kinds: CosineDecay, /,
  });
  assert.throws(() => createOptimizer("SGD", { schedule: "fast" }), {
    name: "TypeError",
    message: 'createOptimizer: config.schedule of SGD must be { kind, config }, got "fast"',
  });
  // A schedule's JSON given straight to a constructor is pointed at createOptimizer.
  const json = { kind: "StepDecay", config: { stepSize: 2 } };
  assert.throws(() => SGD.fromConfig({ schedule: json }), {
    name: "TypeError",
    message: /^new SGD: schedule must be a LearningRateSchedule .*createOptimizer\(kind, config\)/,
  });
});

Deno.test("CosineDecay with warmupSteps: linear (t + 1) / w, then the cosine from w", async (t) => {
  await t.step("factors worked by hand", () => {
    // w = 4: 1/4, 2/4, 3/4, 1; then cos over 6 steps from t = 4: 1, 0.75, 0.5, 0.25, 0, 0.
    const schedule = new CosineDecay({ steps: 6, warmupSteps: 4 });
    assertCloseTo(factors(schedule, [0, 1, 2, 3, 4, 6, 7, 8, 10, 50]), [
      0.25,
      0.5,
      0.75,
      1,
      1,
      0.75,
      0.5,
      0.25,
      0,
      0,
    ], 1e-15);
    // After the warmup it is the plain schedule shifted by w, bit for bit.
    const plain = new CosineDecay({ steps: 6, minFactor: 0.2 });
    const warm = new CosineDecay({ steps: 6, minFactor: 0.2, warmupSteps: 3 });
    for (let t = 0; t < 12; t++) assert.equal(warm.factor(t + 3), plain.factor(t));
    // warmupSteps 1: the first update already has factor 1.
    assert.equal(new CosineDecay({ steps: 6, warmupSteps: 1 }).factor(0), 1);
  });
  await t.step("config omits a zero warmup, so old configs and summaries stay the same", () => {
    const old = new CosineDecay({ steps: 6, minFactor: 0.2 });
    assert.deepEqual(old.config(), { steps: 6, minFactor: 0.2 });
    assert.deepEqual(new CosineDecay({ steps: 6, warmupSteps: 0 }).config(), {
      steps: 6,
      minFactor: 0,
    });
    assert.equal(old.toString(), "CosineDecay(steps=6, minFactor=0.2)");
    const warm = new CosineDecay({ steps: 6, minFactor: 0.2, warmupSteps: 3 });
    assert.deepEqual(warm.config(), { steps: 6, minFactor: 0.2, warmupSteps: 3 });
    assert.equal(warm.toString(), "CosineDecay(steps=6, minFactor=0.2, warmupSteps=3)");
    const copy = createSchedule("CosineDecay", JSON.parse(JSON.stringify(warm.config())));
    assert.equal(copy.toString(), warm.toString());
    assert.deepEqual(factors(copy, [0, 2, 5, 9]), factors(warm, [0, 2, 5, 9]));
  });
  await t.step("an optimizer warms up: the step size rises to learningRate", () => {
    const sgd = new SGD({
      learningRate: 0.8,
      schedule: new CosineDecay({ steps: 10, warmupSteps: 4 }),
    });
    const rates: number[] = [];
    for (let t = 0; t < 5; t++) {
      rates.push(sgd.currentLearningRate);
      sgd.step([]);
    }
    assertCloseTo(rates, [0.2, 0.4, 0.6, 0.8, 0.8], 1e-15);
  });
  await t.step("warmupSteps must be an integer ≥ 0", () => {
    for (const warmupSteps of [-1, 2.5, NaN]) {
      assert.throws(() => new CosineDecay({ steps: 6, warmupSteps }), {
        name: "RangeError",
        message: `new CosineDecay: warmupSteps must be an integer ≥ 0, got ${warmupSteps}`,
      });
    }
  });
});
