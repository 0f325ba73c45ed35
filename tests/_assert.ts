// Assertions shared by the catalogue's tests.
import assert from "node:assert/strict";
import type { Tensor } from "../mod.ts";
import { gradientCases } from "./_gradient_cases.ts";

/** Runs every gradient case of `plugin` and asserts max relative error ≤ 1e-6. */
export function assertGradientsOf(plugin: string): void {
  const cases = gradientCases.filter((c) => c.plugin === plugin);
  assert.ok(cases.length > 0, `no gradient case for ${plugin}`);
  for (const { what, run } of cases) {
    const report = run();
    assert.ok(report.maxRelativeError <= 1e-6, `${plugin}, ${what}\n${report}`);
  }
}

/** Asserts that `actual` holds `expected` (flat, row-major) to within `tolerance` each. */
export function assertCloseTo(
  actual: Tensor | ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance = 1e-12,
): void {
  const got = "data" in actual ? actual.data : actual;
  assert.equal(got.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(got[i] - expected[i]) <= tolerance,
      `element ${i}: got ${got[i]}, expected ${expected[i]} (±${tolerance})`,
    );
  }
}
