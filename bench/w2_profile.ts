// Where a W2 training step goes, per backend call, inside real training: the default backend
// wrapped in timers, 300 steps of W2 (784 → 128 → 10, batch 128, float32, Adam) after 50
// warm-up steps; the rest of the step (softmax, loss, the layers' JS) is "other".
//
//   deno run bench/w2_profile.ts [--threads 2] [--steps 300]

import { parseArgs } from "node:util";
import {
  Adam,
  type Backend,
  getBackend,
  getThreads,
  setBackend,
  setThreads,
  SoftmaxCrossEntropy,
  takeRows,
  workloadModel,
  workloadW2,
} from "../mod.ts";

const { values } = parseArgs({
  options: { threads: { type: "string" }, steps: { type: "string", default: "300" } },
});
if (values.threads) setThreads(Number(values.threads));
const steps = Number(values.steps), warm = 50, batch = 128;

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

const workload = workloadW2({ samples: batch * (steps + warm) });
const model = workloadModel(workload, "float32");
const step = { loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ learningRate: 1e-3 }) };
const labels = new Int32Array(batch);
let x = takeRows(workload.x, new Int32Array(batch));
const train = (s: number) => {
  const rows = Int32Array.from({ length: batch }, (_, i) => s * batch + i);
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
console.log(`W2 step, ${getThreads()} thread(s), ${steps} steps: µs per step`);
let calls = 0;
for (const [label, ms] of [...spent].sort((a, b) => b[1] - a[1])) {
  console.log(`  ${label.padEnd(34)} ${perStep(ms)}`);
  calls += ms;
}
console.log(`  ${"other (softmax, loss, layers' JS)".padEnd(34)} ${perStep(total - calls)}`);
console.log(`  ${"step".padEnd(34)} ${perStep(total)}`);
setThreads(1);
