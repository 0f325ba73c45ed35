// Bad input to the convolutional layers: each error names the layer, the argument, what was
// expected and what came.
import assert from "node:assert/strict";
import { BatchNorm, Conv2D, Tensor } from "../mod.ts";

Deno.test("Conv2D.forward refuses a 2-D tensor, naming the 4-D shape it needs", () => {
  assert.throws(() => new Conv2D(1, 8, 3).forward(Tensor.zeros([8, 784])), {
    name: "TypeError",
    message:
      'Conv2D.forward: inputs must be 4-D [batch, channels, height, width], got shape [8, 784] (images as rows? reshape them, e.g. x.reshape([samples, 1, 28, 28]), or read them with idxDataset(..., { layout: "nchw" }))',
  });
});

Deno.test("Conv2D.forward refuses inputs with another channel count", () => {
  assert.throws(() => new Conv2D(1, 8, 3).forward(Tensor.zeros([2, 3, 28, 28])), {
    name: "TypeError",
    message: "Conv2D.forward: inputs have 3 channels, expected 1 (inputs shape [2, 3, 28, 28])",
  });
});

Deno.test("Conv2D.forward refuses a kernel larger than the padded input", () => {
  assert.throws(() => new Conv2D(1, 2, 5, { padding: 1 }).forward(Tensor.zeros([1, 1, 2, 4])), {
    name: "TypeError",
    message:
      "Conv2D.forward: the kernel 5×5 is larger than the padded input 4×6; expected inputs of at least 3×3 (height×width), got shape [1, 1, 2, 4]",
  });
  assert.throws(() => new Conv2D(1, 2, 3, { dilation: 3 }).forward(Tensor.zeros([1, 1, 6, 9])), {
    name: "TypeError",
    message:
      "Conv2D.forward: the kernel 3×3, dilated to 7×7, is larger than the padded input 6×9; expected inputs of at least 7×7 (height×width), got shape [1, 1, 6, 9]",
  });
});

Deno.test('new Conv2D refuses padding "same" with a stride other than 1', () => {
  assert.throws(() => new Conv2D(1, 2, 3, { padding: "same", stride: 2 }), {
    name: "RangeError",
    message:
      'new Conv2D: padding "same" needs stride 1 (as PyTorch), got stride [2, 2]; pad by a number instead',
  });
});

Deno.test("BatchNorm.forward refuses a feature count that differs from the layer's", () => {
  assert.throws(() => new BatchNorm(3).forward(Tensor.zeros([8, 4])), {
    name: "TypeError",
    message: "BatchNorm.forward: inputs have 4 features (axis 1), expected 3 (inputs shape [8, 4])",
  });
  assert.throws(() => new BatchNorm(16).forward(Tensor.zeros([2, 8, 5, 5])), {
    name: "TypeError",
    message:
      "BatchNorm.forward: inputs have 8 features (axis 1), expected 16 (inputs shape [2, 8, 5, 5])",
  });
});

Deno.test("BatchNorm.forward refuses a training batch of one sample, as PyTorch", () => {
  assert.throws(() => new BatchNorm(3).forward(Tensor.zeros([1, 3]), { training: true }), {
    name: "RangeError",
    message:
      "BatchNorm.forward: training needs more than 1 value per feature to compute a variance (as PyTorch), got inputs shape [1, 3]; train on batches of at least 2 samples, or run at inference (training false)",
  });
});

Deno.test("the other argument errors of the convolutional layers", async (t) => {
  await t.step("sizes that are not positive integers", () => {
    assert.throws(() => new Conv2D(0, 2, 3), {
      name: "RangeError",
      message: "new Conv2D: inChannels must be a positive integer, got 0",
    });
    assert.throws(() => new Conv2D(1, 2, [3, 0]), {
      name: "RangeError",
      message:
        "new Conv2D: kernelSize must be a positive integer or [height, width] of positive integers, got [3, 0]",
    });
    assert.throws(() => new Conv2D(1, 2, 3, { padding: -1 }), {
      name: "RangeError",
      message:
        'new Conv2D: padding must be "same", "valid", a non-negative integer or [height, width] of non-negative integers, got -1',
    });
  });
  await t.step("inputs of the wrong dtype, an empty batch, backward before forward", () => {
    assert.throws(
      () => new Conv2D(1, 2, 3).forward(Tensor.zeros([1, 1, 5, 5], { dtype: "float64" })),
      {
        name: "TypeError",
        message: /Conv2D\.forward: inputs are float64, the layer is float32/,
      },
    );
    assert.throws(() => new Conv2D(1, 2, 3).forward(Tensor.zeros([0, 1, 5, 5])), {
      name: "RangeError",
      message: "Conv2D.forward: inputs is an empty batch (shape [0, 1, 5, 5])",
    });
    assert.throws(() => new Conv2D(1, 2, 3).backward(Tensor.zeros([1, 2, 3, 3])), {
      message: "Conv2D.backward: call forward first",
    });
  });
  await t.step("dvalues of another shape than the outputs", () => {
    const conv = new Conv2D(1, 2, 3);
    conv.forward(Tensor.zeros([1, 1, 5, 5]));
    assert.throws(() => conv.backward(Tensor.zeros([1, 2, 5, 5])), {
      name: "TypeError",
      message:
        "Conv2D.backward: dvalues is float32 [1, 2, 5, 5], expected float32 [1, 2, 3, 3] like the last forward's outputs",
    });
  });
});
