// MultiHeadAttention at benchmark W5's shape (batch 32, T 64, dim 128, 4 heads, causal,
// float32): a training forward and the backward after it, on one thread and on the default
// count, with the default backend.
//
//   deno bench bench/attention_bench.ts
//
// PyTorch 1.13's nn.MultiheadAttention, the same shape and mask, one thread, on the machine
// these were first measured on: 13.3 ms forward + backward (4.8 ms forward).

import { getBackend, getThreads, MultiHeadAttention, setThreads, Tensor } from "../mod.ts";

const [batch, T, dim, heads] = [32, 64, 128, 4];
const layer = new MultiHeadAttention(dim, heads, { causal: true, seed: 1 });
const x = Tensor.randn([batch, T, dim], { seed: 2 }); // [batch, T, dim]
const dvalues = Tensor.randn([batch, T, dim], { seed: 3 }); // [batch, T, dim]
const defaultThreads = getThreads();
const group = `MultiHeadAttention W5 [${batch}, ${T}, ${dim}], ${heads} heads, causal`;

for (const threads of new Set([1, defaultThreads])) {
  const on = `${threads} thread${threads === 1 ? "" : "s"}, ${getBackend().name}`;
  Deno.bench({
    name: `forward + backward, ${on}`,
    group,
    baseline: threads === 1,
    fn(b) {
      setThreads(threads);
      b.start();
      layer.forward(x, { training: true });
      layer.backward(dvalues);
      b.end();
    },
  });
  Deno.bench({
    name: `forward (training), ${on}`,
    group,
    fn(b) {
      setThreads(threads);
      b.start();
      layer.forward(x, { training: true });
      b.end();
    },
  });
}
