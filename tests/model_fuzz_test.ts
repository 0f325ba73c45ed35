// Mutated model files (every layer kind, nested models, an optimizer's state) must load as
// valid models or fail with typed errors, within a memory ceiling. The 100,000-case run is
// tools/fuzz_models.ts; its figures are in docs/saving.md.
import assert from "node:assert/strict";
import { layerKinds } from "../mod.ts";
import { everyKind, fuzzModels } from "../tools/fuzz_models.ts";

const CASES = 10_000;

Deno.test("the fuzz seeds hold every built-in layer kind", () => {
  const kinds = new Set<string>();
  const visit = (layers: { kind: string; layers?: unknown }[]) => {
    for (const layer of layers) {
      kinds.add(layer.kind);
      if (Array.isArray(layer.layers)) visit(layer.layers);
    }
  };
  const model = everyKind();
  kinds.add(model.kind);
  visit(model.layers);
  assert.deepEqual([...kinds].sort(), layerKinds());
});

Deno.test(`modelFromBytes survives ${CASES} mutated models with typed errors`, () => {
  const start = performance.now();
  const before = Deno.memoryUsage().rss;
  const report = fuzzModels(CASES, 2024, before + 512e6);
  const seconds = (performance.now() - start) / 1000;
  assert.ok(seconds < 20, `${seconds.toFixed(1)} s, over the 20 s budget`);
  // The mutations must reach the checks behind the parse, not just break the bytes.
  for (const outcome of ["valid", "model_too_large", "non_finite", "tensor_shape", "TypeError"]) {
    assert.ok(
      (report.outcomes.get(outcome) ?? 0) > 0,
      `no case ended in ${outcome}: ${JSON.stringify([...report.outcomes])}`,
    );
  }
});
