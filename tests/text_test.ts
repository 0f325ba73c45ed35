import assert from "node:assert/strict";
import {
  Adam,
  CharTokenizer,
  Dense,
  type DType,
  Embedding,
  GELU,
  generate,
  type JsonObject,
  type Layer,
  LayerNorm,
  loadModel,
  LSTM,
  MultiHeadAttention,
  Param,
  PositionalEmbedding,
  RandomState,
  Residual,
  Sequential,
  SoftmaxCrossEntropy,
  Tensor,
} from "../mod.ts";
import { withTempDir } from "./_temp_dir.ts";

// A third-party layer: a bigram table `[ids, vocab]`. Ids `[batch, T]` → logits `[batch, T, vocab]`, row t
// being `table[ids[t]]`; with `lastOnly`, the last position's row only, `[batch, vocab]`.
// It records the inputs it saw and refuses ids of another dtype than its table's.
class Bigram implements Layer {
  readonly kind = "Bigram";
  readonly table: Param; // [ids, vocab]
  readonly seen: number[][] = [];
  constructor(rows: number[][], readonly lastOnly = false, dtype: DType = "float32") {
    this.table = new Param("table", Tensor.from(rows, { dtype }));
  }
  forward(inputs: Tensor): Tensor {
    if (inputs.dtype !== this.table.value.dtype) {
      throw new TypeError(`Bigram.forward: ids are ${inputs.dtype}, expected ${this.table.dtype}`);
    }
    const [batch, steps] = inputs.shape;
    const vocab = this.table.value.shape[1];
    const table = this.table.value.data;
    this.seen.push(Array.from(inputs.data));
    const rows = this.lastOnly ? 1 : steps;
    const out = Tensor.zeros(this.lastOnly ? [batch, vocab] : [batch, steps, vocab], {
      dtype: inputs.dtype,
    });
    for (let b = 0; b < batch; b++) {
      for (let r = 0; r < rows; r++) {
        const id = inputs.data[b * steps + (this.lastOnly ? steps - 1 : r)];
        out.data.set(table.subarray(id * vocab, (id + 1) * vocab), (b * rows + r) * vocab);
      }
    }
    return out;
  }
  backward(dvalues: Tensor): Tensor {
    return dvalues;
  }
  params(): Param[] {
    return [this.table];
  }
  config(): JsonObject {
    return {};
  }
  toString(): string {
    return "Bigram()";
  }
}

// Logits favouring the token at the context's first position, at every position: what the
// model predicts depends on where the context starts.
class FirstToken implements Layer {
  readonly kind = "FirstToken";
  constructor(readonly vocab: number) {}
  forward(inputs: Tensor): Tensor {
    const [batch, steps] = inputs.shape;
    const out = Tensor.zeros([batch, steps, this.vocab]);
    for (let b = 0; b < batch; b++) {
      const first = inputs.data[b * steps];
      for (let t = 0; t < steps; t++) out.data[(b * steps + t) * this.vocab + first] = 3;
    }
    return out;
  }
  backward(dvalues: Tensor): Tensor {
    return dvalues;
  }
  params(): Param[] {
    return [];
  }
  config(): JsonObject {
    return {};
  }
  toString(): string {
    return "FirstToken()";
  }
}

// Passes ids through; has a `maxLength`, as a PositionalEmbedding does.
class Positions implements Layer {
  readonly kind = "Positions";
  constructor(readonly maxLength: number) {}
  forward(inputs: Tensor): Tensor {
    return inputs;
  }
  backward(dvalues: Tensor): Tensor {
    return dvalues;
  }
  params(): Param[] {
    return [];
  }
  config(): JsonObject {
    return { maxLength: this.maxLength };
  }
  toString(): string {
    return `Positions(maxLength=${this.maxLength})`;
  }
}

// Bigram rows with one logit of 4 at `next(i)`, 0 elsewhere.
function successorTable(vocab: number, next: (i: number) => number): number[][] {
  return Array.from({ length: vocab }, (_, i) => {
    const row = new Array(vocab).fill(0);
    row[next(i)] = 4;
    return row;
  });
}

