// How fast this CPU runs the wasm kernels right now: a 256×256×256 float32 product on one
// thread, repeated for about 150 ms, its median in GFLOP/s. bench:compare runs it pinned to
// each CPU before every round, because on a virtual machine whose CPUs run at different
// speeds (seen here: one 1.6× slower than the other, and which one changed within minutes)
// a one-thread figure says as much about where it ran as about the code.
//
//   taskset -c 0 deno run bench/cpu_probe.ts

import { setThreads } from "../mod.ts";
import { wasmBackend } from "../plugin.ts";

setThreads(1);
const n = 256;
const a = new Float32Array(n * n).fill(0.5), b = new Float32Array(n * n).fill(0.25);
const c = new Float32Array(n * n);
for (let i = 0; i < 5; i++) wasmBackend.matmul(a, b, c, n, n, n); // warm: optimized code
const times: number[] = [];
const end = performance.now() + 150;
while (performance.now() < end || times.length < 5) {
  const t0 = performance.now();
  wasmBackend.matmul(a, b, c, n, n, n);
  times.push(performance.now() - t0);
}
times.sort((x, y) => x - y);
const ms = times[times.length >> 1];
console.log(`PROBE gflops=${(2 * n * n * n / ms / 1e6).toFixed(1)}`);
