import type { AdamHyper, Backend } from "../core/backend.ts";
import type { FloatArray } from "../core/tensor.ts";

// Dimension letters as in core/backend.ts: C[m,n] = L[m,k]·R[k,n], k the reduction. The
// three products differ only in the strides at which L and R are read, so one kernel
// serves all three: L[i,p] = l[i·li + p·lp], R[p,j] = r[p·rp + j·rj], C row-major.

// Reduction block: a block of L's 4 rows and of R's 4 columns stays in L1 across tiles.
const KB = 256;

/**
 * C (=|+=) L·R, register-tiled 4×4: sixteen accumulators in locals, summed in JS numbers
 * (float64) and written once per block, with 4×1, 1×4 and 1×1 strips for the edges.
 */
function gemm(
  l: FloatArray,
  li: number,
  lp: number,
  r: FloatArray,
  rp: number,
  rj: number,
  c: FloatArray,
  m: number,
  n: number,
  k: number,
  accumulate: boolean,
): void {
  for (let p0 = 0; p0 < k; p0 += KB) {
    const p1 = Math.min(k, p0 + KB);
    const add = accumulate || p0 > 0;
    let i = 0;
    for (; i + 4 <= m; i += 4) {
      let j = 0;
      for (; j + 4 <= n; j += 4) tile4x4(l, li, lp, r, rp, rj, c, n, i, j, p0, p1, add);
      for (; j < n; j++) tile4x1(l, li, lp, r, rp, rj, c, n, i, j, p0, p1, add);
    }
    for (; i < m; i++) {
      let j = 0;
      for (; j + 4 <= n; j += 4) tile1x4(l, li, lp, r, rp, rj, c, n, i, j, p0, p1, add);
      for (; j < n; j++) {
        let sum = add ? c[i * n + j] : 0;
        for (let p = p0, lo = i * li + p0 * lp, ro = p0 * rp + j * rj; p < p1; p++) {
          sum += l[lo] * r[ro];
          lo += lp;
          ro += rp;
        }
        c[i * n + j] = sum;
      }
    }
  }
}

function tile4x4(
  l: FloatArray,
  li: number,
  lp: number,
  r: FloatArray,
  rp: number,
  rj: number,
  c: FloatArray,
  n: number,
  i: number,
  j: number,
  p0: number,
  p1: number,
  add: boolean,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  let lo = i * li + p0 * lp;
  let ro = p0 * rp + j * rj;
  const rj2 = 2 * rj, rj3 = 3 * rj, li2 = 2 * li, li3 = 3 * li;
  for (let p = p0; p < p1; p++) {
    const a0 = l[lo], a1 = l[lo + li], a2 = l[lo + li2], a3 = l[lo + li3];
    const b0 = r[ro], b1 = r[ro + rj], b2 = r[ro + rj2], b3 = r[ro + rj3];
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3;
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3;
    c20 += a2 * b0;
    c21 += a2 * b1;
    c22 += a2 * b2;
    c23 += a2 * b3;
    c30 += a3 * b0;
    c31 += a3 * b1;
    c32 += a3 * b2;
    c33 += a3 * b3;
    lo += lp;
    ro += rp;
  }
  let o = i * n + j;
  if (add) {
    c[o] += c00, c[o + 1] += c01, c[o + 2] += c02, c[o + 3] += c03, o += n;
    c[o] += c10, c[o + 1] += c11, c[o + 2] += c12, c[o + 3] += c13, o += n;
    c[o] += c20, c[o + 1] += c21, c[o + 2] += c22, c[o + 3] += c23, o += n;
    c[o] += c30, c[o + 1] += c31, c[o + 2] += c32, c[o + 3] += c33;
  } else {
    c[o] = c00, c[o + 1] = c01, c[o + 2] = c02, c[o + 3] = c03, o += n;
    c[o] = c10, c[o + 1] = c11, c[o + 2] = c12, c[o + 3] = c13, o += n;
    c[o] = c20, c[o + 1] = c21, c[o + 2] = c22, c[o + 3] = c23, o += n;
    c[o] = c30, c[o + 1] = c31, c[o + 2] = c32, c[o + 3] = c33;
  }
}

function tile4x1(
  l: FloatArray,
  li: number,
  lp: number,
  r: FloatArray,
  rp: number,
  rj: number,
  c: FloatArray,
  n: number,
  i: number,
  j: number,
  p0: number,
  p1: number,
  add: boolean,
): void {
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  let lo = i * li + p0 * lp;
  let ro = p0 * rp + j * rj;
  const li2 = 2 * li, li3 = 3 * li;
  for (let p = p0; p < p1; p++) {
    const b = r[ro];
    c0 += l[lo] * b;
    c1 += l[lo + li] * b;
    c2 += l[lo + li2] * b;
    c3 += l[lo + li3] * b;
    lo += lp;
    ro += rp;
  }
  const o = i * n + j;
  if (add) {
    c[o] += c0, c[o + n] += c1, c[o + 2 * n] += c2, c[o + 3 * n] += c3;
  } else {
    c[o] = c0, c[o + n] = c1, c[o + 2 * n] = c2, c[o + 3 * n] = c3;
  }
}

