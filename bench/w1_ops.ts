// Per-call times of every backend operation of one W1 training step (the spiral's shapes,
// 300×2 → 64 → 3), best of ten batches: where an epoch's time goes, per backend and dtype.
//
//   deno run bench/w1_ops.ts [f32|f64]
//
// Run one dtype per process for fair `js` figures: V8 slows the js loops down once they have
// seen both Float32Array and Float64Array.

import { jsBackend, wasmBackend } from "../plugin.ts";
type A = Float32Array | Float64Array;
function time(label: string, fn: () => void, reps = 20000): void {
  for (let i = 0; i < 2000; i++) fn();
  let us = Infinity;
  for (let r = 0; r < 10; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps / 10; i++) fn();
    us = Math.min(us, (performance.now() - t0) / (reps / 10) * 1000);
  }
  console.log(label.padEnd(40), us.toFixed(2), "µs");
}
for (const [name, Ctor] of [["f64", Float64Array], ["f32", Float32Array]] as const) {
  if (Deno.args[0] && Deno.args[0] !== name) continue;
  const r = (n: number) => {
    const a = new Ctor(n);
    for (let i = 0; i < n; i++) a[i] = Math.random() - 0.5;
    return a as A;
  };
  const x = r(600),
    w1 = r(128),
    h = r(19200),
    w2 = r(192),
    o = r(900),
    dv = r(900),
    g1 = r(128),
    g2 = r(192),
    dh = r(19200),
    b1 = r(64),
    b2 = r(3);
  for (const be of [jsBackend, wasmBackend]) {
    const p = `${name} ${be.name}`;
    time(`${p} fwd1 300x2x64`, () => be.matmul(x, w1, h, 300, 2, 64));
    time(`${p} bias1`, () => be.addBias(h, b1, 300, 64));
    time(`${p} relu`, () => be.relu!(h, dh));
    time(`${p} fwd2 300x64x3`, () => be.matmul(h, w2, o, 300, 64, 3));
    time(`${p} bias2`, () => be.addBias(o, b2, 300, 3));
    time(`${p} dW2 T_A`, () => be.matmulTransA(h, dv, g2, 300, 64, 3, true));
    time(`${p} db2`, () => be.sumColumns(dv, b2, 300, 3, true));
    time(`${p} dX2 T_B`, () => be.matmulTransB(dv, w2, dh, 300, 64, 3));
    time(`${p} reluB`, () => be.reluBackward!(h, dh, dh));
    time(`${p} dW1 T_A`, () => be.matmulTransA(x, dh, g1, 300, 2, 64, true));
    time(`${p} db1`, () => be.sumColumns(dh, b1, 300, 64, true));
  }
}
