// Runs the book's NumPy implementation (../shared/bench/peer_numpy.py), or for W4, W5 and W6
// the PyTorch peer (peer_torch.py), and chainrule on the same reference workloads in one run,
// alternating, and prints both and their ratio.
//
//   deno task bench:compare [--workload W1|W2|W3|W4|W5|W6|W5,W6|all] [--repeats 3] [--threads 1,2]
//                           [--device webgpu [--gpu-steps N]]
//
// The NumPy peer needs python3 with NumPy (`apt-get install python3-numpy`); it runs W1 on one
// OpenBLAS thread, as ../shared/bench/README.md says, W2 and W3 on as many OpenBLAS threads as
// chainrule's largest count. Every command that loads OpenBLAS (the peers and chainrule's
// `blas` rows) runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, for that command only,
// so that both sides run the same kernels; the kernels OpenBLAS chose are printed with the
// row's first run (by the NumPy peer and chainrule themselves, PyTorch's from OpenBLAS's
// verbose flag). The PyTorch peer (W4, W5, W6) needs python3-torch and libopenblas0 and runs
// on 1 thread and on the largest count. chainrule runs once per thread count (`--threads`);
// the threads column says how many each row used. The `blas` rows need libopenblas0.
// `--device webgpu` adds a row per workload trained on WebGPU by gpu_workloads.ts (fitAsync,
// float32), in the workload's metric. Where taskset works, each round starts with every
// CPU's speed (cpu_probe.ts).

import { parseArgs } from "node:util";

const USAGE =
  `Run the book's NumPy peer (../shared/bench/peer_numpy.py; W4–W6: the PyTorch peer, peer_torch.py)
and chainrule on the same reference workloads, alternating, and print both with their ratio.

Usage: deno task bench:compare [options]

Options:
  --workload W    W1, W2, W3, W4, W5, W6, a comma-separated list (W5,W6) or all (default all)
  --repeats N     alternating runs of each side; medians are reported, and the fastest
                  run of each beside them ("best", the least disturbed) (default 1)
  --threads LIST  chainrule's thread counts, comma-separated (default 1 and the available
                  cores capped at 8); NumPy's OpenBLAS uses the largest (W1: 1, as the README)
  --peer-dir DIR  where peer_numpy.py lives (default ../shared/bench beside the repository)
  --python PATH   the Python with NumPy (and torch for W4–W6) (default: the first of python3 and
                  /usr/bin/python3 that imports it)
  --device webgpu also train each workload on WebGPU (bench/gpu_workloads.ts: fitAsync with
                  device "webgpu", float32), a row "chainrule webgpu f32" in the workload's
                  metric. Its steady state is the difference of two fits of S and 2S steps (the
                  longer one is the reference's steps: W3 20, W4 64, W5/W6 32; W2 S = 100 of the
                  epoch's 469, per_epoch_s extrapolated; W1 E = 2001 epochs, wall_s = that fit +
                  the remaining epochs of 10001 at the steady rate). Where WebGPU has no adapter
                  the row says why; a software adapter (lavapipe) is a CPU emulation: slow
  --gpu-steps N   the GPU row's S (W1: E epochs) instead of those defaults (slow adapters)
  --cpu N         pin every one-thread run, of both sides, to CPU N (Linux's taskset): on a VM
                  whose CPUs run at different speeds (seen here: one 1.27× slower for PyTorch's W4
                  step, 1.55× for chainrule's), an unpinned run's speed is the luck of where it
                  lands. Runs on more threads stay unpinned. Where taskset works, every round
                  starts by printing each CPU's speed (bench/cpu_probe.ts)
  --help          show this help`;

