import { Dense } from "../layers/dense.ts";
import { ReLU } from "../activations/relu.ts";
import assert from "node:assert/strict";
import {
  assertClose,
  compareLayer,
  fromGpu,
  gpuTest,
  randomTensor,
  relativeError,
  toGpu,
} from "./_gpu.ts";
import { gpuSumColumns } from "../backends/webgpu_ops.ts";

gpuTest("Dense and ReLU on the GPU equal the CPU, forward and backward", async (ctx, t) => {
  for (const [rows, inF, outF] of [[1, 1, 1], [5, 3, 7], [33, 17, 65], [64, 130, 9]]) {
    await t.step(`Dense ${rows}×${inF} → ${outF}`, async () => {
      const dense = new Dense(inF, outF, { seed: rows, biases: randomTensor([outF], 7).data });
      const errors = await compareLayer(
        ctx,
        dense,
        randomTensor([rows, inF], 1),
        randomTensor([rows, outF], 2),
      );
      assertClose(errors);
    });
  }
  await t.step("Dense with L1/L2 penalties, rank 3", async () => {
    const dense = new Dense(6, 4, { seed: 3, weightRegularizerL1: 0.01, biasRegularizerL2: 0.1 });
    assertClose(
      await compareLayer(ctx, dense, randomTensor([2, 3, 6], 4), randomTensor([2, 3, 4], 5)),
    );
  });
  await t.step("ReLU", async () => {
    assertClose(
      await compareLayer(ctx, new ReLU(), randomTensor([7, 11], 8), randomTensor([7, 11], 9)),
    );
  });
});

gpuTest("device errors become Errors naming WebGPU's message", async (ctx, t) => {
  await t.step("a buffer larger than the device allows", async () => {
    const huge = ctx.buffer({}, "huge", [2 ** 31]); // 8 GiB
    await assert.rejects(fromGpu(ctx, huge), /test: WebGPU failed: .+/);
  });
});

gpuTest("a lost device becomes an Error", async (ctx) => {
  const x = toGpu(ctx, randomTensor([2, 2], 1));
  ctx.device.destroy();
  await assert.rejects(fromGpu(ctx, x), /test: WebGPU (failed|readback failed)/);
});

gpuTest("gpuSumColumns is a tree reduction equal to the float64 sums", async (ctx, t) => {
  for (const [rows, cols] of [[1, 1], [17, 15], [300, 33], [2049, 65], [5, 1000]]) {
    await t.step(`${rows} × ${cols}`, async () => {
      const x = randomTensor([rows, cols], rows + cols);
      const start = randomTensor([cols], 3);
      const out = toGpu(ctx, start);
      gpuSumColumns(ctx, {}, "sum", toGpu(ctx, x), out, rows, cols, true);
      const [got] = await fromGpu(ctx, out);
      const expected = Array.from(start.data, (s, c) => {
        let sum = 0;
        for (let r = 0; r < rows; r++) sum += x.data[r * cols + c];
        return s + sum;
      });
      assert.ok(relativeError(got, expected) < 1e-6 * Math.sqrt(rows));
    });
  }
});
