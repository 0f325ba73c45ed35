// Training end to end: the book's spiral setup learns, in float32 and float64.
import assert from "node:assert/strict";
import { Adam, type DType, SoftmaxCrossEntropy } from "../mod.ts";
import { bookSpiral } from "./_book_spiral.ts";

function trainBookSpiral(dtype: DType, epochs: number) {
  const { x, y, model } = bookSpiral(dtype);
  return model.fit(x, y, {
    loss: new SoftmaxCrossEntropy(),
    optimizer: new Adam({ learningRate: 0.05, decay: 5e-7 }),
    epochs,
  });
}

Deno.test("the book's spiral model passes 0.90 training accuracy in 2,000 epochs", async (t) => {
  for (const dtype of ["float32", "float64"] as const) {
    await t.step(dtype, () => {
      const history = trainBookSpiral(dtype, 2000);
      // Epoch 0 starts at chance: ln 3 loss, about a third right.
      assert.ok(Math.abs(history.loss[0] - Math.log(3)) < 1e-3, `loss0 ${history.loss[0]}`);
      assert.ok(history.accuracy.at(-1)! >= 0.9, `accuracy ${history.accuracy.at(-1)}`);
      assert.ok(history.loss.at(-1)! < 0.25, `loss ${history.loss.at(-1)}`);
    });
  }
});
