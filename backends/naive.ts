import type { Backend } from "../core/backend.ts";

/**
 * The reference backend: plain, obviously correct loops in TypeScript.
 *
 * Every faster backend is tested against it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { naiveBackend } from "@chainrule/nn/plugin";
 *
 * const c = new Float64Array(1);
 * naiveBackend.matmul(new Float64Array([1, 2]), new Float64Array([3, 4]), c, 1, 2, 1);
 * assert.equal(c[0], 11);
 * ```
 */
export const naiveBackend: Backend = {
  name: "naive",
  matmul(a, b, c, m, k, n, accumulate = false) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = accumulate ? c[i * n + j] : 0;
        for (let p = 0; p < k; p++) sum += a[i * k + p] * b[p * n + j];
        c[i * n + j] = sum;
      }
    }
  },
  matmulTransA(a, b, c, m, k, n, accumulate = false) {
    for (let p = 0; p < k; p++) {
      for (let j = 0; j < n; j++) {
        let sum = accumulate ? c[p * n + j] : 0;
        for (let i = 0; i < m; i++) sum += a[i * k + p] * b[i * n + j];
        c[p * n + j] = sum;
      }
    }
  },
  matmulTransB(a, b, c, m, k, n, accumulate = false) {
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        let sum = accumulate ? c[i * k + p] : 0;
        for (let j = 0; j < n; j++) sum += a[i * n + j] * b[p * n + j];
        c[i * k + p] = sum;
      }
    }
  },
  addBias(c, bias, m, n) {
    for (let i = 0; i < m; i++) {
      const row = i * n;
      for (let j = 0; j < n; j++) c[row + j] += bias[j];
    }
  },
  sumColumns(a, out, m, n, accumulate = false) {
    for (let j = 0; j < n; j++) {
      let sum = accumulate ? out[j] : 0;
      for (let i = 0; i < m; i++) sum += a[i * n + j];
      out[j] = sum;
    }
  },
};
