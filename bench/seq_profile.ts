// Where a W5 or W6 training step goes, per layer: every layer's forward and backward (inside
// Residual blocks too) wrapped in timers during real training steps, plus the loss and the
// optimizer. The layers' own products, copies and loops are all inside their rows.
//
//   deno run bench/seq_profile.ts [--workload W5|W6] [--threads 2] [--steps 8] [--warm 3]
//
// `--warm 0 --steps 1` shows where the first step's extra time goes.

import { parseArgs } from "node:util";
import { Adam, getThreads, type Layer, setThreads, SoftmaxCrossEntropy } from "../mod.ts";
import {
  idsTensor,
  SEQ,
  seqBatch,
  workloadW5,
  workloadW5Model,
  workloadW6,
  workloadW6Model,
} from "./_seq_workload_data.ts";

const { values } = parseArgs({
  options: {
    workload: { type: "string", default: "W5" },
    threads: { type: "string" },
    steps: { type: "string", default: "8" },
    warm: { type: "string", default: "3" },
  },
});
if (values.threads) setThreads(Number(values.threads));
const w5 = values.workload === "W5";
const workload = w5 ? workloadW5() : workloadW6();
const model = w5 ? workloadW5Model(workload) : workloadW6Model(workload);
const steps = Number(values.steps), warm = Number(values.warm);

const spent = new Map<string, number>();
const add = (label: string, ms: number) => spent.set(label, (spent.get(label) ?? 0) + ms);
let timing = false;

// Times `layer`'s forward and backward under its kind, and those of the layers it holds.
function instrument(layer: Layer): void {
  const inner = (layer as { layers?: Layer[] }).layers;
  if (Array.isArray(inner)) inner.forEach(instrument);
  if (inner) return; // a container's own time is its layers' plus an add
  const forward = layer.forward.bind(layer), backward = layer.backward.bind(layer);
  layer.forward = (inputs, options) => {
    const t0 = performance.now();
    const out = forward(inputs, options);
    if (timing) add(`${layer.kind} forward`, performance.now() - t0);
    return out;
  };
  layer.backward = (dvalues, options) => {
    const t0 = performance.now();
    const out = backward(dvalues, options);
    if (timing) add(`${layer.kind} backward`, performance.now() - t0);
    return out;
  };
}
model.layers.forEach(instrument);

const loss = new SoftmaxCrossEntropy();
const optimizer = new Adam({ learningRate: 1e-3 });
const lossForward = loss.forward.bind(loss), lossBackward = loss.backward.bind(loss);
loss.forward = (outputs, targets) => {
  const t0 = performance.now();
  const value = lossForward(outputs, targets);
  if (timing) add("SoftmaxCrossEntropy", performance.now() - t0);
  return value;
};
loss.backward = () => {
  const t0 = performance.now();
  const d = lossBackward();
  if (timing) add("SoftmaxCrossEntropy", performance.now() - t0);
  return d;
};
const optimizerStep = optimizer.step.bind(optimizer);
optimizer.step = (params) => {
  const t0 = performance.now();
  optimizerStep(params);
  if (timing) add("Adam", performance.now() - t0);
};

const { B, T } = SEQ;
const step = (s: number) => {
  const { x, y } = seqBatch(workload.stream, s, B, T);
  model.trainBatch(idsTensor(x, B, T, "float32"), idsTensor(y, B, T, "float32"), {
    loss,
    optimizer,
  });
};
for (let s = 0; s < warm; s++) step(s);
timing = true;
const t0 = performance.now();
for (let s = warm; s < warm + steps; s++) step(s);
const total = performance.now() - t0;

const perStep = (ms: number) => (ms / steps).toFixed(2).padStart(8);
console.log(`${values.workload} step, ${getThreads()} thread(s), ${steps} steps: ms per step`);
let counted = 0;
for (const [label, ms] of [...spent].sort((a, b) => b[1] - a[1])) {
  console.log(`  ${label.padEnd(30)} ${perStep(ms)}`);
  counted += ms;
}
console.log(`  ${"other (residual adds, zeroGrad)".padEnd(30)} ${perStep(total - counted)}`);
console.log(`  ${"step".padEnd(30)} ${perStep(total)}`);
setThreads(1);
