import assert from "node:assert/strict";
import {
  AdaGrad,
  Adam,
  AdamW,
  CosineDecay,
  createOptimizer,
  Dense,
  InverseTimeDecay,
  modelFromBytes,
  type Optimizer,
  Param,
  RMSprop,
  Sequential,
  SGD,
  type SGDOptions,
  StepDecay,
  Tensor,
} from "../mod.ts";
import { assertCloseTo } from "./_assert.ts";

const f64 = { dtype: "float64" } as const;

// The tiny problem: minimize L = ½‖w‖² from w = [1, −2], so the gradient is w itself.
// Returns w after each of `steps` updates.
function descend(
  optimizer: Optimizer,
  steps = 3,
  param = new Param("w", Tensor.from([1, -2], f64)),
): number[][] {
  const path: number[][] = [];
  for (let t = 0; t < steps; t++) {
    param.grad.data.set(param.value.data);
    optimizer.step([param]);
    path.push(Array.from(param.value.data));
  }
  return path;
}

function assertPath(actual: number[][], expected: number[][], tolerance = 1e-14): void {
  actual.forEach((w, t) => assertCloseTo(w, expected[t], tolerance));
}

Deno.test("three hand-computed updates on ½‖w‖² from w = [1, −2]", async (t) => {
  await t.step("SGD, lr 0.5: w halves each step", () => {
    assert.deepEqual(descend(new SGD({ learningRate: 0.5 })), [[0.5, -1], [0.25, -0.5], [
      0.125,
      -0.25,
    ]]);
  });
  await t.step("SGD, lr 0.5, the book's decay 1: lr_t = 0.5, 0.25, 1/6", () => {
    // w1 = (1 − 0.5)·w0, w2 = (1 − 0.25)·w1 = 0.375·w0, w3 = (1 − 1/6)·w2 = 0.3125·w0
    assertPath(descend(new SGD({ learningRate: 0.5, decay: 1 })), [
      [0.5, -1],
      [0.375, -0.75],
      [0.3125, -0.625],
    ]);
  });
  await t.step("SGD, lr 0.5, momentum 0.9 (the book's)", () => {
    // For w0 = 1: v1 = −0.5, w1 = 0.5; v2 = 0.9·(−0.5) − 0.5·0.5 = −0.7, w2 = −0.2;
    // v3 = 0.9·(−0.7) − 0.5·(−0.2) = −0.53, w3 = −0.73. Everything is linear in w0.
    assertPath(descend(new SGD({ learningRate: 0.5, momentum: 0.9 })), [
      [0.5, -1],
      [-0.2, 0.4],
      [-0.73, 1.46],
    ]);
  });
  await t.step("SGD, lr 0.5, Nesterov momentum 0.9", () => {
    // For w0 = 1: v1 = −0.5, w1 = 1 + 0.9·(−0.5) − 0.5 = 0.05;
    // v2 = −0.45 − 0.025 = −0.475, w2 = 0.05 − 0.4275 − 0.025 = −0.4025;
    // v3 = −0.4275 + 0.20125 = −0.22625, w3 = −0.4025 − 0.203625 + 0.20125 = −0.404875.
    assertPath(descend(new SGD({ learningRate: 0.5, momentum: 0.9, nesterov: true })), [
      [0.05, -0.1],
      [-0.4025, 0.805],
      [-0.404875, 0.80975],
    ]);
  });
  await t.step("AdaGrad, lr 0.5, ε 1e-7", () => {
    // w0 = 1: cache 1, w1 = 1 − 0.5/(1 + 1e-7); w0 = −2: cache 4, w1 = −2 + 1/(2 + 1e-7).
    assertPath(descend(new AdaGrad({ learningRate: 0.5 })), [
      [0.500000049999995, -1.5000000249999988],
      [0.27639325436147395, -1.2000000337999985],
      [0.15639877949544879, -0.98363450391195074],
    ]);
  });
  await t.step("RMSprop, lr 0.1, ρ 0.9, ε 1e-7", () => {
    // w0 = 1: cache 0.1, w1 = 1 − 0.1/(√0.1 + 1e-7) ≈ 1 − √0.1.
    assertPath(descend(new RMSprop({ learningRate: 0.1, rho: 0.9 })), [
      [0.68377233398313044, -1.6837722839831542],
      [0.49887073910050962, -1.4738753861771501],
      [0.36918069587998523, -1.3087179537841599],
    ]);
  });
  await t.step("Adam, lr 0.1, β 0.9/0.999, ε 1e-7", () => {
    // Step 1: m̂ = g and v̂ = g², so w1 = w0 − 0.1·g/(|g| + 1e-7).
    assertPath(descend(new Adam({ learningRate: 0.1 })), [
      [0.900000009999999, -1.9000000049999998],
      [0.80041224808214999, -1.8001664957181424],
      [0.70158630255533534, -1.7006234065937894],
    ]);
  });
  await t.step("Adam, lr 0.1, the book's decay 0.5", () => {
    assertPath(descend(new Adam({ learningRate: 0.1, decay: 0.5 })), [
      [0.900000009999999, -1.9000000049999998],
      [0.83360816872143299, -1.8334443321454282],
      [0.78406342976117538, -1.7836270422359402],
    ]);
  });
  await t.step("AdamW, lr 0.1, weight decay 0.1", () => {
    // Step 1: w·(1 − 0.01), then Adam's −0.1·g/(|g| + 1e-7) with g the old w.
    assertPath(descend(new AdamW({ learningRate: 0.1, weightDecay: 0.1 })), [
      [0.890000009999999, -1.8800000049999998],
      [0.78157187527197045, -1.761408960161005],
      [0.67510125107355538, -1.6443686980275621],
    ]);
  });
});

