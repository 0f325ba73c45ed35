// Per-call times of every backend operation of one W2 training step (784 → 128 → 10, batch
// 128, float32), best of ten runs, per backend: where a W2 step's time goes outside the layers.
//
//   deno run --allow-ffi bench/w2_ops.ts     # blas rows need --allow-ffi and libopenblas0

import type { Backend } from "../mod.ts";
import { wasmBackend } from "../plugin.ts";
import { blasBackend } from "../blas.ts";

function time(label: string, fn: () => void, reps = 2000): number {
  for (let i = 0; i < 200; i++) fn();
  let us = Infinity;
  for (let r = 0; r < 10; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps / 10; i++) fn();
    us = Math.min(us, (performance.now() - t0) / (reps / 10) * 1000);
  }
  console.log(label.padEnd(36), us.toFixed(1).padStart(7), "µs");
  return us;
}
const r = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const B = 128, I = 784, H = 128, O = 10;
const x = r(B * I), w1 = r(I * H), b1 = r(H), h = r(B * H), a = r(B * H), w2 = r(H * O);
const b2 = r(O), o = r(B * O), dv = r(B * O), g1 = r(I * H), gb1 = r(H), g2 = r(H * O);
const gb2 = r(O), dh = r(B * H);
const backends: Backend[] = [wasmBackend];
const blas = blasBackend();
if (blas) backends.push(blas);
for (const be of backends) {
  let total = 0;
  const p = be.name;
  // c = a·w + bias, as Dense does it with this backend
  const matmulBias = (
    a: Float32Array,
    w: Float32Array,
    bias: Float32Array,
    c: Float32Array,
    m: number,
    k: number,
    n: number,
  ) => {
    if (be.matmulBias) return be.matmulBias(a, w, bias, c, m, k, n);
    be.matmul(a, w, c, m, k, n);
    be.addBias(c, bias, m, n);
  };
  const relu = (x: Float32Array, out: Float32Array) =>
    be.relu ? be.relu(x, out) : wasmBackend.relu!(x, out);
  const reluBackward = (x: Float32Array, d: Float32Array, out: Float32Array) =>
    be.reluBackward ? be.reluBackward(x, d, out) : wasmBackend.reluBackward!(x, d, out);
  total += time(`${p} fwd1 128x784x128 +bias`, () => matmulBias(x, w1, b1, h, B, I, H));
  total += time(`${p} relu`, () => relu(h, a));
  total += time(`${p} fwd2 128x128x10 +bias`, () => matmulBias(a, w2, b2, o, B, H, O));
  total += time(`${p} dW2 T_A`, () => be.matmulTransA(a, dv, g2, B, H, O, true));
  total += time(`${p} db2`, () => be.sumColumns(dv, gb2, B, O, true));
  total += time(`${p} dX2 T_B`, () => be.matmulTransB(dv, w2, dh, B, H, O));
  total += time(`${p} reluB`, () => reluBackward(h, dh, dh));
  total += time(`${p} dW1 T_A`, () => be.matmulTransA(x, dh, g1, B, I, H, true));
  total += time(`${p} db1`, () => be.sumColumns(dh, gb1, B, H, true));
  console.log(`${p} total`.padEnd(36), total.toFixed(1).padStart(7), "µs");
}
