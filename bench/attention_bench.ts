// MultiHeadAttention at benchmark W5's shape (batch 32, T 64, dim 128, 4 heads, causal,
// float32): a training forward and the backward after it, on one thread and on the default
// count, with the default backend.
//
//   deno bench bench/attention_bench.ts
//
// PyTorch 1.13's nn.MultiheadAttention, the same shape and mask, one thread, on the machine
// these were first measured on: 13.3 ms forward + backward (4.8 ms forward).

import { getThreads, MultiHeadAttention, Tensor } from "../mod.ts";
import { benchLayer } from "./_bench_layer.ts";

const [batch, T, dim, heads] = [32, 64, 128, 4];
const layer = new MultiHeadAttention(dim, heads, { causal: true, seed: 1 });
const x = Tensor.randn([batch, T, dim], { seed: 2 }); // [batch, T, dim]
const dvalues = Tensor.randn([batch, T, dim], { seed: 3 }); // [batch, T, dim]
const group = `MultiHeadAttention W5 [${batch}, ${T}, ${dim}], ${heads} heads, causal`;
benchLayer(layer, x, dvalues, group, new Set([1, getThreads()]));