const { values } = parseArgs({
  options: {
    help: { type: "boolean", default: false },
    workload: { type: "string", default: "all" },
    repeats: { type: "string", default: "1" },
    threads: { type: "string" },
    "peer-dir": { type: "string" },
    python: { type: "string" },
    device: { type: "string" },
    "gpu-steps": { type: "string" },
    cpu: { type: "string" },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}

if (values.device !== undefined && values.device !== "webgpu") {
  console.error(`compare: --device must be webgpu (the CPU rows always run), got ${values.device}`);
  Deno.exit(2);
}

const here = new URL(".", import.meta.url).pathname;
// ../shared/bench beside the repository (the repository's root is one level above bench/).
const peerDir = values["peer-dir"] ??
  [`${here}../../shared/bench`, `${here}../../../shared/bench`].find((dir) => {
    try {
      return Deno.statSync(`${dir}/peer_numpy.py`).isFile;
    } catch {
      return false;
    }
  }) ?? `${here}../../shared/bench`;
const repeats = Number(values.repeats);
const cores = Math.min(navigator.hardwareConcurrency, 8);
const threadCounts = values.threads
  ? values.threads.split(",").map(Number)
  : [...new Set([1, cores])];
const most = Math.max(...threadCounts);

interface Run {
  label: string;
  threads: number;
  gpu?: boolean; // trained on WebGPU
  command: string[];
  env?: Record<string, string>;
  unset?: string[];
}

// Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) for older OpenBLAS builds, which
// misjudge their processors: a forced older core (Haswell's AVX2 on an AVX-512 machine) made
// chainrule's `blas` W4 step 28 ms where the peers, without it, ran AVX-512 kernels (23 ms
// with them). A comparison runs both sides on the kernels the library picks itself.
const OPENBLAS_RUN = { unset: ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"] };

function python(module: string): string | null {
  const candidates = values.python ? [values.python] : ["python3", "/usr/bin/python3"];
  for (const candidate of candidates) {
    try {
      const { success } = new Deno.Command(candidate, { args: ["-c", `import ${module}`] })
        .outputSync();
      if (success) return candidate;
    } catch { /* not installed */ }
  }
  return null;
}

const isFile = (path: string) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
};
const TORCH_WORKLOADS = ["W4", "W5", "W6"];
const workloads = values.workload === "all"
  ? ["W1", "W2", "W3", ...TORCH_WORKLOADS]
  : values.workload!.split(",");
const wantsNumpy = workloads.some((w) => !TORCH_WORKLOADS.includes(w));
const py = wantsNumpy ? python("numpy") : null;
const peerOk = py !== null && isFile(`${peerDir}/peer_numpy.py`);
if (wantsNumpy && !peerOk) {
  console.log(
    `compare: NumPy peer unavailable (python3 with numpy: ${
      py ?? "missing"
    }; peer dir ${peerDir}); ` +
      "showing chainrule only. apt-get install python3-numpy to compare.",
  );
}
const wantsTorch = workloads.some((w) => TORCH_WORKLOADS.includes(w));
const torchPy = wantsTorch ? python("torch") : null;
const torchOk = torchPy !== null && isFile(`${peerDir}/peer_torch.py`);
if (wantsTorch && !torchOk) {
  console.log(
    `compare: PyTorch peer unavailable (python3 with torch: ${
      torchPy ?? "missing"
    }; peer dir ${peerDir}); ` +
      "showing chainrule only. apt-get install python3-torch libopenblas0 to compare.",
  );
}

function numpy(workload: string, dtype: string, extra: string[] = []): Run[] {
  if (!peerOk) return [];
  const threads = workload === "W1" ? 1 : most;
  return [{
    label: `numpy ${dtype}`,
    threads,
    command: [py!, `${peerDir}/peer_numpy.py`, "--workload", workload, "--dtype", dtype, ...extra],
    env: { OPENBLAS_NUM_THREADS: String(threads) }, // it prints its OpenBLAS's core itself
    unset: OPENBLAS_RUN.unset,
  }];
}

function torch(workload: string, threads: number): Run {
  return {
    label: `torch t${threads}`,
    threads,
    command: [
      torchPy!,
      `${peerDir}/peer_torch.py`,
      "--workload",
      workload,
      "--threads",
      `${threads}`,
    ],
    env: { OPENBLAS_VERBOSE: "2" }, // OpenBLAS prints "Core: <name>" on stderr
    ...OPENBLAS_RUN,
  };
}

// One run per thread count (`counts`, default all of --threads).
function chainrule(workload: string, dtype: string, backend?: string, counts = threadCounts) {
  return counts.map((threads): Run => {
    const flags = ["run", "--v8-flags=--expose-gc"];
    if (backend === "blas") flags.push("--allow-ffi", "--allow-env=CHAINRULE_BLAS");
    const args = [...flags, `${here}workloads.ts`, "--workload", workload, "--dtype", dtype];
    if (backend) args.push("--backend", backend);
    args.push("--threads", String(threads));
    return {
      label: `chainrule ${backend ?? "default"} ${dtype} t${threads}`,
      threads,
      command: [Deno.execPath(), ...args],
      ...(backend === "blas" ? OPENBLAS_RUN : {}),
    };
  });
}

// The workload on WebGPU (`--device webgpu`), if asked for.
function webgpu(workload: string): Run[] {
  if (values.device !== "webgpu") return [];
  const steps = values["gpu-steps"];
  const args = ["run", "--allow-read", `${here}gpu_workloads.ts`, "--workload", workload];
  if (steps !== undefined) args.push(workload === "W1" ? "--epochs" : "--steps", steps);
  return [{
    label: "chainrule webgpu f32",
    threads: 1,
    gpu: true,
    command: [Deno.execPath(), ...args],
  }];
}

const PLANS: Record<string, { runs: Run[]; metric: string; baselines: string[] }> = {
  W1: {
    runs: [
      ...numpy("W1", "f64"),
      ...chainrule("W1", "f32"),
      ...chainrule("W1", "f64"),
      ...webgpu("W1"),
    ],
    metric: "wall_s",
    baselines: ["numpy f64"],
  },
  W2: {
    runs: [
      ...numpy("W2", "f64"),
      ...numpy("W2", "f32"),
      ...chainrule("W2", "f32"),
      ...chainrule("W2", "f32", "blas", [most]),
      ...webgpu("W2"),
    ],
    metric: "per_epoch_s",
    baselines: ["numpy f64", "numpy f32"],
  },
  W3: {
    runs: [
      ...numpy("W3", "f32", ["--steps", "20"]),
      ...numpy("W3", "f64", ["--steps", "20"]),
      ...chainrule("W3", "f32"),
      ...chainrule("W3", "f32", "blas", [most]),
      ...webgpu("W3"),
    ],
    metric: "per_step_ms",
    baselines: ["numpy f32", "numpy f64", `chainrule default f32 t1`],
  },
  W4: {
    runs: [
      ...(torchOk ? [...new Set([1, most])].map((t) => torch("W4", t)) : []),
      ...chainrule("W4", "f32"),
      ...chainrule("W4", "f32", "blas", [1]),
      ...webgpu("W4"),
    ],
    metric: "per_step_ms",
    baselines: ["torch t1", `torch t${most}`],
  },
  ...Object.fromEntries(["W5", "W6"].map((workload) => [workload, {
    runs: [
      ...(torchOk ? [...new Set([1, most])].map((t) => torch(workload, t)) : []),
      ...chainrule(workload, "f32"),
      ...chainrule(workload, "f32", "blas", [most]),
      ...webgpu(workload),
    ],
    metric: "per_step_ms",
    baselines: ["torch t1"],
  }])),
};

if (values.cpu !== undefined && !/^\d+$/.test(values.cpu)) {
  console.error(`bench:compare: --cpu must be a CPU number, got ${values.cpu}`);
  Deno.exit(2);
}

function execute(run: Run, r: number): Record<string, string> | null {
  const env = { ...Deno.env.toObject(), ...run.env };
  for (const name of run.unset ?? []) delete env[name];
  const pinned = values.cpu !== undefined && run.threads === 1 && !run.gpu;
  const command = pinned ? ["taskset", "-c", values.cpu!, ...run.command] : run.command;
  const output = new Deno.Command(command[0], {
    args: command.slice(1),
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const text = new TextDecoder().decode(output.stdout);
  const line = text.split("\n").find((l) => l.startsWith("RESULT "));
  if (!output.success || !line) {
    // gpu_workloads.ts says why in a SKIP (no adapter) or ERROR (a refusal) line.
    const why = text.split("\n").filter((l) => l.startsWith("SKIP ") || l.startsWith("ERROR "));
    const detail = why.length > 0
      ? why.join("\n")
      : new TextDecoder().decode(output.stderr).slice(-600);
    console.log(`  ${run.label}: ${output.success ? "skipped" : "failed"}\n  ${detail}`);
    return null;
  }
  const info = text.split("\n").filter((l) => l.startsWith("INFO ") || l.startsWith("DATA "));
  const core = new TextDecoder().decode(output.stderr).match(/^Core: (.+)$/m);
  if (core) info.push(`OPENBLAS core=${core[1].trim()}`);
  if (r === 0) { for (const l of info) console.log(`  ${run.label.padEnd(28)} ${l}`); }
  console.log(`  ${run.label.padEnd(28)} ${line}`);
  return Object.fromEntries(
    line.slice(7).split(" ").map((kv) => kv.split("=") as [string, string]),
  );
}

// Each CPU's speed on the wasm kernels before a round (bench/cpu_probe.ts pinned to it), so
// that a reader can tell a slow CPU from slow code; Linux with taskset and 2+ CPUs only.
function probeCpus(round: number): void {
  const cpus = navigator.hardwareConcurrency;
  if (cpus < 2 || !canPin()) return;
  const speeds: string[] = [];
  for (let cpu = 0; cpu < Math.min(cpus, 8); cpu++) {
    const output = new Deno.Command("taskset", {
      args: ["-c", String(cpu), Deno.execPath(), "run", `${here}cpu_probe.ts`],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const gflops = new TextDecoder().decode(output.stdout).match(/PROBE gflops=([\d.]+)/);
    speeds.push(`CPU ${cpu} ${gflops ? gflops[1] : "?"}`);
  }
  console.log(`  round ${round + 1}: one-thread wasm GFLOP/s ${speeds.join(", ")}`);
}

let pinnable: boolean | undefined;
function canPin(): boolean {
  if (pinnable === undefined) {
    try {
      pinnable = new Deno.Command("taskset", { args: ["-c", "0", "true"] }).outputSync().success;
    } catch {
      pinnable = false;
    }
  }
  return pinnable;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const load = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
for (const workload of workloads) {
  const plan = PLANS[workload];
  if (!plan) {
    throw new RangeError(
      `compare: unknown workload ${workload}, expected W1, W2, W3, W4, W5, W6 or all`,
    );
  }
  const pin = values.cpu === undefined ? "" : `; one-thread runs on CPU ${values.cpu}`;
  console.log(
    `\n${workload} (${repeats} alternating repeat(s)${pin}; load average before: ${load()})`,
  );
  const results = new Map<string, Record<string, string>[]>();
  for (let r = 0; r < repeats; r++) {
    probeCpus(r);
    for (const run of plan.runs) {
      const result = execute(run, r);
      if (result) results.set(run.label, [...(results.get(run.label) ?? []), result]);
    }
  }
  console.log(`  load average after: ${load()}`);
  const valuesOf = (label: string) => (results.get(label) ?? []).map((r) => Number(r[plan.metric]));
  const medianOf = (label: string) => results.has(label) ? median(valuesOf(label)) : NaN;
  // The fastest repeat too: on a machine that other work slows now and then, it is the run
  // least disturbed, on both sides alike.
  const bestOf = (label: string) => Math.min(...valuesOf(label));
  console.log(
    `  | run | threads | ${plan.metric} (median) | best | GFLOP/s | loss | acc | ratio (best's) |`,
  );
  console.log("  | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const run of plan.runs) {
    const runs = results.get(run.label);
    if (!runs) continue;
    const value = medianOf(run.label);
    // The same workload on 1 thread, for the chainrule rows with more.
    const one = run.label.replace(/ t\d+$/, " t1");
    const baselines = [
      ...plan.baselines,
      ...(run.threads > 1 ? [one] : []),
      ...(run.gpu ? ["chainrule default f32 t1"] : []),
    ];
    const ratios = [...new Set(baselines)]
      .filter((b) => b !== run.label && results.has(b))
      .map((b) =>
        `${(value / medianOf(b)).toFixed(3)}× ${b} (${(bestOf(run.label) / bestOf(b)).toFixed(3)}×)`
      );
    const last = runs.at(-1)!;
    const gflops = runs[0].gflops ? median(runs.map((r) => Number(r.gflops))).toFixed(1) : "–";
    console.log(
      `  | ${run.label} | ${run.gpu ? "gpu" : run.threads} | ${value.toFixed(4)} | ${
        bestOf(run.label).toFixed(4)
      } | ${gflops} | ${last.loss ?? last.loss_last} | ` +
        `${last.acc ?? "–"} | ${ratios.join(", ")} |` +
        (last.loss0 && TORCH_WORKLOADS.includes(workload) ? ` loss0=${last.loss0}` : "") +
        (last.heap_growth_kib
          ? ` heap_growth_kib/${last.heap_steps}steps=${last.heap_growth_kib}`
          : ""),
    );
  }
  const f64 = `chainrule default f64 t${threadCounts[0]}`;
  if (workload === "W1" && results.has("numpy f64") && results.has(f64)) {
    const ours = Number(results.get(f64)![0].loss);
    const theirs = Number(results.get("numpy f64")![0].loss);
    console.log(
      `  float64 final loss: chainrule ${ours} numpy ${theirs} relative difference ${
        (Math.abs(ours - theirs) / theirs).toExponential(2)
      } (see docs/speed.md: the run is chaotic, NumPy's own 1e-15 perturbation moves it ~10%)`,
    );
  }
}
