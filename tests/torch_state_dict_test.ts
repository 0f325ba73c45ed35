import assert from "node:assert/strict";
import {
  decodeSafetensors,
  Dense,
  encodeSafetensors,
  loadTorchStateDict,
  Param,
  ReLU,
  SafetensorsError,
  Sequential,
  Tensor,
  toTorchStateDict,
} from "../mod.ts";

function model(seed = 1): Sequential {
  return new Sequential([
    new Dense(2, 5, { seed }),
    new ReLU(),
    new Dense(5, 3, { seed: seed + 1, dtype: "float32" }),
  ]);
}

// What torch.nn.Linear computes: inputs·weightᵀ + bias, with weight [out, in].
function linear(inputs: number[][], weight: Tensor, bias: Tensor): number[][] {
  const [out, features] = weight.shape;
  return inputs.map((row) =>
    Array.from({ length: out }, (_, j) => {
      let sum = bias.data[j];
      for (let i = 0; i < features; i++) sum += row[i] * weight.get(j, i);
      return sum;
    })
  );
}

Deno.test("toTorchStateDict gives nn.Sequential's names, shapes and transposed weights", () => {
  const net = model();
  const state = toTorchStateDict(net);
  assert.deepEqual([...state.keys()], ["0.weight", "0.bias", "2.weight", "2.bias"]);
  assert.deepEqual(state.get("0.weight")!.shape, [5, 2]);
  assert.deepEqual(state.get("0.bias")!.shape, [5]);
  assert.deepEqual(state.get("2.weight")!.shape, [3, 5]);
  assert.deepEqual(state.get("2.bias")!.shape, [3]);
  const dense = net.layers[0] as Dense;
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 5; j++) {
      assert.equal(state.get("0.weight")!.get(j, i), dense.weights.value.get(i, j));
    }
  }
  // A copy: changing the state dict leaves the model alone.
  state.get("0.bias")!.data[0] = 99;
  assert.equal(dense.biases.value.data[0], 0);
});

Deno.test("PyTorch's forward on the mapped weights gives the model's outputs", () => {
  const net = model(3);
  const state = toTorchStateDict(net);
  const x = [[0.5, -1], [2, 3], [-0.25, 0.75]];
  const hidden = linear(x, state.get("0.weight")!, state.get("0.bias")!).map((row) =>
    row.map((v) => Math.max(0, Math.fround(v)))
  );
  const torchOut = linear(hidden, state.get("2.weight")!, state.get("2.bias")!);
  const ours = net.predict(x).toArray<number[][]>();
  for (let r = 0; r < x.length; r++) {
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(torchOut[r][c] - ours[r][c]) < 1e-5);
  }
});

Deno.test("a state dict goes through safetensors bytes and back bit for bit", () => {
  const net = model(5);
  const bytes = encodeSafetensors(toTorchStateDict(net));
  const fresh = model(50);
  loadTorchStateDict(fresh, decodeSafetensors(bytes).tensors);
  assert.deepEqual(
    fresh.params().map((p) => [...p.value.data]),
    net.params().map((p) => [...p.value.data]),
  );
});

Deno.test("nested Sequential layers get PyTorch's dotted paths", () => {
  const net = new Sequential([
    new Dense(2, 4, { seed: 1 }),
    new Sequential([new ReLU(), new Dense(4, 4, { seed: 2 })]),
  ]);
  assert.deepEqual([...toTorchStateDict(net).keys()], [
    "0.weight",
    "0.bias",
    "1.1.weight",
    "1.1.bias",
  ]);
});

Deno.test("loadTorchStateDict converts F16 tensors and float64 inputs", () => {
  const net = new Sequential([new Dense(2, 1, { dtype: "float64" })]);
  const header = '{"0.weight":{"dtype":"F16","shape":[1,2],"data_offsets":[0,4]},' +
    '"0.bias":{"dtype":"F16","shape":[1],"data_offsets":[4,6]}}';
  const text = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + text.length + 6);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
  bytes.set(text, 8);
  bytes.set(new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3800]).buffer), 8 + text.length);
  loadTorchStateDict(net, decodeSafetensors(bytes).tensors);
  assert.deepEqual(net.predict([[3, 1]]).toArray(), [[3 - 2 + 0.5]]);
});

Deno.test("loadTorchStateDict is strict and changes nothing when it fails", async (t) => {
  const net = model(7);
  const before = net.params().map((p) => [...p.value.data]);
  const good = toTorchStateDict(model(8));
  const fails = (state: Map<string, Tensor>, code: string, fragment: string) => {
    assert.throws(() => loadTorchStateDict(net, state), (error: unknown) => {
      assert.ok(error instanceof SafetensorsError, String(error));
      assert.equal(error.code, code);
      assert.ok(error.message.startsWith("loadTorchStateDict: "), error.message);
      assert.ok(error.message.includes(fragment), error.message);
      return true;
    });
    assert.deepEqual(net.params().map((p) => [...p.value.data]), before);
  };
  await t.step("a missing name", () => {
    const state = new Map(good);
    state.delete("2.bias");
    fails(state, "missing_tensor", '"2.bias" (shape [3])');
  });
  await t.step("an extra name", () => {
    fails(
      new Map([...good, ["1.running_mean", Tensor.from([0])]]),
      "unexpected_tensor",
      "1.running_mean",
    );
  });
  await t.step("a weight left untransposed", () => {
    const state = new Map(good);
    state.set("2.weight", Tensor.zeros([5, 3]));
    fails(state, "tensor_shape", '"2.weight" has shape [5, 3], the model needs [3, 5]');
  });
  await t.step("not a Map", () => {
    assert.throws(() => loadTorchStateDict(net, {} as Map<string, Tensor>), {
      name: "TypeError",
      message: /loadTorchStateDict: stateDict must be a Map/,
    });
  });
});

Deno.test("a parameter PyTorch has no name for is a clear error", () => {
  const odd = {
    kind: "Odd",
    scale: new Param("scale", Tensor.from([1])),
    forward: (x: Tensor) => x,
    backward: (d: Tensor) => d,
    params(): Param[] {
      return [this.scale];
    },
    config: () => ({}),
    toString: () => "Odd()",
  };
  assert.throws(() => toTorchStateDict(new Sequential([new Dense(1, 1), odd])), {
    name: "TypeError",
    message:
      /toTorchStateDict: param "scale" \(shape \[1\]\) of layer 1 \(Odd\) has no PyTorch name/,
  });
});
