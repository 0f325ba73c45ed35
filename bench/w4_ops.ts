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
  --backend NAME  wasm (default), js, naive, or blas (OpenBLAS: --allow-ffi --allow-env)
  --threads N     threads of the large products (default: the available cores)
  --help          show this help`;

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "30" },
    warm: { type: "string", default: "5" },
    backend: { type: "string" },
    threads: { type: "string" },
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
const add = (label: string, ms: number) => times.set(label, (times.get(label) ?? 0) + ms);

// Every layer's forward and backward, timed.
net.layers.forEach((layer: Layer, i) => {
  const { forward, backward } = layer;
  const name = `${i} ${layer}`;
  layer.forward = (...args) => {
    const t0 = performance.now();
    const out = forward.apply(layer, args);
    add(`${name} forward`, performance.now() - t0);
    return out;
  };
  layer.backward = (...args) => {
    const t0 = performance.now();
    const out = backward.apply(layer, args);
    add(`${name} backward`, performance.now() - t0);
    return out;
  };
});
for (const method of ["forward", "backward"] as const) {
  const original = loss[method].bind(loss) as (...args: unknown[]) => unknown;
  (loss as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
    const t0 = performance.now();
    const out = original(...args);
    add(`loss ${method}`, performance.now() - t0);
    return out;
  };
}
const step = optimizer.step.bind(optimizer);
optimizer.step = (params) => {
  const t0 = performance.now();
  step(params);
  add("Adam step", performance.now() - t0);
};

const batches = Array.from({ length: 8 }, (_, b) => {
  const rows = Int32Array.from({ length: 64 }, (_, i) => b * 64 + i);
  return [takeRows(workload.x, rows), workload.y.subarray(b * 64, (b + 1) * 64)] as const;
});
for (let s = 0; s < Number(values.warm); s++) {
  net.trainBatch(...batches[s % 8], { loss, optimizer });
}
times.clear();
const t0 = performance.now();
for (let s = 0; s < steps; s++) net.trainBatch(...batches[s % 8], { loss, optimizer });
const total = (performance.now() - t0) / steps;
let accounted = 0;
console.log(`W4 step profile, ${steps} steps, load average ${Deno.loadavg().join(" ")}`);
for (const [label, ms] of times) {
  accounted += ms / steps;
  console.log(
    `${label.padEnd(58)} ${(ms / steps).toFixed(2).padStart(7)} ms ${
      (100 * ms / steps / total).toFixed(1).padStart(5)
    } %`,
  );
}
console.log(
  `${"other (zeroGrad, loop)".padEnd(58)} ${(total - accounted).toFixed(2).padStart(7)} ms`,
);
console.log(`${"step".padEnd(58)} ${total.toFixed(2).padStart(7)} ms`);
setThreads(1); // the pool's workers exit now