function tile1x4(
  l: FloatArray,
  li: number,
  lp: number,
  r: FloatArray,
  rp: number,
  rj: number,
  c: FloatArray,
  n: number,
  i: number,
  j: number,
  p0: number,
  p1: number,
  add: boolean,
): void {
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  let lo = i * li + p0 * lp;
  let ro = p0 * rp + j * rj;
  const rj2 = 2 * rj, rj3 = 3 * rj;
  for (let p = p0; p < p1; p++) {
    const a = l[lo];
    c0 += a * r[ro];
    c1 += a * r[ro + rj];
    c2 += a * r[ro + rj2];
    c3 += a * r[ro + rj3];
    lo += lp;
    ro += rp;
  }
  const o = i * n + j;
  if (add) {
    c[o] += c0, c[o + 1] += c1, c[o + 2] += c2, c[o + 3] += c3;
  } else {
    c[o] = c0, c[o + 1] = c1, c[o + 2] = c2, c[o + 3] = c3;
  }
}

/**
 * The pure-TypeScript backend: register-tiled, reduction-blocked loops that accumulate in
 * JS numbers. It serves any runtime without WebAssembly SIMD, the small products where
 * calling into wasm costs more than it saves, and users who pick it (its float64 sums run in
 * the book's order, without fused multiply-adds).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jsBackend } from "@chainrule/nn/plugin";
 *
 * const c = new Float64Array(4);
 * jsBackend.matmul(new Float64Array([1, 2, 3, 4]), new Float64Array([5, 6, 7, 8]), c, 2, 2, 2);
 * assert.deepEqual([...c], [19, 22, 43, 50]);
 * ```
 */
export const jsBackend: Backend = {
  name: "js",
  matmul(a, b, c, m, k, n, accumulate = false) {
    gemm(a, k, 1, b, n, 1, c, m, n, k, accumulate);
  },
  matmulTransA(a, b, c, m, k, n, accumulate = false) {
    // c[k,n]: L = aᵀ (L[p_out, i] = a[i·k + p_out]), R = b; the reduction runs over m.
    gemm(a, 1, k, b, n, 1, c, k, n, m, accumulate);
  },
  matmulTransB(a, b, c, m, k, n, accumulate = false) {
    // c[m,k]: L = a, R = bᵀ (R[j, p] = b[p·n + j]); the reduction runs over n.
    gemm(a, n, 1, b, 1, n, c, m, k, n, accumulate);
  },
  addBias(c, bias, m, n) {
    for (let i = 0, row = 0; i < m; i++, row += n) {
      for (let j = 0; j < n; j++) c[row + j] += bias[j];
    }
  },
  sumColumns(a, out, m, n, accumulate = false) {
    // Row by row in ascending order, as NumPy's `sum(axis=0)` adds, so float64 runs match it.
    if (!accumulate) out.fill(0);
    for (let i = 0, row = 0; i < m; i++, row += n) {
      for (let j = 0; j < n; j++) out[j] += a[row + j];
    }
  },
  relu(x, out) {
    // (v + |v|)/2 is max(v, 0) exactly, without the branch that random signs mispredict.
    for (let i = 0; i < x.length; i++) out[i] = (x[i] + Math.abs(x[i])) * 0.5;
  },
  reluBackward(x, dvalues, out) {
    for (let i = 0; i < x.length; i++) out[i] = x[i] > 0 ? dvalues[i] : 0;
  },
  adam: adamLoop,
};

/**
 * The book's Adam update as one loop (`Backend.adam`, and `Adam`'s own when a backend has
 * none). Not exported from mod.ts.
 */
export function adamLoop(
  value: FloatArray,
  grad: FloatArray,
  momentum: FloatArray,
  cache: FloatArray,
  hyper: AdamHyper,
): void {
  const { beta1, beta2, learningRate: lr, correction1, correction2, epsilon } = hyper;
  for (let i = 0; i < value.length; i++) {
    const g = grad[i];
    momentum[i] = beta1 * momentum[i] + (1 - beta1) * g;
    cache[i] = beta2 * cache[i] + (1 - beta2) * (g * g);
    value[i] += (-lr * (momentum[i] / correction1)) /
      (Math.sqrt(cache[i] / correction2) + epsilon);
  }
}
