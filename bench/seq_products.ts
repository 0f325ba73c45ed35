// µs per call and GFLOP/s of the float32 products of a W5 (tiny GPT) and a W6 (char LSTM)
// training step, at their shapes, on 1 and N threads: the thread counts alternate round by
// round, medians over the rounds.
//
//   deno run bench/seq_products.ts [--threads 2] [--rounds 5] [--filter W5] [--resident]
//
// --resident places the activations (every operand but the weights and their gradients) in
// the kernels' shared memory where they are large enough, as the layers' training buffers.

import { parseArgs } from "node:util";
import { getThreads, RandomState, setThreads } from "../mod.ts";
import { wasmBackend } from "../plugin.ts";

const { values: args } = parseArgs({
  options: {
    threads: { type: "string", default: String(Math.max(2, getThreads())) },
    rounds: { type: "string", default: "5" },
    filter: { type: "string", default: "" },
    ms: { type: "string", default: "40" },
    resident: { type: "boolean", default: false },
  },
});
const threads = Number(args.threads), rounds = Number(args.rounds);
const budget = Number(args.ms); // ms of calls per shape and round

type Kind = "bias" | "matmul" | "transA" | "transB" | "right" | "rightT";
// [label, kind, m, k, n, calls in a step (for the share)] with m, k, n as the Backend's
// methods take them; "right"/"rightT": prepareRight(b, k, n[, true]) then product(a, c, m).
const ALL: [string, Kind, number, number, number, number][] = [
  ["W5 qkv fwd 2048×128×384", "bias", 2048, 128, 384, 2],
  ["W5 out fwd 2048×128×128", "bias", 2048, 128, 128, 2],
  ["W5 mlp1 fwd 2048×128×512", "bias", 2048, 128, 512, 2],
  ["W5 mlp2 fwd 2048×512×128", "bias", 2048, 512, 128, 2],
  ["W5 head fwd 2048×128×65", "bias", 2048, 128, 65, 1],
  ["W5 qkv dW 2048×128×384", "transA", 2048, 128, 384, 2],
  ["W5 out dW 2048×128×128", "transA", 2048, 128, 128, 2],
  ["W5 mlp1 dW 2048×128×512", "transA", 2048, 128, 512, 2],
  ["W5 mlp2 dW 2048×512×128", "transA", 2048, 512, 128, 2],
  ["W5 head dW 2048×128×65", "transA", 2048, 128, 65, 1],
  ["W5 qkv dX 2048×128×384", "transB", 2048, 128, 384, 2],
  ["W5 out dX 2048×128×128", "transB", 2048, 128, 128, 2],
  ["W5 mlp1 dX 2048×128×512", "transB", 2048, 128, 512, 2],
  ["W5 mlp2 dX 2048×512×128", "transB", 2048, 512, 128, 2],
  ["W5 head dX 2048×128×65", "transB", 2048, 128, 65, 1],
  ["W5 head q·kᵀ 64×64×32", "transB", 64, 64, 32, 512],
  ["W5 head p·v 64×64×32", "matmul", 64, 64, 32, 512],
  ["W5 head pᵀ·d 64×64×32", "transA", 64, 64, 32, 512],
  ["W6 x·W 2048×64×1024", "bias", 2048, 64, 1024, 1],
  ["W6 h·U 32×256×1024", "right", 32, 256, 1024, 64],
  ["W6 dg·Uᵀ 32×1024×256", "rightT", 32, 1024, 256, 63],
  ["W6 dW_hh 2016×256×1024", "transA", 2016, 256, 1024, 1],
  ["W6 dW_ih 2048×64×1024", "transA", 2048, 64, 1024, 1],
  ["W6 dX 2048×64×1024", "transB", 2048, 64, 1024, 1],
  ["W6 head fwd 2048×256×65", "bias", 2048, 256, 65, 1],
  ["W6 head dW 2048×256×65", "transA", 2048, 256, 65, 1],
  ["W6 head dX 2048×256×65", "transB", 2048, 256, 65, 1],
];
const SHAPES = ALL.filter(([label]) => label.includes(args.filter));

