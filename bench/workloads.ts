// Runs one reference workload (../shared/bench/README.md) and prints a RESULT line in the
// peers' format, plus the heap growth over 1,000 further steps (W4: 100).
//
//   deno run --v8-flags=--expose-gc bench/workloads.ts --workload W1 --dtype f32 [--backend wasm]
//
// --backend blas needs --allow-ffi (and --allow-read/--allow-env to find the library).

import { parseArgs } from "node:util";
import { getThreads, setBackend, setThreads, threadsUnavailable, wasmSupport } from "../mod.ts";
import { formatResult, runW1, runW2, runW3, runW4, runW5, runW6 } from "./_workloads.ts";
import { seqBatch, workloadW5, workloadW6 } from "./_seq_workload_data.ts";
import { workloadW4 } from "./_workload_data.ts";
import { sha16 } from "./_sha16.ts";

const USAGE =
  `Run one reference workload (../shared/bench/README.md) and print a RESULT line in the NumPy
peer's format, plus the heap growth over 1,000 further steps.

Usage: deno run --v8-flags=--expose-gc bench/workloads.ts [options]

Options:
  --workload W      W1, W2, W3, W4, W5 or W6 (default W1)
  --dtype D         f32 or f64 (default f32)
  --backend NAME    wasm, js, naive or blas (blas needs --allow-ffi --allow-read --allow-env;
                    OpenBLAS obeys OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which
                    bench:compare unsets for every OpenBLAS run, the peers' too)
  --threads N       threads for the large products (default: the available cores, capped at 8)
  --epochs N        W1 epochs (default 10001)
  --steps N         W3 steps (default 20), W4 steps (default 64), W5/W6 steps (default 32)
  --max-steps N     stop W2's epoch early and extrapolate (smoke tests)
  --heap-steps N    steps for the heap-growth report (default 1000; 0 for W3, 100 for W4, 32 for W5/W6)
  --help            show this help`;

const { values } = parseArgs({
  options: {
    help: { type: "boolean", default: false },
    workload: { type: "string", default: "W1" },
    dtype: { type: "string", default: "f32" },
    backend: { type: "string" },
    threads: { type: "string" },
    epochs: { type: "string" },
    steps: { type: "string" },
    "max-steps": { type: "string" },
    "heap-steps": { type: "string" },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}

const dtype = values.dtype === "f64" ? "float64" : "float32";
if (values.threads !== undefined) setThreads(Number(values.threads));
let blasCore = ""; // which kernels OpenBLAS runs, for the INFO line
if (values.backend === "blas") {
  const { blasBackend, blasInfo } = await import("../blas.ts");
  const blas = blasBackend();
  if (!blas) {
    console.error("workloads: OpenBLAS not found (apt-get install libopenblas0) or no --allow-ffi");
    Deno.exit(2);
  }
  setBackend(blas);
  blasCore = ` openblas_core=${blasInfo(blas)?.core ?? "unknown"}`;
} else if (values.backend) setBackend(values.backend);
const backend = values.backend ?? "default";
const number = (text: string | undefined) => (text === undefined ? undefined : Number(text));
const heapSteps = number(values["heap-steps"]) ??
  (values.workload === "W3"
    ? 0
    : values.workload === "W4"
    ? 100
    : ["W5", "W6"].includes(values.workload!)
    ? 32
    : 1000);
const options = {
  dtype,
  epochs: number(values.epochs),
  steps: number(values.steps),
  maxSteps: number(values["max-steps"]),
  heapSteps,
} as const;
const run = { W1: runW1, W2: runW2, W3: runW3, W4: runW4, W5: runW5, W6: runW6 }[
  values.workload ?? "W1"
];
if (!run) {
  console.error(`workloads: --workload must be W1, W2, W3, W4, W5 or W6, got ${values.workload}`);
  Deno.exit(2);
}
const peer = `chainrule-${backend}-${values.dtype}`;
const why = threadsUnavailable();
console.log(
  `INFO peer=${peer} deno=${Deno.version.deno} v8=${Deno.version.v8} wasm=${wasmSupport()} ` +
    `threads=${getThreads()}${blasCore}${why ? ` (threads unavailable: ${why})` : ""}`,
);
if (values.workload === "W4") {
  const w = workloadW4(); // the reference hashes: X 51cda8df2d3ca276, y 51548cd17f88300a, params b73e7dff02186bc4
  console.log(
    `DATA workload=W4 X=${await sha16(w.x.data)} y=${await sha16(w.y)} params=${await sha16(
      ...w.params,
    )}`,
  );
}
if (values.workload === "W5" || values.workload === "W6") {
  // The reference hashes: stream 1d6487ffa5de61c6, batch3 8f1e9de95eb0d46e, params W5
  // 73d38b4023041c39, W6 a8b9d25ad55e7fa5.
  const w = values.workload === "W5" ? workloadW5() : workloadW6();
  const { x, y } = seqBatch(w.stream, 3);
  console.log(
    `DATA workload=${w.name} stream=${await sha16(w.stream)} batch3=${await sha16(
      x,
      y,
    )} params=${await sha16(...w.params)}`,
  );
}
console.log(formatResult({ peer, threads: getThreads(), ...run(options) }));
setThreads(1); // the pool's workers exit now rather than after a second idle