Deno.test("the book's decay is InverseTimeDecay, bit for bit, and schedules drive every optimizer", () => {
  const decayed = descend(new Adam({ learningRate: 0.05, decay: 5e-7 }), 50);
  const scheduled = descend(
    new Adam({ learningRate: 0.05, schedule: new InverseTimeDecay({ decay: 5e-7 }) }),
    50,
  );
  assert.deepEqual(scheduled, decayed);
  // A step schedule that zeroes the rate after two updates freezes every optimizer there.
  const freeze = () => new StepDecay({ stepSize: 2, gamma: 0 });
  for (
    const optimizer of [
      new SGD({ schedule: freeze(), learningRate: 0.1 }),
      new SGD({ schedule: freeze(), learningRate: 0.1, momentum: 0.5 }),
      new AdaGrad({ schedule: freeze() }),
      new RMSprop({ schedule: freeze() }),
      new Adam({ schedule: freeze() }),
      new AdamW({ schedule: freeze() }),
    ]
  ) {
    const path = descend(optimizer, 4);
    assert.notDeepEqual(path[0], path[1], `${optimizer} moves while the factor is 1`);
    if (!(optimizer instanceof SGD && optimizer.momentum)) {
      assert.deepEqual(path[3], path[1], `${optimizer} stops when the factor is 0`);
    }
    assert.equal(optimizer.currentLearningRate, 0);
  }
});

const stateful: [string, () => Optimizer][] = [
  ["SGD", () => new SGD({ learningRate: 0.1, decay: 0.01 })],
  ["SGD with momentum", () => new SGD({ learningRate: 0.1, momentum: 0.9, nesterov: true })],
  ["AdaGrad", () => new AdaGrad({ learningRate: 0.3, decay: 0.1 })],
  ["RMSprop", () => new RMSprop({ learningRate: 0.01, rho: 0.95 })],
  ["Adam", () => new Adam({ learningRate: 0.01, decay: 0.1 })],
  ["AdamW", () => new AdamW({ learningRate: 0.01, weightDecay: 0.2, decay: 0.1 })],
];

