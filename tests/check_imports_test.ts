import assert from "node:assert/strict";
import { findCycles, type ImportGraph, layerOf, upwardImports } from "../tools/check_imports.ts";

function graph(edges: Record<string, string[]>): ImportGraph {
  return new Map(Object.entries(edges).map(([from, to]) => [from, new Set(to)]));
}

Deno.test("check_imports", async (t) => {
  await t.step("finds each cycle and names its files in order", () => {
    const cycles = findCycles(graph({
      "core/backend.ts": ["backends/js.ts"],
      "backends/js.ts": ["core/backend.ts", "core/tensor.ts"],
      "core/tensor.ts": [],
      "training/fit.ts": ["training/callback.ts"],
      "training/callback.ts": ["models/sequential.ts"],
      "models/sequential.ts": ["training/fit.ts"],
      "layers/self.ts": ["layers/self.ts"],
    }));
    assert.deepEqual(cycles, [
      ["backends/js.ts", "core/backend.ts", "backends/js.ts"],
      ["layers/self.ts", "layers/self.ts"],
      ["models/sequential.ts", "training/fit.ts", "training/callback.ts", "models/sequential.ts"],
    ]);
  });

  await t.step("a graph that only points down has no cycles", () => {
    assert.deepEqual(
      findCycles(
        graph({
          "mod.ts": ["core/tensor.ts", "layers/dense.ts"],
          "layers/dense.ts": ["core/tensor.ts"],
        }),
      ),
      [],
    );
  });

  await t.step("names imports that point up the layers", () => {
    assert.deepEqual(
      upwardImports(graph({
        "core/backend.ts": ["backends/js.ts"],
        "layers/dense.ts": ["core/tensor.ts", "activations/relu.ts"],
        "weird/x.ts": [],
        "io/model_io.ts": ["weird/x.ts"],
      })),
      [
        "core/backend.ts (core) → backends/js.ts (backends)",
        "io/model_io.ts → weird/x.ts: outside the layers (add its folder to LAYERS)",
      ],
    );
    assert.equal(layerOf("mod.ts"), layerOf("plugin.ts"));
    assert.ok(layerOf("core/chain.ts")! < layerOf("training/fit.ts")!);
  });
});
