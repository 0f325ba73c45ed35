import assert from "node:assert/strict";
import {
  Adam,
  Dense,
  EarlyStopping,
  LearningRateScheduler,
  NonFiniteLossError,
  ReLU,
  Sequential,
  SGD,
  SoftmaxCrossEntropy,
  spiralData,
  Tensor,
} from "../mod.ts";
import { PoisonThree, Recorder, ScriptedOptimizer, SquaredError } from "./_fit_helpers.ts";

const loss = new SoftmaxCrossEntropy();

Deno.test("EarlyStopping", async (t) => {
  // One weight w, one sample x = 1, y = 1: after epoch e the optimizer has set w = script[e],
  // so the validation loss is (script[e] − 1)²: 0.25, 0.01, 0 (best), 0.09, 0.36, 1, 2.25.
  const script = [0.5, 0.9, 1.0, 1.3, 1.6, 2.0, 2.5];
  const run = (options: ConstructorParameters<typeof EarlyStopping>[0]) => {
    const model = new Sequential([new Dense(1, 1, { weights: [[0]], dtype: "float64" })]);
    const stopper = new EarlyStopping(options);
    const data = { x: [[1]], y: Tensor.from([[1]], { dtype: "float64" }) };
    const history = model.fit(data.x, data.y, {
      loss: new SquaredError(),
      optimizer: new ScriptedOptimizer(script),
      epochs: script.length,
      validationData: data,
      callbacks: [stopper],
    });
    return { weight: model.params()[0].value.data[0], stopper, history };
  };

  await t.step("stops after `patience` epochs without improvement", () => {
    const { stopper, history, weight } = run({ patience: 2 });
    assert.equal(stopper.bestEpoch, 2);
    assert.equal(stopper.best, 0);
    assert.equal(stopper.stoppedEpoch, 4);
    assert.deepEqual(history.epochs, [0, 1, 2, 3, 4]);
    assert.equal(weight, 1.6, "the last weights are kept without restoreBestWeights");
  });

  await t.step("restoreBestWeights puts back the best epoch's weights", () => {
    const { weight, stopper } = run({ patience: 2, restoreBestWeights: true });
    assert.equal(stopper.stoppedEpoch, 4);
    assert.equal(weight, 1.0);
  });

  await t.step("patience 0 stops at the first epoch without improvement", () => {
    assert.equal(run({}).stopper.stoppedEpoch, 3);
  });

  await t.step("minDelta: smaller improvements do not count", () => {
    // 0.01 → 0 improves by only 0.01 < 0.05.
    const { stopper } = run({ patience: 1, minDelta: 0.05 });
    assert.equal(stopper.bestEpoch, 1);
    assert.equal(stopper.stoppedEpoch, 2);
  });

  await t.step("runs to the end while the figure improves", () => {
    const { stopper, history } = run({ monitor: "loss", mode: "max", patience: 10 });
    assert.equal(stopper.stoppedEpoch, undefined);
    assert.equal(history.epochs.length, script.length);
  });

  await t.step("a monitor that is not logged is a clear error", () => {
    const model = new Sequential([new Dense(2, 3, { seed: 1 })]);
    assert.throws(
      () =>
        model.fit([[0, 0]], [1], {
          loss,
          optimizer: new SGD(),
          epochs: 2,
          callbacks: [new EarlyStopping()],
        }),
      /EarlyStopping: monitor "valLoss" is not among the epoch logs \(loss, regularizationLoss, accuracy\); pass validationData or validationSplit/,
    );
  });

  await t.step("mode auto maximizes accuracies; bad options are named", () => {
    assert.equal(new EarlyStopping({ monitor: "valAccuracy" }).mode, "max");
    assert.equal(new EarlyStopping().mode, "min");
    assert.throws(() => new EarlyStopping({ patience: -1 }), /patience must be an integer ≥ 0/);
    assert.throws(() => new EarlyStopping({ mode: "up" as "max" }), /mode must be "min", "max"/);
  });

  await t.step("on a real run, the restored model scores the best validation loss", () => {
    const train = spiralData(20, 3);
    const validation = spiralData(20, 3, { seed: 3 });
    const model = new Sequential([
      new Dense(2, 64, { seed: 1 }),
      new ReLU(),
      new Dense(64, 3, { seed: 2 }),
    ]);
    const stopper = new EarlyStopping({ patience: 20, restoreBestWeights: true });
    const history = model.fit(train.x, train.y, {
      loss,
      optimizer: new Adam({ learningRate: 0.05 }),
      epochs: 2000,
      validationData: validation,
      callbacks: [stopper],
    });
    const last = history.epochs.at(-1)!;
    assert.ok(stopper.stoppedEpoch === last && last < 1999, `stopped at ${stopper.stoppedEpoch}`);
    const best = stopper.bestEpoch!;
    assert.equal(last - best, 20);
    assert.equal(Math.min(...history.valLoss), history.valLoss[best]);
    assert.ok(history.valLoss[best] < history.valLoss[last]);
    const restored = model.evaluate(validation.x, validation.y, { loss });
    assert.equal(restored.loss, history.valLoss[best]);
  });
});

