import type { DType, FloatArray } from "./tensor.ts";

// Dimension letters: m rows of the left operand, k the shared dimension, n columns of the
// result. Every array is flat and row-major; `accumulate` adds into `c` instead of overwriting.

/**
 * c[m,n] (=|+=) a[m,k]·b with b fixed by {@linkcode Backend.prepareRight}; `accumulate`
 * adds into c.
 */
export type RightProduct = (
  a: FloatArray,
  c: FloatArray,
  m: number,
  accumulate?: boolean,
) => void;

/**
 * The matrix products backpropagation needs, as a pluggable compute backend.
 *
 * Layers call the active backend (`getBackend()`, in `backends/selection.ts`); they hold no
 * kernels of their own, so a faster backend speeds up every layer at once.
 */
export interface Backend {
  /** The name users select it by, e.g. `"js"`. */
  readonly name: string;
  /** c[m,n] = a[m,k]·b[k,n] (forward: `inputs·W`). */
  matmul(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    m: number,
    k: number,
    n: number,
    accumulate?: boolean,
  ): void;
  /** c[k,n] = a[m,k]ᵀ·b[m,n] (`dweights = inputsᵀ·dvalues`). */
  matmulTransA(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    m: number,
    k: number,
    n: number,
    accumulate?: boolean,
  ): void;
  /**
   * c[m,n] = a[m,k]·b[k,n] + bias[n] on every row (optional: `Dense` calls `matmul` then
   * `addBias` when absent). The sum must round as those two calls would: the product first,
   * then the bias added to it.
   */
  matmulBias?(
    a: FloatArray,
    b: FloatArray,
    bias: FloatArray,
    c: FloatArray,
    m: number,
    k: number,
    n: number,
  ): void;
  /** c[m,k] = a[m,n]·b[k,n]ᵀ (`dinputs = dvalues·Wᵀ`). */
  matmulTransB(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    m: number,
    k: number,
    n: number,
    accumulate?: boolean,
  ): void;
  /**
   * Products by one fixed right operand (optional: call `matmul` or `matmulTransB` when
   * absent): returns `product(a, c, m, accumulate)`, which computes c[m,n] (=|+=)
   * a[m,k]·b[k,n], or with `transposed` c[m,n] (=|+=) a[m,k]·b[n,k]ᵀ, with the same bits as
   * `matmul(a, b, c, m, k, n)` (`matmulTransB(a, b, c, m, n, k)`). A backend may copy and
   * pack `b` once for all of them, so `product` holds b's values as they were when first
   * called: prepare again after b changes. For the many small products of a recurrent layer
   * (`h·U` at every step).
   */
  prepareRight?(b: FloatArray, k: number, n: number, transposed?: boolean): RightProduct;
  /** c[m,n] += bias[n] on every row. */
  addBias(c: FloatArray, bias: FloatArray, m: number, n: number): void;
  /** out[n] = Σ_rows a[m,n] (`dbiases = Σ_batch dvalues`). */
  sumColumns(a: FloatArray, out: FloatArray, m: number, n: number, accumulate?: boolean): void;
  /**
   * out[g, :] = Σ a[r, :] over the rows r with `group[r] = g`, in ascending r, for a
   * `[group.length, n]` and out `[count, n]` (optional: `sumRowsByGroup` from
   * `core/row_groups.ts` when absent, with the same bits). The gradient sums of inputs whose
   * rows repeat (see `RowGroups`).
   */
  sumRowsByGroup?(
    a: FloatArray,
    out: FloatArray,
    n: number,
    group: Int32Array,
    count: number,
  ): void;
  /**
   * out = max(x, 0) element-wise (optional: the ReLU layer loops itself when absent). The
   * one activation nearly every model has, so a backend may vectorize it.
   */
  relu?(x: FloatArray, out: FloatArray): void;
  /** out = x > 0 ? dvalues : 0 element-wise (optional, with {@linkcode Backend.relu}). */
  reluBackward?(x: FloatArray, dvalues: FloatArray, out: FloatArray): void;
  /**
   * A function tabulated as cubics on a grid, times a second operand, element-wise over float32
   * arrays of one length (optional; null or absent: the caller loops itself): in float64,
   * `position = (x[i] − low)·steps`, `k = ⌊position⌋`, `t = position − k` and
   * `out[i] = f32(w·(c0 + t·(c1 + t·(c2 + t·c3))))` with c0 … c3 = `table[4k … 4k + 3]` and
   * w = `dvalues[i]`, or `x[i]` without dvalues (`y = x·f(x)`). An element off the grid
   * (`!(0 ≤ position < table.length / 4)`: below `low`, past the last interval, or NaN) is
   * computed with interval 0 meanwhile, and its index is returned, in ascending order, for
   * the caller to redo. These are GELU's float32 loops (activations/gelu.ts), which the wasm
   * backend runs where the arrays lie resident in its shared memory, split across its worker
   * pool: the loops' bits on any thread count. Null when it did nothing (another element type,
   * arrays not resident).
   */
  cubicMap?(
    x: FloatArray,
    table: Float64Array,
    low: number,
    steps: number,
    out: FloatArray,
    dvalues?: FloatArray,
  ): Int32Array | null;
  /**
   * LayerNorm's float32 forward pass (optional; false or absent: the layer loops itself): each
   * row r of `x` `[rows, F]` (F = `gamma.length`, rows = `means.length`) normalized into `y`,
   * in float64 with the layer's operations in its order: `mean = Σx / F` (four interleaved
   * sums `s0 … s3` over the features by their index mod 4, the last F mod 4 into s0, then
   * `(s0 + s1) + (s2 + s3)`), likewise `squares = Σ(x − mean)²`,
   * `invStd = 1 / √(squares / F + epsilon)`,
   * `y = f32((x − mean)·invStd·gamma[f] + beta[f])`, with `means[r] = mean` and
   * `invStds[r] = invStd`. The wasm backend runs it where y (a training buffer) lies
   * resident in its shared memory (x copied in when it does not), split by rows across its
   * worker pool: the layer's bits on any thread count.
   */
  layerNormForward?(
    x: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    epsilon: number,
    y: FloatArray,
    means: Float64Array,
    invStds: Float64Array,
  ): boolean;
  /**
   * Its backward pass (optional, likewise), from forward's `means` and `invStds`, with
   * `x̂ = (x − mean)·invStd` and `g = gamma[f]·dvalues`: per row, `Σg` and `Σ g·x̂` in two
   * interleaved sums (even and odd features, then added), and unless `dx` is null,
   * `dx = f32(invStd·(g − Σg/F − x̂·(Σ g·x̂)/F))`; and `dgamma[f] = Σ dvalues·x̂`,
   * `dbeta[f] = Σ dvalues` (overwritten, float64) summed in fixed groups of `groupRows` rows:
   * each group's sums from 0 in row order, then the groups' sums added in order to 0. The
   * groups do not depend on how the work is split, so neither do the bits. The wasm backend
   * runs it where dx lies resident (or, without dx, x or dvalues), split by whole groups
   * across its worker pool.
   */
  layerNormBackward?(
    x: FloatArray,
    dvalues: FloatArray,
    gamma: FloatArray,
    means: Float64Array,
    invStds: Float64Array,
    dgamma: Float64Array,
    dbeta: Float64Array,
    dx: FloatArray | null,
    groupRows: number,
  ): boolean;
  /**
   * The forward pass of a 2-D convolution (optional: `Conv2D` lowers it to the products
   * itself when absent or when this returns false, e.g. for an element type the backend does
   * not run): y[N, O, OH, OW] = w[O, C·KH·KW]·im2col(x) + bias[O], with `x` [N, C, H, W]
   * and the sizes in `geometry`.
   */
  conv2dForward?(
    x: FloatArray,
    w: FloatArray,
    bias: FloatArray | undefined,
    y: FloatArray,
    geometry: ConvGeometry,
  ): boolean;
  /**
   * The backward pass of {@linkcode Backend.conv2dForward} (optional, likewise):
   * `dw += dvalues·im2col(x)ᵀ`, `dbias[o] += Σ dvalues[·, o, ·, ·]`, and, unless `dx` is
   * null, `dx = col2im(wᵀ·dvalues)` (overwritten). Returns false when it did nothing.
   */
  conv2dBackward?(
    x: FloatArray,
    w: FloatArray,
    dvalues: FloatArray,
    dw: FloatArray,
    dbias: FloatArray | undefined,
    dx: FloatArray | null,
    geometry: ConvGeometry,
  ): boolean;
  /**
   * One of BatchNorm's passes ({@linkcode BATCH_NORM_PASSES}; optional: the layer loops
   * itself when absent or when this returns false) over [batch, features, positions]; the
   * layer adds a feature's per-plane sums in the order of the samples. Returns false when it
   * did nothing.
   */
  batchNorm?(
    pass: BatchNormPass,
    batch: number,
    features: number,
    positions: number,
    arrays: BatchNormArrays,
  ): boolean;
  /**
   * MaxPool2D's forward pass (optional: the layer loops itself when absent or when this
   * returns false): over every plane (one channel of one sample) of `x` [planes, H, W],
   * y[plane, oh, ow] = the window's largest input (the first of equals; a NaN wins, as in
   * PyTorch) and argmax[plane, oh, ow] = its flat index in x.
   */
  maxPool2dForward?(
    x: FloatArray,
    y: FloatArray,
    argmax: Int32Array,
    geometry: PoolGeometry,
  ): boolean;
  /**
   * The backward pass of {@linkcode Backend.maxPool2dForward} (optional, likewise):
   * dx = 0, then dx[argmax[o]] += dvalues[o] in the order of o. Returns false when it did
   * nothing.
   */
  maxPool2dBackward?(
    dvalues: FloatArray,
    dx: FloatArray,
    argmax: Int32Array,
    geometry: PoolGeometry,
  ): boolean;
  /**
   * A zeroed array of `length` elements of `dtype`, placed where this backend's kernels read
   * and write it in place, for a layer's reusable training buffers (optional; undefined, as
   * from a backend without it, means an ordinary array). The wasm backend places large
   * buffers in its kernels' shared memory, so that its convolutions, ReLU, max pooling and
   * Adam need not copy them; such a buffer is a view of a `SharedArrayBuffer` and is never
   * freed.
   */
  allocate?(dtype: DType, length: number): FloatArray | undefined;
  /**
   * One Adam update in place (optional: `Adam` loops itself when absent), the book's
   * operations in its order: `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²` (stored, then read
   * back), `value += (−lr·(m/c₁)) / (√(v/c₂) + ε)`, in float64 arithmetic or, for float32
   * arrays, in float32 arithmetic (as NumPy computes the book's code on float32 arrays; within
   * float32 rounding of the float64 loop). All four arrays have one element type and length.
   */
  adam?(
    value: FloatArray,
    grad: FloatArray,
    momentum: FloatArray,
    cache: FloatArray,
    hyper: AdamHyper,
  ): void;
  /**
   * The LSTM's float32 recurrence, forward (optional; false or absent: `LSTM` loops itself):
   * with `gates` (`[T, B, 4·H]`) holding x·W + b for every step, for t = 0 … T − 1, `gates[t]
   * += h_{t−1}·U` (t > 0; U `[H, 4·H]`), then the pre-activations (i | f | g | o) become σ,
   * σ, tanh, σ in place and c, tanh(c), h are written at step t of `cells`, `tanhCells`,
   * `hiddens` (`[T, B, H]`), each row by the LSTM's own per-element code. The wasm backend
   * splits the batch rows across its worker pool (the rows are independent through all the
   * steps) where the buffers lie resident in its shared memory: the layer's bits on any
   * thread count.
   */
  lstmForward?(
    gates: Float32Array,
    cells: Float32Array,
    tanhCells: Float32Array,
    hiddens: Float32Array,
    recurrentWeights: Float32Array,
    batch: number,
    steps: number,
    hidden: number,
  ): boolean;
  /**
   * The backward pass of {@linkcode Backend.lstmForward} (optional, likewise): `dgates`
   * (`[T, B, 4·H]`) = d(loss)/d(pre-activations) of every step, from `dvalues` (`[B, T, H]`
   * when `sequences`, else the last step's `[B, H]`) back through the cells and h_{t−1}·U.
   */
  lstmBackward?(
    gates: Float32Array,
    cells: Float32Array,
    tanhCells: Float32Array,
    dvalues: Float32Array,
    sequences: boolean,
    dgates: Float32Array,
    recurrentWeights: Float32Array,
    batch: number,
    steps: number,
    hidden: number,
  ): boolean;
  /**
   * The GRU's float32 recurrence, forward (optional; false or absent: `GRU` loops itself):
   * with `gates` (`[T, B, 3·H]`) holding x·W + b_i for every step, for t = 0 … T − 1,
   * `recurrent[t] = b_h + h_{t−1}·U` (b_h alone at t = 0; U `[H, 3·H]`, b_h `[3·H]`), then
   * `gates[t]` (r | z | n) become r = σ(·), z = σ(·) of their sums with `recurrent[t]` and
   * n = tanh(x·W_n + b_in + r⊙recurrent_n) in place, and h = (1 − z)⊙n + z⊙h_{t−1} is
   * written at step t of `hiddens` (`[T, B, H]`), each row by the GRU's own per-element code.
   * The wasm backend splits the batch rows across its worker pool (the rows are independent
   * through all the steps) where the buffers lie resident in its shared memory: the layer's
   * bits on any thread count.
   */
  gruForward?(
    gates: Float32Array,
    recurrent: Float32Array,
    hiddens: Float32Array,
    recurrentWeights: Float32Array,
    recurrentBiases: Float32Array,
    batch: number,
    steps: number,
    hidden: number,
  ): boolean;
  /**
   * The backward pass of {@linkcode Backend.gruForward} (optional, likewise): `dgates` and
   * `drecurrent` (`[T, B, 3·H]`) = d(loss)/d(x·W + b_i) and d(loss)/d(h_{t−1}·U + b_h) of
   * every step, from `dvalues` (`[B, T, H]` when `sequences`, else the last step's `[B, H]`)
   * back through the cells and h_{t−1}·U.
   */
  gruBackward?(
    gates: Float32Array,
    recurrent: Float32Array,
    hiddens: Float32Array,
    dvalues: Float32Array,
    sequences: boolean,
    dgates: Float32Array,
    drecurrent: Float32Array,
    recurrentWeights: Float32Array,
    batch: number,
    steps: number,
    hidden: number,
  ): boolean;
  /**
   * MultiHeadAttention's per-head loop, forward (optional; false or absent: the layer loops
   * itself): for every (sample b, head h) pair i = b·heads + h, with q, k, v that head's
   * columns of `qkv` `[batch·T, 3·dim]` (q at column h·E, k dim and v 2·dim further),
   * `probs[i] = softmax(scale·q·kᵀ)` (row-wise, over j ≤ i when `causal`, the rest 0;
   * `[pairs, T, T]`) and that head's columns of `concat` `[batch·T, dim]` = `probs[i]·v`
   * (overwritten). The wasm backend splits the pairs across its worker pool where the arrays
   * lie resident in its shared memory; every pair gets the same bits on any thread count.
   */
  attentionForward?(
    qkv: FloatArray,
    probs: FloatArray,
    concat: FloatArray,
    shape: AttentionShape,
  ): boolean;
  /**
   * The backward pass of {@linkcode Backend.attentionForward} (optional, likewise), from its
   * `qkv`, `probs` and d(concat): `dqkv` `[batch·T, 3·dim]` = dq | dk | dv (overwritten).
   */
  attentionBackward?(
    qkv: FloatArray,
    probs: FloatArray,
    dconcat: FloatArray,
    dqkv: FloatArray,
    shape: AttentionShape,
  ): boolean;
}

