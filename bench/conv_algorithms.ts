// Conv2D's algorithms against each other: a training forward and backward (input gradient
// included) of W4's two convolutions (the Fashion-MNIST CNN's, examples/fashion_mnist_cnn.ts)
// and a few wider 3×3 layers, by im2col and by Winograd's F(2×2, 3×3), float32, batch 64.
// The two alternate round by round (the machine is shared and noisy); the medians are
// printed with their ratio, and the float32 error of each against the float64 convolution.
// The inputs and dvalues lie where a training step's would: in the backend's memory (the
// neighbouring layers' training buffers), when it offers to place them.
//
//   deno run --allow-sys=loadavg bench/conv_algorithms.ts [--rounds 15] [--threads N] [--backend wasm|js] [--js-transforms]

import { parseArgs } from "node:util";
import {
  type Backend,
  Conv2D,
  type ConvAlgorithm,
  getBackend,
  setBackend,
  setThreads,
  Tensor,
} from "../mod.ts";

const USAGE = `Time Conv2D's im2col and Winograd algorithms on W4's layers and wider 3×3 ones.

Usage: deno run --allow-sys=loadavg bench/conv_algorithms.ts [options]

Options:
  --rounds N      timed rounds of each algorithm, alternating, after 3 warm-up ones (default 15)
  --threads N     threads of the products (default: the available cores)
  --backend NAME  wasm (default) or js
  --js-transforms Winograd's transforms in JavaScript on the calling thread (the wasm
                  backend's SIMD transforms hidden: the figures before them)
  --help          show this help`;

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "15" },
    threads: { type: "string" },
    backend: { type: "string" },
    "js-transforms": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
if (values.backend) setBackend(values.backend);
if (values["js-transforms"]) {
  const hidden = { winogradInputs: undefined, winogradOutputs: undefined };
  setBackend({ ...getBackend(), ...hidden } as Backend);
}
if (values.threads) setThreads(Number(values.threads));
const rounds = Number(values.rounds);

// [what, batch, in, out, size]: 3×3 kernels, padding 1.
const SHAPES: [string, number, number, number, number][] = [
  ["W4 conv1", 64, 1, 32, 28],
  ["W4 conv2", 64, 32, 64, 14],
  ["64→64 14×14", 64, 64, 64, 14],
  ["128→128 7×7", 64, 128, 128, 7],
  ["16→16 28×28", 64, 16, 16, 28],
];
const ALGORITHMS: ConvAlgorithm[] = ["im2col", "winograd"];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

// Largest |a − b| / max|b| over the elements.
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return worst / scale;
}

// `t` copied into the backend's memory where it places training buffers, else `t`.
function placed(t: Tensor): Tensor {
  const data = getBackend().allocate?.("float32", t.size);
  if (!data) return t;
  data.set(t.data);
  return new Tensor(data, t.shape);
}

console.log(
  `threads ${values.threads ?? "default"}, backend ${values.backend ?? "wasm"}` +
    (values["js-transforms"] ? ", Winograd's transforms in JavaScript" : ""),
);
console.log(
  "layer           im2col ms  winograd ms  ratio   f32 error fwd (i2c/wino)  dx (i2c/wino)" +
    "            dw (i2c/wino)",
);
for (const [what, batch, inC, outC, size] of SHAPES) {
  const x = placed(Tensor.randn([batch, inC, size, size], { seed: 1 }));
  const d = placed(Tensor.randn([batch, outC, size, size], { seed: 2 }));
  const layers = ALGORITHMS.map((algorithm) =>
    new Conv2D(inC, outC, 3, { padding: 1, seed: 3, algorithm })
  );
  const times: number[][] = ALGORITHMS.map(() => []);
  for (let r = 0; r < rounds + 3; r++) {
    layers.forEach((conv, a) => {
      const t0 = performance.now();
      conv.forward(x, { training: true });
      conv.backward(d);
      if (r >= 3) times[a].push(performance.now() - t0);
    });
  }
  // Float32 error against the float64 convolution of the same (float32) values.
  const x64 = Tensor.from(x.data, { dtype: "float64" }).reshape(x.shape);
  const d64 = Tensor.from(d.data, { dtype: "float64" }).reshape(d.shape);
  const exact = new Conv2D(inC, outC, 3, {
    padding: 1,
    dtype: "float64",
    weights: layers[0].weights.value.data,
    algorithm: "im2col",
  });
  const want = [exact.forward(x64).data, exact.backward(d64).data, exact.weights.grad.data];
  const errors = layers.map((conv) => {
    conv.weights.grad.data.fill(0);
    const y = conv.forward(x, { training: true }).data, dx = conv.backward(d).data;
    const dw = conv.weights.grad.data;
    return [relativeError(y, want[0]), relativeError(dx, want[1]), relativeError(dw, want[2])];
  });
  const [i2c, wino] = times.map(median);
  const e = (v: number) => v.toExponential(1);
  console.log(
    `${what.padEnd(15)} ${i2c.toFixed(2).padStart(9)}  ${wino.toFixed(2).padStart(11)}  ${
      (wino / i2c).toFixed(2).padStart(5)
    }   ${e(errors[0][0])} / ${e(errors[1][0])}         ${e(errors[0][1])} / ${e(errors[1][1])}` +
      `        ${e(errors[0][2])} / ${e(errors[1][2])}`,
  );
}