Deno.test("TerminateOnNaN", async (t) => {
  // Row 3 turns NaN: with batches of 2 in order, batch 1 of epoch 0 gets a NaN loss.
  const x = [[0, 0], [1, 1], [2, 2], [3, 0], [4, 4], [5, 5]];
  const y = [0, 1, 2, 0, 1, 2];
  const model = () => new Sequential([new PoisonThree(), new Dense(2, 3, { seed: 1 })]);
  const options = { loss, optimizer: new SGD(), epochs: 3, batchSize: 2, shuffle: false };

  await t.step("a NaN loss stops fit with an error naming epoch, batch and value", () => {
    assert.throws(() => model().fit(x, y, options), (error: unknown) => {
      assert.ok(error instanceof NonFiniteLossError);
      assert.match(
        error.message,
        /^TerminateOnNaN: the loss became NaN at epoch 0, batch 1; training stopped/,
      );
      assert.equal(error.epoch, 0);
      assert.equal(error.batch, 1);
      assert.ok(Number.isNaN(error.value));
      return true;
    });
  });

  await t.step("an infinite loss, later in training, too", () => {
    class Exploding extends SoftmaxCrossEntropy {
      calls = 0;
      override forward(outputs: Tensor, targets: number[]): number {
        const value = super.forward(outputs, targets);
        return this.calls++ === 4 ? Infinity : value;
      }
    }
    const clean = [[0, 0], [1, 1], [2, 2], [4, 4]];
    assert.throws(
      () => model().fit(clean, [0, 1, 2, 0], { ...options, loss: new Exploding() }),
      (error: unknown) => {
        assert.ok(error instanceof NonFiniteLossError);
        assert.match(error.message, /the loss became Infinity at epoch 2, batch 0/);
        assert.deepEqual(error.history.epochs, [0, 1]);
        return true;
      },
    );
  });

  await t.step("an infinite regularization loss is named as such", () => {
    class Penalized extends Recorder {
      regularizationLoss(): number {
        return Infinity;
      }
    }
    const net = new Sequential([new Penalized(), new Dense(2, 3, { seed: 1 })]);
    assert.throws(
      () => net.fit([[0, 0]], [1], { loss, optimizer: new SGD(), epochs: 1 }),
      /the regularization loss became Infinity at epoch 0, batch 0/,
    );
  });

  await t.step("terminateOnNaN: false lets the NaN through", () => {
    const history = model().fit(x, y, { ...options, terminateOnNaN: false });
    assert.ok(Number.isNaN(history.loss[0]));
    assert.equal(history.loss.length, 3);
  });
});

Deno.test("LearningRateScheduler", async (t) => {
  const data = { x: [[0, 1], [1, 0]], y: [0, 1] };
  const fit = (optimizer: object, schedule: (epoch: number, lr: number) => number) => {
    const rates: number[] = [];
    new Sequential([new Dense(2, 2, { seed: 1 })]).fit(data.x, data.y, {
      loss,
      optimizer: optimizer as SGD,
      epochs: 4,
      callbacks: [
        new LearningRateScheduler(schedule),
        { onEpochBegin: () => rates.push((optimizer as SGD).learningRate) },
      ],
    });
    return rates;
  };

  await t.step("sets the optimizer's rate before every epoch", () => {
    assert.deepEqual(fit(new SGD({ learningRate: 1 }), (e, lr) => e === 0 ? lr : lr / 2), [
      1,
      0.5,
      0.25,
      0.125,
    ]);
    const adam = new Adam({ learningRate: 0.01, decay: 0.5 });
    assert.deepEqual(fit(adam, (e) => 0.1 * (e + 1)), [0.1, 0.2, 0.30000000000000004, 0.4]);
    // Adam's own decay still applies on top: 4 steps done.
    assert.ok(Math.abs(adam.currentLearningRate - 0.4 / 3) < 1e-15);
  });

  await t.step("an optimizer without a writable learningRate is a clear error", () => {
    const base = { kind: "X", step() {}, config: () => ({}), toString: () => "X()" };
    for (
      const optimizer of [
        base,
        Object.freeze({ ...base, learningRate: 1 }),
        Object.defineProperty({ ...base }, "learningRate", { get: () => 1 }),
      ]
    ) {
      assert.throws(
        () => fit(optimizer, (_e, lr) => lr),
        /LearningRateScheduler: optimizer X\(\) has no writable numeric learningRate field to set/,
      );
    }
  });

  await t.step("a bad scheduled value is named", () => {
    assert.throws(
      () => fit(new SGD(), (e) => e === 2 ? NaN : 1),
      /LearningRateScheduler: schedule returned NaN for epoch 2; expected a finite number ≥ 0/,
    );
    assert.throws(() => new LearningRateScheduler(0.1 as never), TypeError);
  });
});
