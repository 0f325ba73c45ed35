// Checks chainrule's sequence layers against real PyTorch, both ways, for a small transformer,
// an LSTM model and a GRU model: chainrule's state dict loaded into PyTorch with strict=True
// (predictions and the losses of 5 Adam steps from the same weights compared), and a
// PyTorch-initialized, -trained state dict loaded into chainrule (predictions compared). Not a
// test: it needs PyTorch.
//
//   deno run --allow-run --allow-read --allow-write --allow-env bench/torch_seq_roundtrip.ts
//
// Needs `apt-get install python3-torch libopenblas0`; the PyTorch half is
// torch_seq_roundtrip.py, whose modules are named as chainrule's (PositionalEmbedding,
// Residual as an nn.Sequential that adds its input, SelfAttention as an nn.MultiheadAttention
// called on (x, x, x)).

import { parseArgs } from "node:util";
import {
  Adam,
  Dense,
  Embedding,
  GELU,
  GRU,
  LayerNorm,
  loadTorchStateDict,
  LSTM,
  MultiHeadAttention,
  PositionalEmbedding,
  RandomState,
  readSafetensors,
  Residual,
  Sequential,
  SoftmaxCrossEntropy,
  Tensor,
  toTorchStateDict,
  writeSafetensors,
} from "../mod.ts";

const USAGE = `Compare chainrule's sequence layers with real PyTorch, both ways.

Usage: deno run --allow-run --allow-read --allow-write --allow-env bench/torch_seq_roundtrip.ts [options]

Options:
  --python PATH   a Python with torch (default: the first of python3, /usr/bin/python3 that has it)
  --keep DIR      write the files into DIR and keep them (default: a temporary folder)
  --help          show this help`;

const { values } = parseArgs({
  options: {
    python: { type: "string" },
    keep: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}

const V = 11, T = 12, d = 16, B = 4;

// The networks of torch_seq_roundtrip.py, layer for layer (PyTorch's indices are the same).
const NETWORKS: Record<string, (random: RandomState) => Sequential> = {
  transformer: (random) =>
    new Sequential([
      new Embedding(V, d, { random }),
      new PositionalEmbedding(T, d, { random }),
      new Residual([new LayerNorm(d), new MultiHeadAttention(d, 4, { causal: true, random })]),
      new Residual([
        new LayerNorm(d),
        new Dense(d, 4 * d, { random }),
        new GELU(),
        new Dense(4 * d, d, { random }),
      ]),
      new LayerNorm(d),
      new Dense(d, V, { random }),
    ]),
  lstm: (random) =>
    new Sequential([
      new Embedding(V, d, { random }),
      new LSTM(d, 24, { random }),
      new Dense(24, V, { random }),
    ]),
  gru: (random) =>
    new Sequential([
      new Embedding(V, d, { random }),
      new GRU(d, 24, { random }),
      new Dense(24, V, { random }),
    ]),
};

function python(): string {
  const candidates = values.python ? [values.python] : ["python3", "/usr/bin/python3"];
  for (const candidate of candidates) {
    try {
      const check = new Deno.Command(candidate, { args: ["-c", "import torch"] }).outputSync();
      if (check.success) return candidate;
    } catch { /* not there */ }
  }
  console.error("torch_seq_roundtrip: no python3 with torch (apt-get install python3-torch)");
  Deno.exit(2);
}

const folder = values.keep ?? await Deno.makeTempDir({ prefix: "chainrule-torch-seq-" });
await Deno.mkdir(folder, { recursive: true });
const random = new RandomState(5);
const ids = Float32Array.from({ length: B * T }, () => random.randint(V));
const next = Float32Array.from({ length: B * T }, () => random.randint(V));
const x = new Tensor(ids, [B, T]);
const y = new Tensor(next, [B, T]);
await writeSafetensors(`${folder}/data.safetensors`, { x, y });
const loss = new SoftmaxCrossEntropy();
const interpreter = python();
let worstOverall = 0;

for (const [name, network] of Object.entries(NETWORKS)) {
  console.log(`\n${name}`);
  // chainrule → PyTorch: a network trained 3 steps, its predictions, and the losses of 5
  // more Adam steps with a fresh optimizer.
  const model = network(new RandomState(1));
  const warmup = new Adam({ learningRate: 1e-2 });
  for (let s = 0; s < 3; s++) model.trainStep(x, y, { loss, optimizer: warmup });
  await writeSafetensors(`${folder}/chainrule.safetensors`, toTorchStateDict(model));
  const predictions = Array.from(model.predict(x).data);
  const optimizer = new Adam({ learningRate: 1e-3 });
  const losses = Array.from({ length: 5 }, () => model.trainStep(x, y, { loss, optimizer }));
  await Deno.writeTextFile(`${folder}/chainrule.json`, JSON.stringify({ predictions, losses }));

  const run = new Deno.Command(interpreter, {
    args: [new URL("./torch_seq_roundtrip.py", import.meta.url).pathname, folder, name],
    stdout: "inherit",
    stderr: "inherit",
    env: { OMP_NUM_THREADS: "1" },
  }).outputSync();
  if (!run.success) Deno.exit(1);

  // PyTorch → chainrule: its state dict into a fresh chainrule network, predictions compared.
  const copy = network(new RandomState(99));
  const state = await readSafetensors(`${folder}/torch.safetensors`);
  loadTorchStateDict(copy, state.tensors);
  const theirs: number[] = JSON.parse(await Deno.readTextFile(`${folder}/torch.json`))
    .predictions;
  const ours = copy.predict(x).data;
  const worst = theirs.reduce((m, v, i) => Math.max(m, Math.abs(v - ours[i])), 0);
  worstOverall = Math.max(worstOverall, worst);
  console.log(
    `  PyTorch → chainrule: loadTorchStateDict of ${state.tensors.size} tensors ` +
      `(${[...state.tensors.keys()].join(", ")}); predictions [${B}, ${T}, ${V}]: ` +
      `max |chainrule − PyTorch| = ${worst.toPrecision(3)}`,
  );
}
if (!values.keep) await Deno.remove(folder, { recursive: true });
if (worstOverall > 1e-4) {
  console.error(`torch_seq_roundtrip: predictions differ by ${worstOverall} (> 1e-4)`);
  Deno.exit(1);
}
