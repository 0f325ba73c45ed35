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
