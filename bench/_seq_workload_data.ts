// The sequence workloads W5 (a tiny GPT) and W6 (a char LSTM) of ../shared/bench/README.md:
// the token stream, the batches and the initial weights bit for bit as data.py/data.mjs make
// them, and the chainrule models that hold those weights.
import { GELU } from "../activations/gelu.ts";
import { RandomState } from "../core/random.ts";
import type { DType } from "../core/tensor.ts";
import type { Layer } from "../core/layer.ts";
import { Tensor } from "../core/tensor.ts";
import { initializers } from "../initializers/initializers.ts";
import { Dense } from "../layers/dense.ts";
import { Embedding } from "../layers/embedding.ts";
import { LayerNorm } from "../layers/layer_norm.ts";
import { LSTM } from "../layers/lstm.ts";
import { MultiHeadAttention } from "../layers/multi_head_attention.ts";
import { PositionalEmbedding } from "../layers/positional_embedding.ts";
import { Residual } from "../layers/residual.ts";
import { Sequential } from "../models/sequential.ts";

/** The stream and batch sizes both workloads share. */
export const SEQ = { V: 65, T: 64, B: 32, n: 65536 } as const;
/** W5's sizes: width, heads, blocks, MLP width. */
export const W5_DIMS = { d: 128, heads: 4, blocks: 2, mlp: 512 } as const;
/** W6's sizes: embedding width, LSTM hidden size. */
export const W6_DIMS = { E: 64, H: 256 } as const;

/** A sequence workload: the stream and the initial params in data.py's order. */
export interface SeqWorkload {
  /** `"W5"` or `"W6"`. */
  name: string;
  /** The token stream `[n]`. */
  stream: Int32Array;
  /** Initial params, float32, matrices `[in, out]`. */
  params: Float32Array[];
}

/** The token stream: a successor table followed 3 times in 4, else a uniform token. */
export function tokenStream(n: number = SEQ.n, vocabulary: number = SEQ.V): Int32Array {
  const random = new RandomState(10);
  const table = new Int32Array(vocabulary);
  for (let i = 0; i < vocabulary; i++) table[i] = Math.floor(random.random() * vocabulary);
  const stream = new Int32Array(n);
  for (let i = 1; i < n; i++) {
    const u1 = random.random(), u2 = random.random();
    stream[i] = u1 < 0.75 ? table[stream[i - 1]] : Math.floor(u2 * vocabulary);
  }
  return stream;
}

/**
 * Step `step`'s batch: ids `x` and next ids `y`, both `[batch, T]` row-major; sequence `b`
 * starts at `((step·batch + b)·T) mod (n − T − 1)`.
 */
export function seqBatch(
  stream: Int32Array,
  step: number,
  batch: number = SEQ.B,
  T: number = SEQ.T,
): { x: Int32Array; y: Int32Array } {
  const n = stream.length;
  const x = new Int32Array(batch * T), y = new Int32Array(batch * T);
  for (let b = 0; b < batch; b++) {
    const p = ((step * batch + b) * T) % (n - T - 1);
    x.set(stream.subarray(p, p + T), b * T);
    y.set(stream.subarray(p + 1, p + T + 1), b * T);
  }
  return { x, y };
}

function small(random: RandomState, count: number, a: number): Float32Array {
  const w = new Float32Array(count);
  for (let i = 0; i < count; i++) w[i] = (2 * random.random() - 1) * a;
  return w;
}

function glorot(random: RandomState, fanIn: number, fanOut: number): Float32Array {
  const values = new Float64Array(fanIn * fanOut);
  initializers.glorot(values, fanIn, fanOut, random);
  return Float32Array.from(values);
}

const ones = (n: number) => new Float32Array(n).fill(1);

/** W5's stream and tiny-GPT params (reference hash `73d38b4023041c39`). */
export function workloadW5(): SeqWorkload {
  const { V, T } = SEQ, { d, blocks, mlp } = W5_DIMS;
  const random = new RandomState(11);
  const params = [small(random, V * d, 0.05), small(random, T * d, 0.05)];
  for (let b = 0; b < blocks; b++) {
    params.push(
      ones(d),
      new Float32Array(d),
      glorot(random, d, 3 * d),
      new Float32Array(3 * d),
      glorot(random, d, d),
      new Float32Array(d),
      ones(d),
      new Float32Array(d),
      glorot(random, d, mlp),
      new Float32Array(mlp),
      glorot(random, mlp, d),
      new Float32Array(d),
    );
  }
  params.push(ones(d), new Float32Array(d), glorot(random, d, V), new Float32Array(V));
  return { name: "W5", stream: tokenStream(), params };
}

