// Runs one reference workload (../shared/bench/README.md) on WebGPU with
// `fitAsync(..., { device: "webgpu" })` and prints a RESULT line in the peers' format, with
// the workload's metric (W1 wall_s, W2 per_epoch_s, W3–W6 per_step_ms).
//
//   deno run --allow-read bench/gpu_workloads.ts --workload W3 [--steps N] [--epochs N]
//
// Where WebGPU has no adapter it prints `SKIP <why>` and exits 0 without a RESULT; where
// fitAsync refuses the workload (a layer without a GPU side) it prints `ERROR <message>` and
// exits 1.

import { parseArgs } from "node:util";
import { webgpuStatus } from "../mod.ts";
import { formatResult } from "./_workloads.ts";
import {
  GPU_WORKLOADS,
  gpuDefaults,
  runGpuWorkload,
  W1_EPOCHS,
  W2_STEPS,
} from "./_gpu_workloads.ts";

const [w1, w2, w3, w4, w5] = ["W1", "W2", "W3", "W4", "W5"].map(gpuDefaults);
const USAGE =
  `Run one reference workload (../shared/bench/README.md) on WebGPU with fitAsync and print a
RESULT line in the peers' format.

Usage: deno run --allow-read bench/gpu_workloads.ts [options]

Each fitAsync opens its own device, uploads the data and params and compiles its pipelines in
its first step, so the steady state is measured from two fits on fresh copies of the model, of
S and of 2S steps (the workload's batches in order, shuffle off), after an untimed 1-step fit:
per step = (t(2S) − t(S)) / S, each t from the fit's onTrainBegin to the end of the call.
fit_s is the whole S-step call (setup_s of it before the first step); loss/acc: the trained
weights of the 2S fit evaluated on the CPU as the CPU workload does (W5/W6: its last batch);
train_loss: that fit's last epoch as the device measured it.

Options:
  --workload W  W1, W2, W3, W4, W5 or W6 (default W1)
  --steps N     S, the shorter fit's steps (the longer runs 2S). Defaults: W2 ${w2} (at most
                234: 2S full batches of the epoch's permutation; per_epoch_s = per step × ${W2_STEPS},
                as the peer's --max-steps extrapolates), W3 ${w3}, W4 ${w4}, W5/W6 ${w5} (the
                longer fit is then exactly the reference's 20, 64 and 32 steps)
  --epochs N    W1: E, the shorter fit's full-batch epochs (the longer runs 2E; default ${w1}).
                wall_s estimates one fitAsync of ${W1_EPOCHS} epochs: the E-epoch fit's whole
                time (setup included) + (${W1_EPOCHS} − E) × the steady per-epoch time;
                --epochs ${W1_EPOCHS} measures it outright. Each epoch ends with a read of its
                loss, as fitAsync does.
  --help        show this help

Where WebGPU has no adapter: prints "SKIP <reason>" and exits 0 with no RESULT. Where fitAsync
refuses the model (a layer, loss or optimizer without a GPU side): "ERROR <message>", exit 1.`;

const { values } = parseArgs({
  options: {
    help: { type: "boolean", default: false },
    workload: { type: "string", default: "W1" },
    steps: { type: "string" },
    epochs: { type: "string" },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const workload = values.workload!;
if (!GPU_WORKLOADS.includes(workload)) {
  console.error(`gpu_workloads: --workload must be W1, W2, W3, W4, W5 or W6, got ${workload}`);
  Deno.exit(2);
}
const number = (text: string | undefined) => (text === undefined ? undefined : Number(text));

const status = await webgpuStatus();
if (!status.available) {
  console.log(`SKIP gpu_workloads ${workload}: WebGPU unavailable: ${status.reason}`);
  Deno.exit(0);
}
const { description, vendor, architecture } = status.adapter.info;
const adapter = description || [vendor, architecture].filter(Boolean).join(" ") || "unknown";
const peer = "chainrule-webgpu-f32";
console.log(`INFO peer=${peer} adapter=${adapter} deno=${Deno.version.deno}`);
console.log(
  "INFO timing: steady state (t(2S) − t(S)) / S over two fitAsync calls on fresh models " +
    "(see --help)" +
    (workload === "W1"
      ? `; wall_s = the E-epoch fit + (${W1_EPOCHS} − E) epochs at the steady rate`
      : workload === "W2"
      ? `; per_epoch_s = per step × ${W2_STEPS} (the last batch of 96 counted as a full one)`
      : ""),
);

try {
  const result = await runGpuWorkload(workload, {
    steps: number(values.steps),
    epochs: number(values.epochs),
  });
  console.log(formatResult({ peer, ...result }));
} catch (error) {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  console.log(`ERROR gpu_workloads ${workload}: ${message}`);
  // A refusal (TypeError/RangeError from fitAsync's checks) says all; anything else gets its stack.
  if (!(error instanceof TypeError || error instanceof RangeError)) console.error(error);
  Deno.exit(1);
}
