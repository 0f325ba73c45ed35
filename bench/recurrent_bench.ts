// LSTM and GRU at benchmark W6's shape (batch 32, T 64, inputSize 64, hidden 256, float32):
// a training forward and the backward after it (d(inputs) included, as W6's Embedding needs
// it), on one thread and on two, with the default backend.
//
//   deno bench bench/recurrent_bench.ts
//
// PyTorch 1.13's nn.LSTM / nn.GRU at the same shape, one thread, measured beside these on a
// loaded 2-core machine (load average 1–2.8): 93–99 ms (LSTM) and 59–87 ms (GRU) forward +
// backward; these ran at 125–137 ms (LSTM) and 90–112 ms (GRU) on one thread.

import { GRU, LSTM, Tensor } from "../mod.ts";
import { benchLayer } from "./_bench_layer.ts";

const [batch, T, inputSize, hidden] = [32, 64, 64, 256];
const x = Tensor.randn([batch, T, inputSize], { seed: 2, scale: 0.5 }); // [batch, T, inputSize]
const dvalues = Tensor.randn([batch, T, hidden], { seed: 3, scale: 0.01 }); // [batch, T, hidden]

for (const Kind of [LSTM, GRU]) {
  const layer = new Kind(inputSize, hidden, { seed: 1 });
  benchLayer(layer, x, dvalues, `${layer} W6 [${batch}, ${T}, ${inputSize}]`, [1, 2]);
}