// Every row the same: logits log(p).
function unigram(p: number[]): Bigram {
  return new Bigram(p.map(() => p.map(Math.log)));
}

function frequencies(ids: number[], vocab: number): number[] {
  const counts = new Array(vocab).fill(0);
  for (const id of ids) counts[id]++;
  return counts.map((c) => c / ids.length);
}

Deno.test("CharTokenizer", async (t) => {
  await t.step("fromText sorts the distinct characters by code point", () => {
    // UTF-16 order would put 😀 (U+1F600, first unit 0xD83D) before ！ (U+FF01).
    const tok = CharTokenizer.fromText("b😀a！ba");
    assert.deepEqual(tok.chars, ["a", "b", "！", "😀"]);
    assert.equal(tok.size, 4);
    assert.equal(tok.toString(), "CharTokenizer(size=4)");
  });

  await t.step("encode and decode are inverse; a surrogate pair is one character", () => {
    const text = "hello 😀 world\n";
    const tok = CharTokenizer.fromText(text);
    const ids = tok.encode(text);
    assert.ok(ids instanceof Int32Array);
    assert.equal(ids.length, [...text].length);
    assert.equal(tok.decode(ids), text);
    assert.equal(tok.decode([...ids]), text);
    assert.deepEqual([...tok.encode("😀")], [tok.chars.indexOf("😀")]);
    assert.equal(tok.encode("").length, 0);
    assert.equal(tok.decode([]), "");
  });

  await t.step("the constructor keeps the order given", () => {
    const tok = new CharTokenizer(["z", "\n", "a"]);
    assert.deepEqual([...tok.encode("a\nz")], [2, 1, 0]);
    assert.deepEqual(new CharTokenizer("cab").chars, ["c", "a", "b"]);
    assert.deepEqual(new CharTokenizer("x😀").chars, ["x", "😀"]);
  });

  await t.step("encode names an unknown character, JSON-escaped, and its position", () => {
    const tok = CharTokenizer.fromText("ab😀");
    // Position 3 in characters (4 in UTF-16 units).
    assert.throws(
      () => tok.encode("a😀b\t"),
      {
        name: "RangeError",
        message:
          'CharTokenizer.encode: character "\\t" at position 3 is not in the vocabulary of 3 characters',
      },
    );
    assert.throws(() => tok.encode("é"), /character "é" at position 0/);
    assert.throws(() => tok.encode(5 as unknown as string), TypeError);
  });

  await t.step("decode names an id out of range and its position", () => {
    const tok = CharTokenizer.fromText("abc");
    assert.throws(
      () => tok.decode([0, 3]),
      {
        name: "RangeError",
        message:
          "CharTokenizer.decode: id 3 at position 1 is out of range for a vocabulary of 3 characters (ids 0 to 2)",
      },
    );
    assert.throws(() => tok.decode([-1]), /id -1 at position 0/);
    assert.throws(() => tok.decode([1.5]), /id 1.5 at position 0/);
    assert.throws(() => tok.decode(new Float64Array([NaN])), /id NaN at position 0/);
    assert.throws(() => tok.decode(["a" as unknown as number]), TypeError);
    assert.throws(() => tok.decode("ab" as unknown as number[]), TypeError);
  });

  await t.step("bad vocabularies are refused", () => {
    assert.throws(() => CharTokenizer.fromText(""), {
      name: "RangeError",
      message: "CharTokenizer.fromText: text is empty; it needs at least one character",
    });
    assert.throws(() => CharTokenizer.fromText(3 as unknown as string), TypeError);
    assert.throws(() => new CharTokenizer([]), RangeError);
    assert.throws(() => new CharTokenizer(["a", "b", "a"]), {
      name: "RangeError",
      message: 'new CharTokenizer: character "a" appears twice, at 0 and 2',
    });
    assert.throws(() => new CharTokenizer("aba"), /appears twice/);
    assert.throws(() => new CharTokenizer(["a", "bc"]), {
      name: "TypeError",
      message: 'new CharTokenizer: chars[1] must be one character (one code point), got "bc"',
    });
    assert.throws(() => new CharTokenizer([""]), TypeError);
    assert.throws(() => new CharTokenizer([1] as unknown as string[]), TypeError);
    assert.throws(() => new CharTokenizer(null as unknown as string), TypeError);
  });

  await t.step("toJSON and fromJSON round trip", () => {
    const tok = CharTokenizer.fromText('a\n"\\😀');
    const copy = CharTokenizer.fromJSON(tok.toJSON());
    assert.deepEqual(copy.chars, tok.chars);
    assert.deepEqual(JSON.parse(tok.toJSON()), { kind: "CharTokenizer", chars: [...tok.chars] });
    assert.throws(
      () => CharTokenizer.fromJSON("{oops"),
      /CharTokenizer.fromJSON: text is not JSON/,
    );
    assert.throws(
      () => CharTokenizer.fromJSON('{"kind":"Other","chars":["a"]}'),
      /expected \{"kind":"CharTokenizer","chars":\[…\]\}/,
    );
    assert.throws(() => CharTokenizer.fromJSON('{"kind":"CharTokenizer","chars":["a","a"]}'), {
      name: "RangeError",
    });
  });

  await t.step("travels with a model file's metadata", async () => {
    await withTempDir(async (dir) => {
      const tok = CharTokenizer.fromText("the quick brown fox 😀\n");
      const model = new Sequential([new Dense(tok.size, tok.size, { seed: 3 })]);
      const path = `${dir}/lm.safetensors`;
      await model.save(path, { metadata: { tokenizer: tok.toJSON() } });
      const loaded = await loadModel(path);
      const back = CharTokenizer.fromJSON(loaded.metadata.tokenizer);
      assert.deepEqual(back.chars, tok.chars);
      assert.deepEqual(back.encode("fox 😀"), tok.encode("fox 😀"));
      assert.deepEqual(loaded.model.params()[0].value.data, model.params()[0].value.data);
    });
  });
});