Deno.test("getState / setState resume every optimizer exactly", async (t) => {
  for (const [name, make] of stateful) {
    await t.step(name, () => {
      const a = make();
      const pa = new Param("w", Tensor.from([1, -2, 0.5], f64));
      descend(a, 3, pa);
      const state = a.getState!([pa]);
      const pb = new Param("w", pa.value.clone());
      descend(a, 1, pa); // the saved state is a copy: further steps of a leave it alone
      const b = make();
      b.setState!([pb], state);
      // b, restored after 3 updates, continues exactly as an uninterrupted run of 5.
      const fresh = descend(make(), 5, new Param("w", Tensor.from([1, -2, 0.5], f64)));
      assert.deepEqual(descend(b, 2, pb), fresh.slice(3));
    });
  }
  await t.step("a slot of the wrong shape or a bad update count is rejected", () => {
    const adagrad = new AdaGrad();
    const p = new Param("w", Tensor.from([1, 2], f64));
    assert.throws(
      () =>
        adagrad.setState([p], {
          scalars: { iterations: 1 },
          slots: { cache: [Tensor.zeros([3])] },
        }),
      {
        name: "TypeError",
        message: 'AdaGrad.setState: slot "cache" of param 0 must have shape [2], got [3]',
      },
    );
    assert.throws(() => new AdamW().setState([p], { scalars: { iterations: -1 }, slots: {} }), {
      name: "TypeError",
      message: "AdamW.setState: scalars.iterations must be an integer ≥ 0, got -1",
    });
  });
});

Deno.test("config() rebuilds every optimizer through the registry, schedule included", () => {
  const optimizers: Optimizer[] = [
    ...stateful.map(([, make]) => make()),
    new RMSprop({ schedule: new StepDecay({ stepSize: 10, gamma: 0.5 }) }),
  ];
  for (const optimizer of optimizers) {
    const copy = createOptimizer(optimizer.kind, JSON.parse(JSON.stringify(optimizer.config())));
    assert.deepEqual(copy.config(), optimizer.config());
    assert.equal(copy.toString(), optimizer.toString());
    assert.deepEqual(descend(copy, 3), descend(optimizer, 3), `${optimizer}`);
  }
});

Deno.test("hyper-parameters out of range are rejected", () => {
  const cases: [() => unknown, string][] = [
    [
      () => new SGD({ momentum: 1.5 }),
      "new SGD: momentum must be a finite number in [0, 1], got 1.5",
    ],
    [() => new SGD({ nesterov: true }), "new SGD: nesterov needs momentum > 0, got momentum 0"],
    [
      () => new AdaGrad({ learningRate: -1 }),
      "new AdaGrad: learningRate must be a finite number ≥ 0, got -1",
    ],
    [() => new RMSprop({ rho: 2 }), "new RMSprop: rho must be a finite number in [0, 1], got 2"],
    [
      () => new AdamW({ weightDecay: NaN }),
      "new AdamW: weightDecay must be a finite number ≥ 0, got NaN",
    ],
    [() => new AdamW({ beta1: 2 }), "new AdamW: beta1 must be a finite number in [0, 1], got 2"],
    [() => new Adam({ decay: -1 }), "new Adam: decay must be a finite number ≥ 0, got -1"],
  ];
  for (const [make, message] of cases) assert.throws(make, { name: "RangeError", message });
  assert.throws(
    () => new Adam({ decay: 1e-3, schedule: new StepDecay({ stepSize: 5 }) }),
    {
      name: "RangeError",
      message:
        /new Adam: pass decay \(0\.001\) or schedule \(StepDecay\(stepSize=5, gamma=0\.1\)\), not both/,
    },
  );
});

// PyTorch's clip_grad_norm_ / clip_grad_value_ and optimizer steps after them, in float64
// (tests/fixtures/torch_losses.py).
interface ClipFixture {
  clipping: {
    grads: number[][];
    [name: string]: { grads: number[][]; norm: number | null } | number[][];
  };
  steps: Record<string, number[][]>;
}
const torch = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_losses.json", import.meta.url)),
) as ClipFixture;

