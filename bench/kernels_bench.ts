// GFLOP/s of the three products per backend: `deno bench bench/kernels_bench.ts`.
// Each group is one product at one shape with the slowest backend as its baseline (naive
// where it finishes in reasonable time); GFLOP/s = the group's GFLOP / time per iteration,
// or run `deno run bench/gflops.ts` for the table. Add --allow-ffi to include blas.

import { blasBackend } from "../blas.ts";
import { wasmSupport } from "../mod.ts";
import { wasmBackend } from "../plugin.ts";
import { backendsFor, operands, SHAPES } from "./_shapes.ts";

const blas = blasBackend();
for (const [label, kind, m, k, n] of SHAPES) {
  const [a, b, c] = operands(kind, m, k, n);
  const group = `${kind} ${label} (${(2 * m * k * n / 1e9).toFixed(4)} GFLOP)`;
  const backends = backendsFor(m * k * n, blas ? [blas] : []);
  for (const backend of backends) {
    Deno.bench({
      name: `${backend.name}${backend === wasmBackend ? ` (${wasmSupport()})` : ""} ${group}`,
      group,
      baseline: backend === backends[0],
      n: m * k * n > 1e8 ? 3 : undefined,
      warmup: m * k * n > 1e8 ? 1 : undefined,
      fn() {
        backend[kind](a, b, c, m, k, n);
      },
    });
  }
}
