// Checks chainrule's CNN layers against real PyTorch, both ways: the same network in both,
// chainrule's state dict loaded into PyTorch with strict=True (predictions and the losses of
// 5 Adam steps from the same weights compared), and a PyTorch-trained state dict loaded into
// chainrule (predictions compared). Not a test: it needs PyTorch.
//
//   deno run --allow-run --allow-read --allow-write --allow-env bench/torch_roundtrip.ts
//
// Needs `apt-get install python3-torch libopenblas0`; the PyTorch half is torch_roundtrip.py.

import { parseArgs } from "node:util";
import {
  Adam,
  AvgPool2D,
  BatchNorm,
  Conv2D,
  Dense,
  encodeSafetensors,
  Flatten,
  loadTorchStateDict,
  MaxPool2D,
  RandomState,
  readSafetensors,
  ReLU,
  Sequential,
  SoftmaxCrossEntropy,
  Tensor,
  toTorchStateDict,
  writeSafetensors,
} from "../mod.ts";

const USAGE = `Compare chainrule's CNN layers with real PyTorch, both ways.

Usage: deno run --allow-run --allow-read --allow-write --allow-env bench/torch_roundtrip.ts [options]

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

// The network of torch_roundtrip.py, layer for layer (PyTorch's indices are the same).
function network(seed: number): Sequential {
  const random = new RandomState(seed);
  return new Sequential([
    new Conv2D(1, 8, 3, { padding: 1, random }),
    new BatchNorm(8),
    new ReLU(),
    new MaxPool2D(3, { stride: 2 }),
    new Conv2D(8, 16, [3, 2], { padding: "same", random }),
    new ReLU(),
    new AvgPool2D(2, { padding: 1 }),
    new Conv2D(16, 16, 3, { stride: 2, padding: 2, dilation: 2, bias: false, random }),
    new BatchNorm(16),
    new ReLU(),
    new Flatten(),
    new Dense(256, 32, { random }),
    new BatchNorm(32),
    new ReLU(),
    new Dense(32, 10, { random }),
  ]);
}

const folder = values.keep ?? await Deno.makeTempDir({ prefix: "chainrule-torch-" });
await Deno.mkdir(folder, { recursive: true });
const loss = new SoftmaxCrossEntropy();
const x = Tensor.randn([32, 1, 28, 28], { seed: 7 });
const random = new RandomState(8);
const y = Int32Array.from({ length: 32 }, () => random.randint(10));

// chainrule → PyTorch: a network trained 3 steps (so that BatchNorm's statistics moved),
// its predictions, and the losses of 5 more Adam steps with a fresh optimizer.
const model = network(1);
for (let s = 0; s < 3; s++) model.trainStep(x, y, { loss, optimizer: new Adam() });
await writeSafetensors(`${folder}/chainrule.safetensors`, toTorchStateDict(model));
await writeSafetensors(`${folder}/data.safetensors`, {
  x,
  y: new Tensor(Float32Array.from(y), [32]),
});
const predictions = Array.from(model.predict(x).data);
const optimizer = new Adam({ learningRate: 1e-3 });
const losses = Array.from({ length: 5 }, () => model.trainStep(x, y, { loss, optimizer }));
await writeSafetensors(`${folder}/chainrule_after.safetensors`, toTorchStateDict(model));
await Deno.writeTextFile(`${folder}/chainrule.json`, JSON.stringify({ predictions, losses }));

function python(): string {
  const candidates = values.python ? [values.python] : ["python3", "/usr/bin/python3"];
  for (const candidate of candidates) {
    try {
      const check = new Deno.Command(candidate, { args: ["-c", "import torch"] }).outputSync();
      if (check.success) return candidate;
    } catch { /* not there */ }
  }
  console.error("torch_roundtrip: no python3 with torch (apt-get install python3-torch)");
  Deno.exit(2);
}
const script = new URL("./torch_roundtrip.py", import.meta.url).pathname;
const run = new Deno.Command(python(), {
  args: [script, folder],
  stdout: "inherit",
  stderr: "inherit",
  env: { OMP_NUM_THREADS: "1" },
}).outputSync();
if (!run.success) Deno.exit(1);

// PyTorch → chainrule: its state dict into a fresh chainrule network, predictions compared.
const copy = network(99);
const state = await readSafetensors(`${folder}/torch.safetensors`);
loadTorchStateDict(copy, state.tensors);
const theirs: number[] = JSON.parse(await Deno.readTextFile(`${folder}/torch.json`)).predictions;
const ours = copy.predict(x).data;
const worst = theirs.reduce((m, v, i) => Math.max(m, Math.abs(v - ours[i])), 0);
const dtypes = [...new Set([...state.tensors.values()].map((t) => t.dtype))].join(", ");
console.log(
  `PyTorch → chainrule: loadTorchStateDict of ${state.tensors.size} tensors (${dtypes}); ` +
    `predictions [32, 10]: max |chainrule − PyTorch| = ${worst.toPrecision(3)}`,
);
// The state dict written back is the one PyTorch gave (bit for bit, num_batches_tracked as a
// float).
const again = encodeSafetensors(toTorchStateDict(copy));
console.log(
  `  toTorchStateDict of the loaded network: ${again.length} bytes, same names: ${
    [...toTorchStateDict(copy).keys()].join(",") === [...state.tensors.keys()].join(",")
  }`,
);
if (!values.keep) await Deno.remove(folder, { recursive: true });