// Three params holding the fixture's gradients (values 0).
function clipParams(): Param[] {
  return torch.clipping.grads.map((g, i) => {
    const grad = Tensor.from(g, f64);
    const param = new Param(`p${i}`, Tensor.zeros(grad.shape, f64));
    param.grad.data.set(grad.data);
    return param;
  });
}

function assertRelative(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const scale = Math.max(Math.abs(actual[i]), Math.abs(expected[i]), 1e-3);
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= 1e-9 * scale,
      `${what}[${i}]: got ${actual[i]}, PyTorch ${expected[i]}`,
    );
  }
}

Deno.test("gradient clipping equals torch.nn.utils.clip_grad_norm_ / clip_grad_value_", async (t) => {
  // An SGD step with learning rate 1 from 0 leaves −(clipped gradient) in every param.
  const cases: [string, SGDOptions][] = [
    ["norm1", { globalClipNorm: 1 }],
    ["norm100", { globalClipNorm: 100 }],
    ["value0.5", { clipValue: 0.5 }],
    ["value0.5norm1", { globalClipNorm: 1, clipValue: 0.5 }],
  ];
  for (const [name, options] of cases) {
    await t.step(`${name}: ${new SGD(options)}`, () => {
      const expected = torch.clipping[name] as { grads: number[][] };
      const params = clipParams();
      new SGD({ learningRate: 1, ...options }).step(params);
      params.forEach((param, i) => {
        const clipped = Tensor.from(expected.grads[i], f64).data;
        assertRelative(param.grad.data, clipped, `${name} grad ${i}`);
        assertRelative(param.value.data, clipped.map((g) => -g), `${name} value ${i}`);
      });
    });
  }
  await t.step(
    "the fixture clips: norm 1 shrinks, norm 100 leaves the gradients as they are",
    () => {
      const norm1 = torch.clipping.norm1 as { norm: number };
      assert.ok(norm1.norm > 10);
      const params = clipParams();
      new SGD({ globalClipNorm: 100 }).step(params);
      params.forEach((p, i) =>
        assert.deepEqual(p.grad.data, Tensor.from(torch.clipping.grads[i], f64).data)
      );
    },
  );
  await t.step("values are clipped before the norm (the other order gives another result)", () => {
    const valueFirst = (torch.clipping["value0.5norm1"] as { grads: number[][] }).grads;
    const normOnly = (torch.clipping.norm1 as { grads: number[][] }).grads;
    assert.notDeepEqual(valueFirst, normOnly);
  });
});

Deno.test("every optimizer with clipping steps as PyTorch's does after clipping", async (t) => {
  // Minimizes 5·‖w‖² (gradient 10·w) from w = [1, −2, 0.5, 3], three steps.
  const cases: [string, () => Optimizer][] = [
    ["sgdMomentumNorm1", () => new SGD({ learningRate: 0.1, momentum: 0.9, globalClipNorm: 1 })],
    ["adamNorm0.5", () => new Adam({ learningRate: 0.1, globalClipNorm: 0.5 })],
    ["adamwValue2", () => new AdamW({ learningRate: 0.1, weightDecay: 0.1, clipValue: 2 })],
    [
      "rmspropValue1Norm1",
      () => new RMSprop({ learningRate: 0.01, rho: 0.9, globalClipNorm: 1, clipValue: 1 }),
    ],
    ["adagradNorm2", () => new AdaGrad({ learningRate: 0.5, globalClipNorm: 2 })],
  ];
  for (const [name, make] of cases) {
    await t.step(`${name}: ${make()}`, () => {
      const optimizer = make();
      const w = new Param("w", Tensor.from([1, -2, 0.5, 3], f64));
      torch.steps[name].forEach((expected, step) => {
        for (let i = 0; i < 4; i++) w.grad.data[i] = 10 * w.value.data[i];
        optimizer.step([w]);
        assertRelative(w.value.data, expected, `${name} step ${step}`);
      });
    });
  }
});

