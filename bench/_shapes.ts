// The product shapes benchmarked by kernels_bench.ts and gflops.ts.

import { type Backend, RandomState } from "../mod.ts";
import { jsBackend, naiveBackend, wasmBackend } from "../plugin.ts";

export type Kind = "matmul" | "matmulTransA" | "matmulTransB";
export const SHAPES: [string, Kind, number, number, number][] = [
  ["256³", "matmul", 256, 256, 256],
  ["512³", "matmul", 512, 512, 512],
  ["1024³", "matmul", 1024, 1024, 1024],
  ["256³", "matmulTransA", 256, 256, 256],
  ["1024³", "matmulTransA", 1024, 1024, 1024],
  ["256³", "matmulTransB", 256, 256, 256],
  ["1024³", "matmulTransB", 1024, 1024, 1024],
  // W1 (spiral): forward of both layers, dweights of both, dinputs of the second.
  ["W1 fwd 300×2×64", "matmul", 300, 2, 64],
  ["W1 fwd 300×64×3", "matmul", 300, 64, 3],
  ["W1 dW 300×2×64", "matmulTransA", 300, 2, 64],
  ["W1 dW 300×64×3", "matmulTransA", 300, 64, 3],
  ["W1 dX 300×64×3", "matmulTransB", 300, 64, 3],
  // W2 (MNIST-shaped, batch 128).
  ["W2 fwd 128×784×128", "matmul", 128, 784, 128],
  ["W2 dW 128×784×128", "matmulTransA", 128, 784, 128],
  ["W2 fwd 128×128×10", "matmul", 128, 128, 10],
  ["W2 dX 128×128×10", "matmulTransB", 128, 128, 10],
  // W3 (wide layers, batch 2048).
  ["W3 fwd 2048×1024×1024", "matmul", 2048, 1024, 1024],
  ["W3 dW 2048×1024×1024", "matmulTransA", 2048, 1024, 1024],
  ["W3 dX 2048×1024×1024", "matmulTransB", 2048, 1024, 1024],
];

/** Operands for one shape: a, b and c, random in [−0.5, 0.5). */
export function operands(kind: Kind, m: number, k: number, n: number): Float32Array[] {
  const sizes = kind === "matmul"
    ? [m * k, k * n, m * n]
    : kind === "matmulTransA"
    ? [m * k, m * n, k * n]
    : [m * n, k * n, m * k];
  const random = new RandomState(1);
  return sizes.map((size) => Float32Array.from({ length: size }, () => random.random() - 0.5));
}

/** The backends worth timing at m·k·n multiply-adds (naive and js would take minutes). */
export function backendsFor(mkn: number, extra: Backend[]): Backend[] {
  const all = [naiveBackend, jsBackend, wasmBackend, ...extra];
  return all.filter((b) => mkn <= 3e8 || (b !== naiveBackend && (mkn <= 1.1e9 || b !== jsBackend)));
}
