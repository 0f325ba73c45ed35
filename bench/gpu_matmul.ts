// GFLOP/s of gpuMatmul's tiled kernel against the naive one, on n×n×n products, for
// c = a·b and the transposed variants backward uses (aᵀ·b, a·bᵀ):
//
//   deno run -A bench/gpu_matmul.ts [--sizes 256,512,1024,2048] [--repeats 10]
//     [--variants ab,aTb,abT] [--tile-k 16,32] [--no-naive]
//
// Each row times `repeats` back-to-back products in one submission (after one untimed
// product that compiles the pipelines), waiting with queue.onSubmittedWorkDone(); the
// median of `rounds` such timings is reported. GFLOP/s = 2·n³ / seconds per product.
import { parseArgs } from "node:util";
import { planTiledMatmul } from "../backends/_webgpu_matmul.ts";
import { openWebGpu, type WebGpuContext } from "../backends/webgpu.ts";
import { gpuMatmulNaive, kernel } from "../backends/webgpu_ops.ts";
import type { GpuTensor } from "../core/gpu.ts";

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string", default: "256,512,1024,2048" },
    repeats: { type: "string", default: "10" },
    rounds: { type: "string", default: "3" },
    variants: { type: "string", default: "ab,aTb,abT" },
    "tile-k": { type: "string", default: "16" },
    "no-naive": { type: "boolean", default: false },
  },
});
const sizes = args.sizes.split(",").map(Number);
const repeats = Number(args.repeats), rounds = Number(args.rounds);
const tileKs = args["tile-k"].split(",").map(Number);
const VARIANTS: Record<string, { transA: boolean; transB: boolean }> = {
  ab: { transA: false, transB: false },
  aTb: { transA: true, transB: false },
  abT: { transA: false, transB: true },
  aTbT: { transA: true, transB: true },
};
const variants = args.variants.split(",");
for (const v of variants) {
  if (!VARIANTS[v]) throw new RangeError(`--variants: unknown "${v}" (ab, aTb, abT, aTbT)`);
}

const ctx = await openWebGpu("bench/gpu_matmul");
const info = ctx.device.adapterInfo;
console.log(
  `adapter: ${info.description || info.device || "?"} (vendor ${info.vendor}` +
    `${info.architecture ? `, ${info.architecture}` : ""})`,
);
console.log(`repeats ${repeats}, rounds ${rounds} (median)`);
console.log("| n | product | kernel | ms / product | GFLOP/s |");
console.log("| ---: | --- | --- | ---: | ---: |");

type Product = (a: GpuTensor, b: GpuTensor, c: GpuTensor) => void;

// Median seconds per product of `repeats` back-to-back products.
async function time(
  ctx: WebGpuContext,
  product: Product,
  a: GpuTensor,
  b: GpuTensor,
  c: GpuTensor,
) {
  product(a, b, c); // compiles the pipeline
  ctx.submit();
  await ctx.device.queue.onSubmittedWorkDone();
  ctx.check("bench/gpu_matmul");
  const seconds: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    for (let i = 0; i < repeats; i++) product(a, b, c);
    ctx.submit();
    await ctx.device.queue.onSubmittedWorkDone();
    seconds.push((performance.now() - start) / 1000 / repeats);
  }
  ctx.check("bench/gpu_matmul");
  seconds.sort((x, y) => x - y);
  return seconds[seconds.length >> 1];
}

const owner = {};
for (const n of sizes) {
  const fill = (seed: number) => {
    const data = new Float32Array(n * n);
    let s = seed;
    for (let i = 0; i < data.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      data[i] = s / 2 ** 31 - 1;
    }
    return ctx.upload(data, [n, n], "float32");
  };
  const [a, b, c] = [fill(1), fill(2), fill(3)];
  for (const name of variants) {
    const { transA, transB } = VARIANTS[name];
    const kernels: [string, Product][] = tileKs.map((tileK) => [
      `tiled 64×64×${tileK}`,
      (a, b, c) => {
        const plan = planTiledMatmul({ a, b, c, m: n, k: n, n, transA, transB, tileK })!;
        const { label, code, tensors, uniforms, workgroups } = plan;
        ctx.run(owner, `tiled ${tileK}`, kernel(label, code), tensors, uniforms, workgroups);
      },
    ]);
    if (!args["no-naive"]) {
      kernels.push(["naive", (a, b, c) => {
        gpuMatmulNaive(ctx, owner, "naive", a, b, c, n, n, n, { transA, transB });
      }]);
    }
    for (const [label, product] of kernels) {
      const seconds = await time(ctx, product, a, b, c);
      const gflops = (2 * n ** 3) / seconds / 1e9;
      console.log(
        `| ${n} | ${name} | ${label} | ${(seconds * 1e3).toFixed(3)} | ${gflops.toFixed(1)} |`,
      );
    }
  }
}
await ctx.close();
