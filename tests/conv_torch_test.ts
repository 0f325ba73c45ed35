// Conv2D equals PyTorch's nn.Conv2d in float64, forward and backward, with each algorithm
// (fixtures from tests/fixtures/torch_conv.py).
import assert from "node:assert/strict";
import { Conv2D, type ConvAlgorithm, Tensor, withBackend } from "../mod.ts";

interface Case {
  name: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  padding: number;
  dilation: number;
  weight: number[];
  bias: number[];
  inputs: number[];
  outputs: number[];
  projection: number[];
  dinputs: number[];
  dweight: number[];
  dbias: number[];
}

const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_conv.json", import.meta.url)),
) as { cases: Case[] };

// Nested lists → a float64 tensor of their shape.
function tensorOf(nested: unknown): Tensor {
  return Tensor.from(nested as number[], { dtype: "float64" });
}

function assertRelative(actual: ArrayLike<number>, expected: Tensor, what: string): void {
  let scale = 0, error = 0;
  for (let i = 0; i < expected.size; i++) {
    scale = Math.max(scale, Math.abs(expected.data[i]));
    error = Math.max(error, Math.abs(actual[i] - expected.data[i]));
  }
  assert.ok(error <= 1e-9 * scale, `${what}: relative error ${error / scale}`);
}

Deno.test("Conv2D equals PyTorch's Conv2d in float64 with each algorithm and backend", async (t) => {
  for (const c of fixture.cases) {
    const winograd = c.kernel === 3 && c.stride === 1 && c.dilation === 1;
    const algorithms: ConvAlgorithm[] = winograd ? ["im2col", "winograd"] : ["im2col"];
    for (const backend of ["wasm", "js"]) {
      for (const algorithm of algorithms) {
        await t.step(`${c.name}, ${algorithm}, ${backend}`, () => {
          withBackend(backend, () => {
            const conv = new Conv2D(c.inChannels, c.outChannels, c.kernel, {
              stride: c.stride,
              padding: c.padding,
              dilation: c.dilation,
              weights: c.weight,
              biases: c.bias,
              dtype: "float64",
              algorithm,
            });
            const outputs = conv.forward(tensorOf(c.inputs), { training: true });
            assertRelative(outputs.data, tensorOf(c.outputs), "outputs");
            const dinputs = conv.backward(tensorOf(c.projection));
            assertRelative(dinputs.data, tensorOf(c.dinputs), "dinputs");
            assertRelative(conv.weights.grad.data, tensorOf(c.dweight), "dweights");
            assertRelative(conv.biases!.grad.data, tensorOf(c.dbias), "dbiases");
          });
        });
      }
    }
  }
});