/** W6's stream and char-LSTM params (reference hash `a8b9d25ad55e7fa5`). */
export function workloadW6(): SeqWorkload {
  const { V } = SEQ, { E, H } = W6_DIMS;
  const random = new RandomState(12);
  const params = [
    small(random, V * E, 0.1),
    glorot(random, E, 4 * H),
    glorot(random, H, 4 * H),
    new Float32Array(4 * H),
    new Float32Array(4 * H),
    glorot(random, H, V),
    new Float32Array(V),
  ];
  return { name: "W6", stream: tokenStream(), params };
}

/**
 * W5's tiny GPT with its reference weights: token and position embeddings, 2 pre-LN blocks
 * (`h += attn(ln1(h))`, `h += W2·gelu(W1·ln2(h))`), a final LayerNorm and an untied head.
 */
export function workloadW5Model(workload: SeqWorkload, dtype: DType = "float32"): Sequential {
  const { V, T } = SEQ, { d, heads, blocks, mlp } = W5_DIMS;
  const p = workload.params;
  const layers: Layer[] = [
    new Embedding(V, d, { dtype, weights: p[0] }),
    new PositionalEmbedding(T, d, { dtype, weights: p[1] }),
  ];
  for (let b = 0, i = 2; b < blocks; b++, i += 12) {
    const [g1, b1, wqkv, bqkv, wo, bo, g2, b2, w1, c1, w2, c2] = p.slice(i, i + 12);
    layers.push(
      new Residual([
        new LayerNorm(d, { dtype, gamma: g1, beta: b1 }),
        new MultiHeadAttention(d, heads, {
          causal: true,
          dtype,
          inProjWeights: wqkv,
          inProjBiases: bqkv,
          outProjWeights: wo,
          outProjBiases: bo,
        }),
      ]),
      new Residual([
        new LayerNorm(d, { dtype, gamma: g2, beta: b2 }),
        new Dense(d, mlp, { dtype, weights: w1, biases: c1 }),
        new GELU(),
        new Dense(mlp, d, { dtype, weights: w2, biases: c2 }),
      ]),
    );
  }
  const [gf, bf, wh, bh] = p.slice(-4);
  layers.push(
    new LayerNorm(d, { dtype, gamma: gf, beta: bf }),
    new Dense(d, V, { dtype, weights: wh, biases: bh }),
  );
  return new Sequential(layers);
}

/** W6's char LSTM with its reference weights: `Embedding(65, 64) → LSTM(64, 256) → Dense(256, 65)`. */
export function workloadW6Model(workload: SeqWorkload, dtype: DType = "float32"): Sequential {
  const { V } = SEQ, { E, H } = W6_DIMS;
  const [emb, wih, whh, bih, bhh, wh, bh] = workload.params;
  return new Sequential([
    new Embedding(V, E, { dtype, weights: emb }),
    new LSTM(E, H, {
      dtype,
      inputWeights: wih,
      recurrentWeights: whh,
      inputBiases: bih,
      recurrentBiases: bhh,
    }),
    new Dense(H, V, { dtype, weights: wh, biases: bh }),
  ]);
}

/** `ids` `[batch·T]` as a `[batch, T]` tensor of `dtype`. */
export function idsTensor(ids: Int32Array, batch: number, T: number, dtype: DType): Tensor {
  const data = dtype === "float64" ? Float64Array.from(ids) : Float32Array.from(ids);
  return new Tensor(data, [batch, T]);
}

/** Nominal FLOPs of one W5 step, as data.py counts them. */
export function w5FlopsPerStep(): number {
  const { V, T, B } = SEQ, { d, blocks, mlp } = W5_DIMS;
  return 3 * B * T * (blocks * (2 * (3 * d * d + d * d + 2 * d * mlp) + 4 * T * d) + 2 * d * V);
}

/** Nominal FLOPs of one W6 step, as data.py counts them. */
export function w6FlopsPerStep(): number {
  const { V, T, B } = SEQ, { E, H } = W6_DIMS;
  return 3 * B * T * (2 * (E + H) * 4 * H + 2 * H * V);
}