const random = new RandomState(1);
const fill = (length: number) => Float32Array.from({ length }, () => random.random() - 0.5);
// An activation: resident with --resident (a smaller one as the view of a larger buffer,
// as a layer's per-step or per-head views are).
const act = (length: number) => {
  const values = fill(length);
  if (!args.resident) return values;
  const block = wasmBackend.allocate!("float32", Math.max(length, 1 << 16))!;
  block.set(values);
  return block.subarray(0, length);
};

// One call of a shape, on operands made once.
function caller(kind: Kind, m: number, k: number, n: number): () => void {
  const be = wasmBackend;
  switch (kind) {
    case "bias": {
      const [a, b, bias, c] = [act(m * k), fill(k * n), fill(n), act(m * n)];
      return () => be.matmulBias!(a, b, bias, c, m, k, n);
    }
    case "matmul": {
      const [a, b, c] = [act(m * k), act(k * n), act(m * n)];
      return () => be.matmul(a, b, c, m, k, n);
    }
    case "transA": { // c[k,n] += a[m,k]ᵀ·b[m,n], as the layers' dW
      const [a, b, c] = [act(m * k), act(m * n), fill(k * n)];
      return () => be.matmulTransA(a, b, c, m, k, n, m > 64);
    }
    case "transB": { // c[m,k] = a[m,n]·b[k,n]ᵀ
      const [a, b, c] = [act(m * n), fill(k * n), act(m * k)];
      return () => be.matmulTransB(a, b, c, m, k, n);
    }
    case "right":
    case "rightT": { // a fresh prepareRight per 64 calls, as an LSTM pass
      const transposed = kind === "rightT";
      const b = fill(k * n), a = act(m * k), c = act(m * n);
      let product = be.prepareRight!(b, k, n, transposed), calls = 0;
      return () => {
        if (++calls % 64 === 0) product = be.prepareRight!(b, k, n, transposed);
        product(a, c, m);
      };
    }
  }
}

const calls = SHAPES.map(([, kind, m, k, n]) => caller(kind, m, k, n));

// µs per call over about `budget` ms of calls.
function time(call: () => void): number {
  for (let i = 0; i < 2; i++) call();
  let count = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < budget || count < 3) {
    call();
    count++;
    t = performance.now();
  }
  return (t - t0) / count * 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const counts = [1, threads];
const times = counts.map(() => SHAPES.map(() => [] as number[]));
for (let round = 0; round < rounds; round++) {
  counts.forEach((t, ti) => {
    setThreads(t);
    calls.forEach((call, s) => times[ti][s].push(time(call)));
  });
}
setThreads(getThreads());

const pad = (s: string, w: number) => s.padStart(w);
console.log(
  `| shape                        | 1 thread µs | GFLOP/s | ${threads} threads µs | GFLOP/s | ms per step (1 / ${threads}) |`,
);
console.log(
  "| ---------------------------- | ----------: | ------: | -----------: | ------: | ----------------: |",
);
const totals = counts.map(() => ({ W5: 0, W6: 0 }));
SHAPES.forEach(([label, , m, k, n, perStep], s) => {
  const flop = 2 * m * k * n;
  const cells = counts.map((_, ti) => {
    const us = median(times[ti][s]);
    totals[ti][label.slice(0, 2) as "W5" | "W6"] += us * perStep / 1000;
    return `${pad(us.toFixed(1), 11)} | ${pad((flop / us / 1000).toFixed(1), 7)}`;
  });
  const step = counts.map((_, ti) => (median(times[ti][s]) * perStep / 1000).toFixed(2));
  console.log(`| ${label.padEnd(28)} | ${cells.join(" | ")} | ${pad(step.join(" / "), 17)} |`);
});
for (const w of ["W5", "W6"] as const) {
  console.log(
    `${w}: products ${
      totals.map((t) => t[w].toFixed(1)).join(" / ")
    } ms per step (1 / ${threads} threads)`,
  );
}