Deno.test("clipping options: checked, saved, restored, shown; a non-finite norm stops the step", async (t) => {
  const makers: [string, (options: SGDOptions) => Optimizer][] = [
    ["SGD", (o) => new SGD(o)],
    ["AdaGrad", (o) => new AdaGrad(o)],
    ["RMSprop", (o) => new RMSprop(o)],
    ["Adam", (o) => new Adam(o)],
    ["AdamW", (o) => new AdamW(o)],
  ];
  for (const [kind, make] of makers) {
    await t.step(`${kind}: bad bounds are rejected`, () => {
      for (
        const [name, value] of [["globalClipNorm", 0], ["clipValue", -1], [
          "clipValue",
          Infinity,
        ]] as const
      ) {
        assert.throws(() => make({ [name]: value }), {
          name: "RangeError",
          message: `new ${kind}: ${name} must be a positive finite number, got ${value}`,
        });
      }
    });
    await t.step(`${kind}: config, registry and toString`, () => {
      const optimizer = make({ globalClipNorm: 1, clipValue: 0.25 });
      assert.match(optimizer.toString(), /, globalClipNorm=1, clipValue=0\.25\)$/);
      const config = JSON.parse(JSON.stringify(optimizer.config()));
      assert.equal(config.globalClipNorm, 1);
      assert.equal(config.clipValue, 0.25);
      const copy = createOptimizer(kind, config);
      assert.equal(copy.toString(), optimizer.toString());
      assert.deepEqual(copy.config(), optimizer.config());
      assert.ok(!("globalClipNorm" in make({}).config()), "no key when not clipping");
      assert.ok(!make({}).toString().includes("clip"));
    });
    await t.step(`${kind}: NaN or infinite gradients throw, leaving the params untouched`, () => {
      const optimizer = make({ globalClipNorm: 1, learningRate: 0.1 });
      for (const bad of [NaN, Infinity]) {
        const a = new Param("a", Tensor.from([1, 2], f64));
        const b = new Param("b", Tensor.from([3], f64));
        a.grad.data.set([0.5, bad]);
        b.grad.data[0] = 1;
        assert.throws(() => optimizer.step([a, b]), {
          name: "RangeError",
          message: new RegExp(
            `^${kind}\\.step: the global gradient norm is ${bad}, so globalClipNorm cannot rescale it; ` +
              "the step was not taken",
          ),
        });
        assert.deepEqual(Array.from(a.value.data), [1, 2]);
        assert.deepEqual(Array.from(b.value.data), [3]);
      }
    });
  }
  await t.step("the norm is global: over every param of one step together", () => {
    // Norms 3 and 4 apart, 5 together: clipped to 1, both shrink by 1 / (5 + 1e-6).
    const a = new Param("a", Tensor.zeros([1], f64));
    const b = new Param("b", Tensor.zeros([1], f64));
    a.grad.data[0] = 3;
    b.grad.data[0] = 4;
    new SGD({ learningRate: 1, globalClipNorm: 1 }).step([a, b]);
    assertCloseTo(a.value, [-3 / (5 + 1e-6)], 1e-15);
    assertCloseTo(b.value, [-4 / (5 + 1e-6)], 1e-15);
  });
  await t.step("saved with a model and loaded back, schedule with warmup included", () => {
    const model = new Sequential([new Dense(2, 2, { seed: 1 })]);
    const optimizer = new AdamW({
      learningRate: 3e-4,
      globalClipNorm: 1,
      clipValue: 5,
      schedule: new CosineDecay({ steps: 100, warmupSteps: 10, minFactor: 0.1 }),
    });
    const loaded = modelFromBytes(model.toBytes({ optimizer })).optimizer!;
    assert.equal(
      loaded.toString(),
      "AdamW(learningRate=0.0003, weightDecay=0.01, schedule=CosineDecay(steps=100, " +
        "minFactor=0.1, warmupSteps=10), globalClipNorm=1, clipValue=5)",
    );
    assert.deepEqual(loaded.config(), optimizer.config());
  });
});