Deno.test("generate", async (t) => {
  await t.step("greedy decoding follows the argmax, ties to the lowest id", () => {
    const model = new Sequential([new Bigram(successorTable(5, (i) => (2 * i + 1) % 5))]);
    assert.deepEqual(
      generate(model, [0], { maxNewTokens: 6, temperature: 0 }),
      [0, 1, 3, 2, 0, 1, 3],
    );
    const tied = new Sequential([
      new Bigram([[0, 1, 3, 1, 3], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [
        0,
        0,
        0,
        0,
        0,
      ]]),
    ]);
    assert.deepEqual(generate(tied, [0], { maxNewTokens: 3, temperature: 0 }), [0, 2, 0, 2]);
    assert.deepEqual(generate(tied, [1], { maxNewTokens: 1, temperature: 0 }), [1, 0]);
  });

  await t.step("returns the prompt and the new ids as a fresh number[]", () => {
    const model = new Sequential([new Bigram(successorTable(3, (i) => (i + 1) % 3))]);
    const prompt = Int32Array.from([2, 0]);
    const out = generate(model, prompt, { maxNewTokens: 2, temperature: 0 });
    assert.ok(Array.isArray(out));
    assert.deepEqual(out, [2, 0, 1, 2]);
    assert.deepEqual([...prompt], [2, 0]);
    assert.deepEqual(generate(model, [1], { maxNewTokens: 0 }), [1]);
  });

  await t.step("a model that returns the last step only, [1, vocab]", () => {
    const model = new Sequential([new Bigram(successorTable(4, (i) => (i + 3) % 4), true)]);
    assert.deepEqual(generate(model, [0, 1], { maxNewTokens: 4, temperature: 0 }), [
      0,
      1,
      0,
      3,
      2,
      1,
    ]);
  });

  await t.step("the ids are built in the model's dtype", () => {
    const model = new Sequential([new Bigram(successorTable(3, (i) => i), false, "float64")]);
    assert.equal(model.dtype, "float64");
    assert.deepEqual(generate(model, [2], { maxNewTokens: 2, temperature: 0 }), [2, 2, 2]);
  });

  await t.step("sampling is reproducible with a seed or a RandomState", () => {
    const model = new Sequential([unigram([0.4, 0.3, 0.2, 0.1])]);
    const options = { maxNewTokens: 50, seed: 11, contextLength: 1 };
    const a = generate(model, [0], options);
    assert.deepEqual(generate(model, [0], options), a);
    assert.notDeepEqual(generate(model, [0], { ...options, seed: 12 }), a);
    // One random() per new token, drawn from the generator given.
    const random = new RandomState(11);
    assert.deepEqual(
      generate(model, [0], { maxNewTokens: 20, random, contextLength: 1 }),
      a.slice(0, 21),
    );
    assert.deepEqual(
      generate(model, [a[20]], { maxNewTokens: 30, random, contextLength: 1 }),
      a.slice(20),
    );
  });

  await t.step("samples follow softmax(logits / temperature), within topK", () => {
    const p = [0.5, 0.3, 0.2];
    const model = new Sequential([unigram(p)]);
    const n = 4000;
    const sample = (options: { temperature?: number; topK?: number }) =>
      frequencies(
        generate(model, [0], { maxNewTokens: n, seed: 5, contextLength: 1, ...options }).slice(1),
        3,
      );
    const close = (got: number[], want: number[]) =>
      got.forEach((f, i) => assert.ok(Math.abs(f - want[i]) < 0.03, `${got} vs ${want}`));
    close(sample({}), p);
    const root = p.map(Math.sqrt);
    const rootSum = root.reduce((a, b) => a + b);
    close(sample({ temperature: 2 }), root.map((r) => r / rootSum)); // p^(1/2), normalized
    const top2 = sample({ topK: 2 });
    assert.equal(top2[2], 0);
    close(top2, [0.625, 0.375, 0]);
    close(sample({ topK: 3 }), p);
    close(sample({ topK: 50 }), p); // more than the vocabulary: all of it
    const cold = sample({ temperature: 0.05 });
    assert.ok(cold[0] > 0.99, `${cold}`);
  });

  await t.step("topK 1 equals greedy", () => {
    const model = new Sequential([
      new Bigram([[1, 2, 1.5, 0], [2, 0, 0, 1.9], [0, 0, 1, 1.2], [3, 0, 0, 0]]),
    ]);
    const greedy = generate(model, [0], { maxNewTokens: 12, temperature: 0 });
    for (const seed of [1, 2, 3]) {
      assert.deepEqual(generate(model, [0], { maxNewTokens: 12, topK: 1, seed }), greedy);
    }
  });

  await t.step("the context is cropped to contextLength, by default a layer's maxLength", () => {
    // Predicts the context's first token: cropping makes the window slide.
    const slide = new Sequential([new FirstToken(4)]);
    assert.deepEqual(generate(slide, [1, 2, 3], { maxNewTokens: 5, temperature: 0 }), [
      1,
      2,
      3,
      1,
      1,
      1,
      1,
      1,
    ]);
    assert.deepEqual(
      generate(slide, [1, 2, 3], { maxNewTokens: 5, temperature: 0, contextLength: 3 }),
      [1, 2, 3, 1, 2, 3, 1, 2],
    );
    // maxLength found inside nested layers; an explicit contextLength wins.
    const bigram = new Bigram(successorTable(5, (i) => (i + 1) % 5));
    const nested = new Sequential([new Sequential([new Positions(3)]), bigram]);
    const out = generate(nested, [0, 1, 2, 3], { maxNewTokens: 3, temperature: 0 });
    assert.deepEqual(out, [0, 1, 2, 3, 4, 0, 1]);
    assert.deepEqual(bigram.seen, [[1, 2, 3], [2, 3, 4], [3, 4, 0]]);
    bigram.seen.length = 0;
    generate(nested, [0, 1, 2, 3], { maxNewTokens: 2, temperature: 0, contextLength: 1 });
    assert.deepEqual(bigram.seen, [[3], [4]]);
    bigram.seen.length = 0;
    generate(new Sequential([bigram]), [0, 1], { maxNewTokens: 2, temperature: 0 });
    assert.deepEqual(bigram.seen, [[0, 1], [0, 1, 2]]);
  });

  await t.step("bad prompts and options are refused", () => {
    const model = new Sequential([new Bigram(successorTable(3, (i) => i))]);
    const ok = { maxNewTokens: 2 };
    assert.throws(() => generate(model, [], ok), {
      name: "RangeError",
      message: "generate: promptIds is empty; give at least one token to start from",
    });
    assert.throws(() => generate(model, [0, 1.5], ok), {
      name: "RangeError",
      message: "generate: promptIds[1] is 1.5, expected a token id (an integer ≥ 0)",
    });
    assert.throws(() => generate(model, [-1], ok), /promptIds\[0\] is -1/);
    assert.throws(() => generate(model, [NaN], ok), /promptIds\[0\] is NaN/);
    assert.throws(() => generate(model, ["a" as unknown as number], ok), TypeError);
    assert.throws(() => generate(model, "ab" as unknown as number[], ok), TypeError);
    assert.throws(() => generate(model, [0, 3], ok), {
      name: "RangeError",
      message: "generate: promptIds[1] is 3, out of range for the model's 3 logits (ids 0 to 2)",
    });
    for (const maxNewTokens of [-1, 1.5, NaN, undefined]) {
      assert.throws(
        () => generate(model, [0], { maxNewTokens } as { maxNewTokens: number }),
        {
          name: "RangeError",
          message: `generate: options.maxNewTokens must be an integer ≥ 0, got ${maxNewTokens}`,
        },
      );
    }
    for (const temperature of [-0.5, NaN, Infinity]) {
      assert.throws(() => generate(model, [0], { ...ok, temperature }), {
        name: "RangeError",
        message:
          `generate: options.temperature must be a finite number ≥ 0 (0 is greedy), got ${temperature}`,
      });
    }
    for (const topK of [0, 2.5, -1]) {
      assert.throws(
        () => generate(model, [0], { ...ok, topK }),
        /options.topK must be an integer ≥ 1/,
      );
    }
    assert.throws(() => generate(model, [0], { ...ok, contextLength: 0 }), /options.contextLength/);
    assert.throws(() => generate(model, [0], undefined as unknown as typeof ok), TypeError);
    assert.throws(
      () => generate({} as Sequential, [0], ok),
      /generate: model must be a Sequential/,
    );
  });

  await t.step("outputs that are not logits are refused", () => {
    // A layer that reshapes its inputs to `shape(T)`.
    const reshaper = (shape: (steps: number) => number[]): Layer => ({
      kind: "Reshape",
      forward: (x: Tensor) => x.reshape(shape(x.shape[1])),
      backward: (d: Tensor) => d,
      params: () => [],
      config: () => ({}),
      toString: () => "Reshape()",
    });
    const flat = new Sequential([reshaper((steps) => [steps])]);
    assert.throws(() => generate(flat, [0, 1], { maxNewTokens: 1 }), {
      name: "TypeError",
      message:
        "generate: the model's outputs for ids [1, 2] are shaped [2], expected logits [1, 2, vocab] (every position) or [1, vocab] (the last)",
    });
    const deep = new Sequential([reshaper((steps) => [1, steps, 1, 1])]);
    assert.throws(() => generate(deep, [0], { maxNewTokens: 1 }), /shaped \[1, 1, 1, 1\]/);
    const wrongSteps = new Sequential([new Bigram([[0, 1]], true), reshaper(() => [1, 1, 2])]);
    assert.throws(() => generate(wrongSteps, [0, 0], { maxNewTokens: 1 }), /shaped \[1, 1, 2\]/);
    const noVocab = new Sequential([reshaper((steps) => [1, steps, 0])]);
    assert.throws(() => generate(noVocab, [0], { maxNewTokens: 1 }), TypeError);
    const notTensor = new Sequential([{
      ...reshaper(() => []),
      forward: () => 3 as unknown as Tensor,
    }]);
    assert.throws(
      () => generate(notTensor, [0], { maxNewTokens: 1 }),
      /are number, expected logits/,
    );
    const nan = new Sequential([new Bigram([[0, NaN], [0, 0]])]);
    assert.throws(() => generate(nan, [0], { maxNewTokens: 1 }), {
      name: "RangeError",
      message:
        "generate: the model's logit for token 1 at step 0 is NaN; the model's weights or inputs are broken",
    });
    const none = new Sequential([new Bigram([[-Infinity, -Infinity], [0, 0]], false, "float64")]);
    assert.throws(() => generate(none, [0], { maxNewTokens: 1 }), /every logit .* is -Infinity/);
    // -Infinity marks a token impossible.
    const masked = new Sequential([new Bigram([[-Infinity, 0], [0, -Infinity]], false, "float64")]);
    assert.deepEqual(generate(masked, [0], { maxNewTokens: 4, seed: 1 }), [0, 1, 0, 1, 0]);
  });
});

