// Where a training step goes, per backend call, inside real training: the default backend
// wrapped in timers. W2: 300 steps (784 → 128 → 10, batch 128, float32, Adam) after 50
// warm-up steps; W3: 5 steps (1024 → 1024 → 1024 → 10, batch 2048, SGD) after 2. The rest of
// the step (softmax, loss, the layers' and the optimizer's JS) is "other".
//
//   deno run bench/step_profile.ts [--workload W2|W3] [--threads 2] [--steps N]

import { parseArgs } from "node:util";
import {
  Adam,
  type Backend,
  getBackend,
  getThreads,
  setBackend,
  setThreads,
  SGD,
  SoftmaxCrossEntropy,
  takeRows,
} from "../mod.ts";
import { type Workload, workloadModel, workloadW2, workloadW3 } from "./_workload_data.ts";

const { values } = parseArgs({
  options: {
    workload: { type: "string", default: "W2" },
    threads: { type: "string" },
    steps: { type: "string" },
  },
});
if (values.threads) setThreads(Number(values.threads));
const w3 = values.workload === "W3";
const steps = Number(values.steps ?? (w3 ? 5 : 300)), warm = w3 ? 2 : 50;
const batch = w3 ? 2048 : 128;

const inner = getBackend();
const spent = new Map<string, number>();
// The same backend with every method timed under `label(shape)`.
const timed = { ...inner, name: "timed" } as Backend;
for (const key of Object.keys(inner) as (keyof Backend)[]) {
  const method = inner[key];
  if (typeof method !== "function") continue;
  (timed as unknown as Record<string, unknown>)[key] = (...args: unknown[]) => {
    const t0 = performance.now();
    (method as (...args: unknown[]) => void).apply(inner, args);
    const dims = args.filter((a) => typeof a === "number").slice(0, 3).join("×");
    const label = `${key} ${dims}`;
    spent.set(label, (spent.get(label) ?? 0) + performance.now() - t0);
  };
}

// W3 trains on its one batch every step, as the reference does.
const workload: Workload = w3 ? workloadW3() : workloadW2({ samples: batch * (steps + warm) });
const model = workloadModel(workload, "float32");
const optimizer = w3 ? new SGD({ learningRate: 0.01 }) : new Adam({ learningRate: 1e-3 });
const step = { loss: new SoftmaxCrossEntropy(), optimizer };
const labels = new Int32Array(batch);
let x = takeRows(workload.x, new Int32Array(batch));
const train = (s: number) => {
  const first = w3 ? 0 : s * batch;
  const rows = Int32Array.from({ length: batch }, (_, i) => first + i);
  for (let i = 0; i < batch; i++) labels[i] = workload.y[rows[i]];
  x = takeRows(workload.x, rows, x);
  model.trainBatch(x, labels, step);
};
for (let s = 0; s < warm; s++) train(s);
setBackend(timed);
const t0 = performance.now();
for (let s = warm; s < warm + steps; s++) train(s);
const total = performance.now() - t0;
setBackend(inner);

const perStep = (ms: number) => (ms / steps * 1000).toFixed(1).padStart(7);
console.log(`${values.workload} step, ${getThreads()} thread(s), ${steps} steps: µs per step`);
let calls = 0;
for (const [label, ms] of [...spent].sort((a, b) => b[1] - a[1])) {
  console.log(`  ${label.padEnd(34)} ${perStep(ms)}`);
  calls += ms;
}
console.log(`  ${"other (softmax, loss, layers' JS)".padEnd(34)} ${perStep(total - calls)}`);
console.log(`  ${"step".padEnd(34)} ${perStep(total)}`);
setThreads(1);