/** The sizes of {@linkcode Backend.attentionForward}'s heads. */
export interface AttentionShape {
  /** B */
  batch: number;
  /** Heads per sample. */
  heads: number;
  /** Positions per sample. */
  T: number;
  /** Features per head (dim / heads). */
  E: number;
  /** The scores' factor, 1/√E. */
  scale: number;
  /** Whether position i attends to j ≤ i only. */
  causal: boolean;
}

/** The scalars of one Adam update (see {@linkcode Backend.adam}). */
export interface AdamHyper {
  /** β₁ */
  beta1: number;
  /** β₂ */
  beta2: number;
  /** The step size of this update. */
  learningRate: number;
  /** 1 − β₁^(t+1) */
  correction1: number;
  /** 1 − β₂^(t+1) */
  correction2: number;
  /** ε */
  epsilon: number;
}

/**
 * The geometry of a window sliding over the last two axes of NCHW inputs. Padding may differ
 * on the two sides of an axis (`"same"` with an even kernel pads one more at the bottom and
 * right, as PyTorch does).
 */
export interface Window2D {
  /** KH */
  kernelH: number;
  /** KW */
  kernelW: number;
  /** SH */
  strideH: number;
  /** SW */
  strideW: number;
  /** DH */
  dilationH: number;
  /** DW */
  dilationW: number;
  /** Zero rows above the input. */
  padTop: number;
  /** Zero rows below it. */
  padBottom: number;
  /** Zero columns left of it. */
  padLeft: number;
  /** Zero columns right of it. */
  padRight: number;
}

