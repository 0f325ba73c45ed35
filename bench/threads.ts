// Where a second thread starts to pay: µs per product on 1 thread and on N threads with
// every product sent to the pool (the threshold set to 0, and no minimum task size),
// alternating, medians. The smallest size where N threads win is where PARALLEL_THRESHOLD
// (backends/wasm.ts) belongs.
//
//   deno run --allow-sys=loadavg bench/threads.ts [--threads 2] [--rounds 7] [--filter W2]

import { parseArgs } from "node:util";
import { parallelTuning } from "../backends/wasm.ts";
import { getThreads, setThreads } from "../mod.ts";
import { wasmBackend } from "../plugin.ts";
import { type Kind, operands } from "./_shapes.ts";

const USAGE = `µs per product on 1 thread and on N threads (every product sent to the pool).

Usage: deno run bench/threads.ts [--threads N] [--rounds R] [--filter TEXT]`;

const { values } = parseArgs({
  options: {
    help: { type: "boolean", default: false },
    threads: { type: "string", default: String(getThreads()) },
    rounds: { type: "string", default: "7" },
    filter: { type: "string", default: "" },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const threads = Number(values.threads);
const rounds = Number(values.rounds);

const SHAPES: [string, Kind, number, number, number][] = [
  ...[24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256].map((s): [
    string,
    Kind,
    number,
    number,
    number,
  ] => [`${s}³`, "matmul", s, s, s]),
  ["W2 fwd 128×128×10", "matmul", 128, 128, 10],
  ["W2 dW 128×128×10", "matmulTransA", 128, 128, 10],
  ["W2 dX 128×128×10", "matmulTransB", 128, 128, 10],
  ["W2 fwd 128×784×128", "matmul", 128, 784, 128],
  ["W2 dW 128×784×128", "matmulTransA", 128, 784, 128],
  ["W3 fwd 2048×1024×1024", "matmul", 2048, 1024, 1024],
  ["W3 dW 2048×1024×1024", "matmulTransA", 2048, 1024, 1024],
  ["W3 dX 2048×1024×1024", "matmulTransB", 2048, 1024, 1024],
  ["thin dW 2048×1024×3", "matmulTransA", 2048, 1024, 3],
  ["thin dW 2048×3×1024", "matmulTransA", 2048, 3, 1024],
];

// The load average where --allow-sys=loadavg is granted (no prompt otherwise).
function load(): string {
  try {
    return Deno.permissions.querySync({ name: "sys", kind: "loadavg" }).state === "granted"
      ? Deno.loadavg().map((x) => x.toFixed(2)).join(" ")
      : "(run with --allow-sys=loadavg)";
  } catch {
    return "(unknown)";
  }
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

// µs per call over enough calls to take ~20 ms.
function time(kind: Kind, [a, b, c]: Float32Array[], m: number, k: number, n: number): number {
  const product = wasmBackend[kind];
  const calls = Math.max(3, Math.min(5000, Math.round(2e8 / (2 * m * k * n))));
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) product(a, b, c, m, k, n);
  return (performance.now() - t0) / calls * 1000;
}

setThreads(threads);
// The pool's own speed: every product cut into tasks (4 per thread), however small, and no
// backing off when another process interrupts it.
Object.assign(parallelTuning, { minTask: 1, minPackTask: 1, backoff: false });
console.log(`load average ${load()}`);
console.log(`| shape | multiply-adds | 1 thread µs | ${threads} threads µs | speed-up |`);
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const [label, kind, m, k, n] of SHAPES) {
  if (!label.includes(values.filter!)) continue;
  const ops = operands(kind, m, k, n);
  const one: number[] = [], many: number[] = [];
  for (let r = 0; r < rounds + 1; r++) {
    // One thread by the threshold, not setThreads(1), which would close the pool.
    parallelTuning.threshold = Infinity;
    const t1 = time(kind, ops, m, k, n);
    parallelTuning.threshold = 0;
    const tn = time(kind, ops, m, k, n);
    if (r > 0) one.push(t1), many.push(tn); // the first round warms up (and starts the pool)
  }
  const [t1, tn] = [median(one), median(many)];
  console.log(
    `| ${label} | ${m * k * n} | ${t1.toFixed(1)} | ${tn.toFixed(1)} | ${(t1 / tn).toFixed(2)} |`,
  );
}
console.log(`load average ${load()}`);
setThreads(1);
