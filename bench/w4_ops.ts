// Where a W4 training step's time goes: each layer's forward and backward, the loss and the
// optimizer, timed inside real training steps (batch 64, float32), after a warm-up.
//
//   deno run --allow-sys=loadavg bench/w4_ops.ts [--steps 30] [--backend wasm|js] [--threads N] [--help]
//   deno run --allow-sys=loadavg --allow-ffi --allow-env bench/w4_ops.ts --backend blas

import { parseArgs } from "node:util";
import { Adam, type Layer, setBackend, setThreads, SoftmaxCrossEntropy, takeRows } from "../mod.ts";
import { blasBackend } from "../blas.ts";
import { workloadW4, workloadW4Model } from "./_workload_data.ts";

const USAGE = `Time every part of a W4 training step (../shared/bench/README.md), per layer.

Usage: deno run --allow-sys=loadavg bench/w4_ops.ts [options]

Options:
  --steps N       timed steps after the warm-up (default 30)
  --warm N        untimed warm-up steps (default 5; --warm 0 --steps 1 times the first step)
  --backend NAME  wasm (default), js, naive, or blas (OpenBLAS: --allow-ffi --allow-env;
                  OpenBLAS obeys OPENBLAS_CORETYPE: where the machine sets it, run under
                  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE to time the kernels it picks
                  itself, as bench:compare does)
  --threads N     threads of the large products (default: the available cores)
  --rss           also print how much each part grew the process's resident set (MiB):
                  with --warm 0 --steps 1, where the first step's fresh pages go
  --help          show this help`;

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "30" },
    warm: { type: "string", default: "5" },
    backend: { type: "string" },
    threads: { type: "string" },
    rss: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
if (values.backend === "blas") {
  const blas = blasBackend();
  if (!blas) throw new Error("w4_ops: no OpenBLAS (apt-get install libopenblas0; --allow-ffi)");
  setBackend(blas);
} else if (values.backend) setBackend(values.backend);
if (values.threads) setThreads(Number(values.threads));
const steps = Number(values.steps);

const workload = workloadW4({ samples: 64 * 8 });
const net = workloadW4Model(workload);
const loss = new SoftmaxCrossEntropy();
const optimizer = new Adam({ learningRate: 1e-3 });
const times = new Map<string, number>();
const grown = new Map<string, number>(); // bytes of resident set, with --rss
const resident = () => (values.rss ? Deno.memoryUsage().rss : 0);
const add = (label: string, ms: number) => times.set(label, (times.get(label) ?? 0) + ms);
// Runs `run` as the part `label`: its time, and with --rss its growth of the resident set.
function timed<T>(label: string, run: () => T): T {
  const before = resident(), t0 = performance.now();
  const out = run();
  add(label, performance.now() - t0);
  if (values.rss) grown.set(label, (grown.get(label) ?? 0) + resident() - before);
  return out;
}

// Every layer's forward and backward, timed.
net.layers.forEach((layer: Layer, i) => {
  const { forward, backward } = layer;
  const name = `${i} ${layer}`;
  layer.forward = (...args) => timed(`${name} forward`, () => forward.apply(layer, args));
  layer.backward = (...args) => timed(`${name} backward`, () => backward.apply(layer, args));
});
for (const method of ["forward", "backward"] as const) {
  const original = loss[method].bind(loss) as (...args: unknown[]) => unknown;
  (loss as unknown as Record<string, unknown>)[method] = (...args: unknown[]) =>
    timed(`loss ${method}`, () => original(...args));
}
const step = optimizer.step.bind(optimizer);
optimizer.step = (params) => timed("Adam step", () => step(params));

const batches = Array.from({ length: 8 }, (_, b) => {
  const rows = Int32Array.from({ length: 64 }, (_, i) => b * 64 + i);
  return [takeRows(workload.x, rows), workload.y.subarray(b * 64, (b + 1) * 64)] as const;
});
for (let s = 0; s < Number(values.warm); s++) {
  net.trainBatch(...batches[s % 8], { loss, optimizer });
}
times.clear();
grown.clear();
const before = resident(), t0 = performance.now();
for (let s = 0; s < steps; s++) net.trainBatch(...batches[s % 8], { loss, optimizer });
const total = (performance.now() - t0) / steps;
const mib = (bytes: number) =>
  values.rss ? ` ${(bytes / steps / 2 ** 20).toFixed(2).padStart(7)} MiB` : "";
let accounted = 0;
console.log(`W4 step profile, ${steps} steps, load average ${Deno.loadavg().join(" ")}`);
for (const [label, ms] of times) {
  accounted += ms / steps;
  console.log(
    `${label.padEnd(58)} ${(ms / steps).toFixed(2).padStart(7)} ms ${
      (100 * ms / steps / total).toFixed(1).padStart(5)
    } %${mib(grown.get(label) ?? 0)}`,
  );
}
console.log(
  `${"other (zeroGrad, loop)".padEnd(58)} ${(total - accounted).toFixed(2).padStart(7)} ms`,
);
console.log(`${"step".padEnd(58)} ${total.toFixed(2).padStart(7)} ms${mib(resident() - before)}`);
setThreads(1); // the pool's workers exit now