/** The sizes of one convolution call (see {@linkcode Backend.conv2dForward}). */
export interface ConvGeometry extends Window2D {
  /** N samples. */
  batch: number;
  /** C input channels. */
  channels: number;
  /** H */
  height: number;
  /** W */
  width: number;
  /** O output channels. */
  outChannels: number;
  /** OH */
  outH: number;
  /** OW */
  outW: number;
}

/**
 * BatchNorm's passes (see {@linkcode Backend.batchNorm}), over each plane p = n·features + f
 * of [N, features, positions]:
 * - `"sums"`: sums[p] = Σ x;
 * - `"squares"`: sums[p] = Σ (x − c0[f])²;
 * - `"gradientSums"`: sums[p] = Σ dvalues, dots[p] = Σ dvalues·(x − c0[f]);
 * - `"normalize"`: out = x·c0[f] + c1[f];
 * - `"gradient"`: out = c0[f]·(dvalues − c1[f] − (x − c2[f])·c3[f]·c4[f]);
 * - `"inferenceGradient"`: out = c0[f]·dvalues;
 *
 * with c0 … c4 the call's coefficients. Sums are in float64, in the order of the plane's
 * values; the other expressions are evaluated as written, in float64, each result rounded
 * once.
 */
export const BATCH_NORM_PASSES = [
  "sums",
  "squares",
  "gradientSums",
  "normalize",
  "gradient",
  "inferenceGradient",
] as const;

/** A pass of {@linkcode BATCH_NORM_PASSES}. */
export type BatchNormPass = typeof BATCH_NORM_PASSES[number];

/** The arrays of one {@linkcode Backend.batchNorm} call (what its pass reads and writes). */
export interface BatchNormArrays {
  /** The inputs [N, features, positions]. */
  x?: FloatArray;
  /** The gradient of the outputs, [N, features, positions]. */
  dvalues?: FloatArray;
  /** What an element-wise pass writes, [N, features, positions]. */
  out?: FloatArray;
  /** Up to five [features] arrays, c0 … c4 of the pass. */
  coefficients?: Float64Array[];
  /** The per-plane sums, [N·features]. */
  sums?: Float64Array;
  /** The per-plane dot products of `"gradientSums"`, [N·features]. */
  dots?: Float64Array;
}

/** The sizes of one pooling call (see {@linkcode Backend.maxPool2dForward}). */
export interface PoolGeometry extends Window2D {
  /** N·C planes: one channel of one sample each. */
  planes: number;
  /** H */
  height: number;
  /** W */
  width: number;
  /** OH */
  outH: number;
  /** OW */
  outW: number;
}
