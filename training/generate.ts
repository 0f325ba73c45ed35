// Autoregressive sampling from a trained language model: one token at a time, each fed back.
import { describe, describeKind } from "../core/_describe.ts";
import type { Chain } from "../core/chain.ts";
import type { Layer } from "../core/layer.ts";
import { type RandomOptions, type RandomState, resolveRandom } from "../core/random.ts";
import { allocate, type FloatArray, formatShape, Tensor } from "../core/tensor.ts";

/** Options of {@linkcode generate}. */
export interface GenerateOptions extends RandomOptions {
  /** How many tokens to add after the prompt: an integer ≥ 0. */
  maxNewTokens: number;
  /**
   * Divides the logits before the softmax: below 1 sharpens the distribution, above 1
   * flattens it; 0 picks the most likely token every time (greedy, ties to the lowest id).
   * 1 when omitted.
   */
  temperature?: number;
  /** Sample only among the `topK` most likely tokens (ties to the lower id); all when omitted. */
  topK?: number;
  /**
   * The model sees at most this many of the latest tokens. When omitted: the `maxLength` of
   * the first layer that has one (a `PositionalEmbedding`, found inside nested `layers` too),
   * else the whole sequence.
   */
  contextLength?: number;
}

// The first numeric `maxLength` among `layers`, depth first through nested `layers` arrays.
function findMaxLength(layers: readonly Layer[]): number | undefined {
  for (const layer of layers) {
    const maxLength = (layer as { maxLength?: unknown }).maxLength;
    if (typeof maxLength === "number" && Number.isSafeInteger(maxLength) && maxLength > 0) {
      return maxLength;
    }
    const nested = (layer as { layers?: unknown }).layers;
    if (Array.isArray(nested)) {
      const found = findMaxLength(nested);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function checkInteger(value: unknown, name: string, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `generate: options.${name} must be an integer ≥ ${min}, got ${describe(value)}`,
    );
  }
  return value;
}

// The prompt as a fresh array, every id checked.
function checkPrompt(promptIds: ArrayLike<number>): number[] {
  if (
    !Array.isArray(promptIds) &&
    !(ArrayBuffer.isView(promptIds) && !(promptIds instanceof DataView))
  ) {
    throw new TypeError(
      `generate: promptIds must be an array of token ids, got ${describeKind(promptIds)}`,
    );
  }
  if (promptIds.length === 0) {
    throw new RangeError("generate: promptIds is empty; give at least one token to start from");
  }
  const ids = Array.from(promptIds);
  ids.forEach((id, i) => {
    if (typeof id !== "number") {
      throw new TypeError(`generate: promptIds[${i}] must be a number, got ${describeKind(id)}`);
    }
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new RangeError(
        `generate: promptIds[${i}] is ${id}, expected a token id (an integer ≥ 0)`,
      );
    }
  });
  return ids;
}

// The id drawn from `logits[offset … offset + vocab)`; `order` and `weights` are scratch
// arrays of `vocab` entries.
function pick(
  logits: FloatArray,
  offset: number,
  vocab: number,
  temperature: number,
  topK: number,
  random: RandomState | undefined,
  order: Int32Array,
  weights: Float64Array,
): number {
  let best = 0;
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) {
    const logit = logits[offset + v];
    if (logit > max) {
      max = logit;
      best = v;
    }
  }
  if (temperature === 0 || topK === 1) return best;
  if (topK < vocab) {
    // The topK largest, ties to the lower id; the rest get weight 0.
    for (let v = 0; v < vocab; v++) order[v] = v;
    order.sort((a, b) => logits[offset + b] - logits[offset + a] || a - b);
    weights.fill(0);
    for (let k = 0; k < topK; k++) weights[order[k]] = 1;
  } else {
    weights.fill(1);
  }
  // p_v ∝ exp((logit_v − max) / temperature), the max subtracted so that nothing overflows.
  let total = 0;
  for (let v = 0; v < vocab; v++) {
    if (weights[v] === 0) continue;
    const w = Math.exp((logits[offset + v] - max) / temperature);
    weights[v] = w;
    total += w;
  }
  const u = random!.random() * total;
  let sum = 0;
  let last = best;
  for (let v = 0; v < vocab; v++) {
    const w = weights[v];
    if (w === 0) continue;
    sum += w;
    last = v;
    if (u < sum) return v;
  }
  return last; // u rounded up to the total
}

