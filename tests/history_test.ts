import assert from "node:assert/strict";
import { History } from "../mod.ts";

Deno.test("History keeps series aligned with the epochs", () => {
  const history = new History();
  assert.deepEqual(history.loss, []);
  assert.deepEqual(history.accuracy, []);
  history.record(4, { loss: 2, regularizationLoss: 0.5 });
  history.record(5, { loss: 1, regularizationLoss: 0.25, accuracy: 0.5, valLoss: 1.5 });
  history.record(6, { loss: 0.5, regularizationLoss: 0.125, accuracy: 0.75 });
  assert.deepEqual(history.epochs, [4, 5, 6]);
  assert.deepEqual(history.loss, [2, 1, 0.5]);
  assert.deepEqual(history.regularizationLoss, [0.5, 0.25, 0.125]);
  // A figure missing from an epoch is NaN there, so index i is always epoch epochs[i].
  assert.deepEqual(history.accuracy, [NaN, 0.5, 0.75]);
  assert.deepEqual(history.valLoss, [NaN, 1.5, NaN]);
  assert.deepEqual(history.valAccuracy, []);
  assert.deepEqual(history.names(), ["loss", "regularizationLoss", "accuracy", "valLoss"]);
  assert.throws(
    () => history.get("f1"),
    /History\.get: no series "f1"; recorded: loss, regularizationLoss, accuracy, valLoss/,
  );
  assert.throws(() => history.get("constructor"), /no series "constructor"/);
  assert.deepEqual(JSON.parse(JSON.stringify(history)).epochs, [4, 5, 6]);
});
