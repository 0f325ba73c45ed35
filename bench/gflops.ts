// Prints GFLOP/s (median of several runs) of every product shape per backend, or of the
// shapes whose label contains FILTER (e.g. W1):
//   deno run [--allow-ffi] bench/gflops.ts [FILTER]
import { blasBackend } from "../blas.ts";
import { backendsFor, operands, SHAPES } from "./_shapes.ts";

const blas = blasBackend();
const names = ["naive", "js", "wasm", ...(blas ? ["blas"] : [])];
console.log(`| product | shape | ${names.join(" | ")} |`);
console.log(`| --- | --- | ${names.map(() => "---:").join(" | ")} |`);
for (const [label, kind, m, k, n] of SHAPES) {
  if (Deno.args[0] && !label.includes(Deno.args[0])) continue;
  const [a, b, c] = operands(kind, m, k, n);
  const flops = 2 * m * k * n;
  const cells = new Map<string, string>();
  for (const backend of backendsFor(m * k * n, blas ? [blas] : [])) {
    // Warm up for 50 ms (at least one call), so small shapes are timed in optimized code.
    const warm = performance.now();
    do backend[kind](a, b, c, m, k, n); while (performance.now() - warm < 50);
    const reps = Math.max(3, Math.min(2000, Math.round(2e8 / flops)));
    const times: number[] = [];
    for (let r = 0; r < Math.min(reps, 7); r++) {
      const inner = Math.max(1, Math.round(reps / 7));
      const t0 = performance.now();
      for (let i = 0; i < inner; i++) backend[kind](a, b, c, m, k, n);
      times.push((performance.now() - t0) / inner);
    }
    times.sort((x, y) => x - y);
    cells.set(backend.name, (flops / times[times.length >> 1] / 1e6).toFixed(2));
  }
  console.log(
    `| ${kind} | ${label} | ${names.map((name) => cells.get(name) ?? "–").join(" | ")} |`,
  );
}