/**
 * Continues `promptIds` by sampling from `model`, one token at a time, each fed back in:
 * returns the prompt followed by `maxNewTokens` new ids.
 *
 * The model takes token ids `[1, T]` (built in `model.dtype`) and returns logits, either
 * for every position `[1, T, vocab]` (a GPT, an LSTM with `returnSequences`) or for the
 * last one only `[1, vocab]`; it runs in inference mode. Each step reads the last
 * position's logits: with `temperature: 0` it takes their argmax (ties to the lowest id),
 * otherwise it samples from `softmax(logits / temperature)`, restricted to the `topK`
 * largest when given, drawing one `random()` from the `RandomState` of `seed` or `random`
 * (the global generator when neither is given), so a seed reproduces the text. The model
 * sees the last `contextLength` tokens at most (see {@linkcode GenerateOptions}).
 *
 * There is no cache of past keys and values: each step runs the model on its whole context.
 *
 * @throws {TypeError} when `promptIds` is not an array of numbers, or the model's outputs are
 * not logits of the shapes above.
 * @throws {RangeError} for an empty prompt, an id that is not an integer ≥ 0 or not below
 * the model's vocabulary, `maxNewTokens` not an integer ≥ 0, `temperature` not finite ≥ 0,
 * `topK` or `contextLength` not a positive integer, and logits that hold NaN or +∞.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generate, type Param, Sequential, Tensor } from "@chainrule/nn";
 *
 * // A toy model over 3 tokens whose logits always favour (last id + 1) mod 3.
 * const next = {
 *   kind: "Next",
 *   forward(inputs: Tensor): Tensor {
 *     const [batch, steps] = inputs.shape;
 *     const logits = Tensor.zeros([batch, steps, 3]); // [batch, T, vocab]
 *     for (let t = 0; t < batch * steps; t++) logits.data[t * 3 + (inputs.data[t] + 1) % 3] = 5;
 *     return logits;
 *   },
 *   backward: (dvalues: Tensor): Tensor => dvalues,
 *   params: (): Param[] => [],
 *   config: () => ({}),
 *   toString: () => "Next()",
 * };
 * const model = new Sequential([next]);
 * assert.deepEqual(generate(model, [0], { maxNewTokens: 4, temperature: 0 }), [0, 1, 2, 0, 1]);
 * const a = generate(model, [2], { maxNewTokens: 20, seed: 7 });
 * assert.deepEqual(generate(model, [2], { maxNewTokens: 20, seed: 7 }), a);
 * ```
 */
export function generate(
  model: Chain,
  promptIds: ArrayLike<number>,
  options: GenerateOptions,
): number[] {
  if (typeof model?.forward !== "function") {
    throw new TypeError(
      `generate: model must be a Sequential (or a Chain) of layers, got ${describeKind(model)}`,
    );
  }
  const ids = checkPrompt(promptIds);
  if (!options || typeof options !== "object") {
    throw new TypeError(
      `generate: options must be an object with maxNewTokens, got ${describeKind(options)}`,
    );
  }
  const maxNewTokens = checkInteger(options.maxNewTokens, "maxNewTokens", 0);
  const temperature = options.temperature ?? 1;
  if (typeof temperature !== "number" || !Number.isFinite(temperature) || temperature < 0) {
    throw new RangeError(
      `generate: options.temperature must be a finite number ≥ 0 (0 is greedy), got ${
        describe(temperature)
      }`,
    );
  }
  const topKOption = options.topK === undefined ? undefined : checkInteger(options.topK, "topK", 1);
  const contextLength = options.contextLength === undefined
    ? findMaxLength(Array.isArray(model.layers) ? model.layers : []) ?? Infinity
    : checkInteger(options.contextLength, "contextLength", 1);
  const random = temperature > 0 && topKOption !== 1 ? resolveRandom(options) : undefined;
  const dtype = model.dtype ?? "float32";

  let order = new Int32Array(0);
  let weights = new Float64Array(0);
  for (let step = 0; step < maxNewTokens; step++) {
    const start = Math.max(0, ids.length - contextLength);
    const steps = ids.length - start; // T
    const data = allocate(dtype, steps); // [1, T]
    for (let t = 0; t < steps; t++) data[t] = ids[start + t];
    const outputs = model.forward(new Tensor(data, [1, steps]), { training: false });
    const shape = outputs instanceof Tensor ? outputs.shape : undefined;
    const perPosition = shape?.length === 3 && shape[1] === steps;
    if (!shape || shape[0] !== 1 || !(perPosition || shape.length === 2) || shape.at(-1)! < 1) {
      throw new TypeError(
        `generate: the model's outputs for ids [1, ${steps}] are ${
          shape ? `shaped ${formatShape(shape)}` : typeof outputs
        }, expected logits [1, ${steps}, vocab] (every position) or [1, vocab] (the last)`,
      );
    }
    const vocab = shape.at(-1)!;
    const logits = outputs.data;
    const offset = perPosition ? (steps - 1) * vocab : 0; // the last position's row
    if (step === 0) {
      const outside = ids.findIndex((id) => id >= vocab);
      if (outside >= 0) {
        throw new RangeError(
          `generate: promptIds[${outside}] is ${
            ids[outside]
          }, out of range for the model's ${vocab} logits (ids 0 to ${vocab - 1})`,
        );
      }
    }
    if (order.length !== vocab) {
      order = new Int32Array(vocab);
      weights = new Float64Array(vocab);
    }
    let finite = false;
    for (let v = 0; v < vocab; v++) {
      const logit = logits[offset + v];
      if (Number.isNaN(logit) || logit === Infinity) {
        throw new RangeError(
          `generate: the model's logit for token ${v} at step ${step} is ${logit}; ` +
            `the model's weights or inputs are broken`,
        );
      }
      if (logit > -Infinity) finite = true;
    }
    if (!finite) {
      throw new RangeError(`generate: every logit of the model at step ${step} is -Infinity`);
    }
    const topK = Math.min(topKOption ?? vocab, vocab);
    ids.push(pick(logits, offset, vocab, temperature, topK, random, order, weights));
  }
  return ids;
}