// Every window of `context` characters of the periodic `text` (one per phase), with the
// next character of each position as its target.
function periodicWindows(tok: CharTokenizer, text: string, context: number): [Tensor, Tensor] {
  const period = [...text].length;
  const ids = tok.encode(text.repeat(Math.ceil((context + 1) / period) + 1));
  const x = Tensor.zeros([period, context]); // [period, T]
  const y = Tensor.zeros([period, context]); // [period, T]
  for (let p = 0; p < period; p++) {
    for (let t = 0; t < context; t++) {
      x.data[p * context + t] = ids[p + t];
      y.data[p * context + t] = ids[p + t + 1];
    }
  }
  return [x, y];
}

Deno.test("a tiny GPT and an LSTM trained on a periodic text continue it under greedy decoding", async (t) => {
  const period = "hello world ";
  const tok = CharTokenizer.fromText(period);
  const context = 8;
  const [x, y] = periodicWindows(tok, period, context);
  const expected = period.repeat(4).slice(0, 5 + 30); // "hello" and 30 more characters
  // A window's first position sees one character: after "l" comes "l", "o" or "d", after
  // "o" a space or "r"; every later position is determined. The least mean loss over the
  // 12 phases × 8 positions is thus (3·ln 3 + 2·ln 2) / 96 ≈ 0.0488.
  const IRREDUCIBLE = (3 * Math.log(3) + 2 * Math.log(2)) / (12 * context);
  const train = (model: Sequential, epochs: number, learningRate: number) => {
    const history = model.fit(x, y, {
      loss: new SoftmaxCrossEntropy(),
      optimizer: new Adam({ learningRate }),
      epochs,
    });
    return history.loss.at(-1)!;
  };

  await t.step("GPT (context cropped to its PositionalEmbedding's maxLength)", () => {
    const random = new RandomState(1);
    const dim = 16;
    const model = new Sequential([
      new Embedding(tok.size, dim, { random }),
      new PositionalEmbedding(context, dim, { random }),
      new Residual([new LayerNorm(dim), new MultiHeadAttention(dim, 2, { causal: true, random })]),
      new Residual([
        new LayerNorm(dim),
        new Dense(dim, 2 * dim, { random }),
        new GELU(),
        new Dense(2 * dim, dim, { random }),
      ]),
      new LayerNorm(dim),
      new Dense(dim, tok.size, { random }),
    ]);
    const untrained = tok.decode(
      generate(model, tok.encode("hello"), { maxNewTokens: 30, temperature: 0 }),
    );
    assert.notEqual(untrained, expected);
    const loss = train(model, 150, 0.02);
    assert.ok(loss < IRREDUCIBLE + 0.03, `loss ${loss}`);
    const out = generate(model, tok.encode("hello"), { maxNewTokens: 30, temperature: 0 });
    assert.equal(tok.decode(out), expected);
  });

  await t.step("LSTM", () => {
    const random = new RandomState(2);
    const model = new Sequential([
      new Embedding(tok.size, 8, { random }),
      new LSTM(8, 32, { random }),
      new Dense(32, tok.size, { random }),
    ]);
    const loss = train(model, 150, 0.03);
    assert.ok(loss < IRREDUCIBLE + 0.03, `loss ${loss}`);
    const out = generate(model, tok.encode("hello"), {
      maxNewTokens: 30,
      temperature: 0,
      contextLength: context,
    });
    assert.equal(tok.decode(out), expected);
  });
});
