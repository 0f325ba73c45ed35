// A character-level language model, trained on a text file and sampled as it learns:
//   deno run --allow-read examples/char_lm.ts            (deno task textgen)
import { parseArgs } from "node:util";
import {
  Adam,
  type Callback,
  CharTokenizer,
  CosineDecay,
  Dense,
  Embedding,
  GELU,
  generate,
  GRU,
  History,
  historyPlot,
  type Layer,
  LayerNorm,
  LSTM,
  MultiHeadAttention,
  PositionalEmbedding,
  RandomState,
  Residual,
  Sequential,
  SoftmaxCrossEntropy,
  Tensor,
} from "../mod.ts";
import { integerFlag, usageError } from "./_cli.ts";
import { requireWrite } from "./_fashion.ts";

const PROGRAM = "char_lm";
const DEFAULT_TEXT = "/usr/share/dict/words";
const MODELS = ["gpt", "lstm", "gru"] as const;
type ModelKind = typeof MODELS[number];

const HELP = `Train a character-level language model on a text file and print samples as it
learns: before training, after every epoch, and at the end.

  gpt    Embedding(vocab, 64) + PositionalEmbedding(context, 64) → 2 pre-norm transformer
         blocks (LayerNorm → causal MultiHeadAttention(64, 4 heads); LayerNorm → Dense(64, 256)
         → GELU → Dense(256, 64), each around a Residual) → LayerNorm → Dense(64, vocab)
  lstm   Embedding(vocab, 64) → LSTM(64, 128) → Dense(128, vocab)
  gru    Embedding(vocab, 64) → GRU(64, 128) → Dense(128, vocab)

Every position predicts the next character (softmax cross-entropy over the vocabulary,
averaged over the positions). The last 10% of the text is held out for validation. An
epoch is --steps steps on fresh windows of --context characters drawn at random from the
first 90%. Adam, learning rate 0.01 after a linear warmup (50 steps, fewer in short runs), falling along a
cosine to a tenth of that by the end; gradients clipped to a global norm of 1. Samples
start from a newline (the text's first character if it has none). The defaults train in
about a minute on two cores (gpt; lstm and gru are faster).

Usage: deno run --allow-read examples/char_lm.ts [options]

Options:
  --model KIND      gpt (default), lstm or gru
  --text FILE       the text to learn (default ${DEFAULT_TEXT}, one word per line,
                    from: apt-get install wamerican)
  --epochs N        epochs (default 5)
  --steps N         training steps per epoch (default 250)
  --context T       characters per window, the model's context (default 32)
  --batch N         windows per step (default 32)
  --lines MODE      shuffle: put the text's lines in a random order (by the seed) before
                    the split, so that a sorted list teaches its words rather than their
                    order; keep: leave the text as it is. Default: shuffle for the word
                    list, keep for --text FILE
  --temperature X   sampling temperature, 0 for greedy (default 0.8)
  --sample N        characters per sample (default 120)
  --seed S          seed of the weights, the windows and the samples (default 0)
  --plot FILE.svg   write the loss curves as SVG (needs --allow-write)
  --save FILE       save the model with its tokenizer as safetensors (needs --allow-write);
                    load them with loadModel(FILE) and
                    CharTokenizer.fromJSON(metadata.tokenizer)
  --help            show this help`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "gpt" },
    text: { type: "string" },
    lines: { type: "string" },
    epochs: { type: "string", default: "5" },
    steps: { type: "string", default: "250" },
    context: { type: "string", default: "32" },
    batch: { type: "string", default: "32" },
    temperature: { type: "string", default: "0.8" },
    sample: { type: "string", default: "120" },
    seed: { type: "string", default: "0" },
    plot: { type: "string" },
    save: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}

const flag = (name: string, text: string, min: number, max?: number) =>
  integerFlag(PROGRAM, HELP, name, text, min, max);
const kind = values.model as ModelKind;
if (!MODELS.includes(kind)) {
  usageError(PROGRAM, `--model must be gpt, lstm or gru, got "${values.model}"`, HELP);
}
const epochs = flag("epochs", values.epochs, 1);
const steps = flag("steps", values.steps, 1);
const context = flag("context", values.context, 1);
const batch = flag("batch", values.batch, 1);
const sampleLength = flag("sample", values.sample, 0);
const seed = flag("seed", values.seed, 0, 0xfffffff0);
const textPath = values.text ?? DEFAULT_TEXT;
const lines = values.lines ?? (values.text === undefined ? "shuffle" : "keep");
if (lines !== "shuffle" && lines !== "keep") {
  usageError(PROGRAM, `--lines must be shuffle or keep, got "${lines}"`, HELP);
}
const temperature = Number(values.temperature);
if (!(values.temperature.trim() !== "" && temperature >= 0 && Number.isFinite(temperature))) {
  usageError(PROGRAM, `--temperature must be a number ≥ 0, got "${values.temperature}"`, HELP);
}

requireWrite(PROGRAM, [["plot", values.plot], ["save", values.save]]);

let text: string;
try {
  text = await Deno.readTextFile(textPath);
} catch (error) {
  const hint = values.text === undefined && error instanceof Deno.errors.NotFound
    ? `\nThe default text is Debian's word list: apt-get install wamerican, or pass --text FILE.`
    : "";
  console.error(`${PROGRAM}: cannot read ${textPath}: ${(error as Error).message}${hint}`);
  Deno.exit(1);
}
if (text.length === 0) {
  console.error(`${PROGRAM}: ${textPath} is empty`);
  Deno.exit(1);
}
if (lines === "shuffle") {
  // The word list is sorted: in order, a word mostly repeats the previous one's beginning.
  const all = text.split("\n");
  const last = text.endsWith("\n") ? all.pop()! : undefined; // "" after a final newline
  const order = new RandomState(seed + 2).permutation(all.length);
  text = Array.from(order, (i) => all[i]).join("\n") + (last === undefined ? "" : "\n");
}

const tokenizer = CharTokenizer.fromText(text);
const ids = tokenizer.encode(text); // [characters]
const split = Math.floor(ids.length * 0.9);
if (split < context + 1 || ids.length - split < context + 1) {
  console.error(
    `${PROGRAM}: ${textPath} has ${ids.length} characters; --context ${context} needs at ` +
      `least ${context + 1} in both the training 90% and the validation 10% (` +
      `${Math.ceil((context + 1) / 0.1)} in all): pass a longer text or a shorter --context`,
  );
  Deno.exit(1);
}
const vocab = tokenizer.size;
console.log(
  `${textPath}${lines === "shuffle" ? " (lines shuffled)" : ""}: ${ids.length} characters, ` +
    `${vocab} distinct; training on the first ${split}, validating on the last ${
      ids.length - split
    }`,
);

// Windows of `context` ids starting at `starts`, with the next character of each position.
function windows(starts: ArrayLike<number>): { x: Tensor; y: Tensor } {
  const count = starts.length;
  const x = Tensor.zeros([count, context]); // [n, T] ids
  const y = Tensor.zeros([count, context]); // [n, T] the ids one character later
  for (let i = 0; i < count; i++) {
    const start = starts[i], row = i * context;
    for (let t = 0; t < context; t++) {
      x.data[row + t] = ids[start + t];
      y.data[row + t] = ids[start + t + 1];
    }
  }
  return { x, y };
}

// `count` window starts at random in the training part.
function trainingStarts(count: number, random: RandomState): Int32Array {
  const starts = new Int32Array(count);
  for (let i = 0; i < count; i++) starts[i] = random.randint(split - context);
  return starts;
}

// Up to 256 windows spread evenly over the validation part.
function validationStarts(): Int32Array {
  const room = ids.length - split - context; // ≥ 1
  const count = Math.min(256, Math.floor(room / context) || 1);
  const starts = new Int32Array(count);
  for (let i = 0; i < count; i++) starts[i] = split + Math.floor((i * room) / count);
  return starts;
}

function buildModel(random: RandomState): Sequential {
  const dim = 64;
  if (kind === "gpt") {
    const heads = 4;
    const block = (): Layer[] => [
      new Residual([
        new LayerNorm(dim),
        new MultiHeadAttention(dim, heads, { causal: true, random }),
      ]),
      new Residual([
        new LayerNorm(dim),
        new Dense(dim, 4 * dim, { random }),
        new GELU(),
        new Dense(4 * dim, dim, { random }),
      ]),
    ];
    return new Sequential([
      new Embedding(vocab, dim, { random }),
      new PositionalEmbedding(context, dim, { random }),
      ...block(),
      ...block(),
      new LayerNorm(dim),
      new Dense(dim, vocab, { random }),
    ]);
  }
  const hidden = 128;
  const Recurrent = kind === "lstm" ? LSTM : GRU;
  return new Sequential([
    new Embedding(vocab, dim, { random }),
    new Recurrent(dim, hidden, { random }),
    new Dense(hidden, vocab, { random }),
  ]);
}

const model = buildModel(new RandomState(seed));
const loss = new SoftmaxCrossEntropy();
const warmupSteps = Math.min(50, Math.floor((epochs * steps) / 10));
const optimizer = new Adam({
  learningRate: 0.01,
  globalClipNorm: 1,
  schedule: new CosineDecay({ steps: epochs * steps, minFactor: 0.1, warmupSteps }),
});
console.log(
  `${model.summary()}\n${optimizer}, ${epochs} epochs of ${steps} steps, ` +
    `${batch} windows of ${context} characters a step`,
);

const prompt = tokenizer.chars.includes("\n") ? "\n" : [...text][0];
const promptIds = tokenizer.encode(prompt);
function sample(title: string, length = sampleLength): void {
  const out = generate(model, promptIds, {
    maxNewTokens: length,
    temperature,
    seed,
    contextLength: context,
  });
  console.log(`--- ${title} ---\n${tokenizer.decode(out.slice(promptIds.length))}\n---`);
}

sample(`sample before training (temperature ${temperature})`);
const validation = windows(validationStarts());
const random = new RandomState(seed + 1);
const history = new History();
// fit runs one epoch per call, on fresh windows: it starts at `epoch` and this callback ends
// it there, so the progress line reads "Epoch e/epochs".
const oneEpoch: Callback = {
  onEpochEnd(_epoch, _logs, state) {
    state.stopTraining = true;
  },
};
const started = performance.now();
for (let epoch = 0; epoch < epochs; epoch++) {
  const { x, y } = windows(trainingStarts(steps * batch, random));
  model.fit(x, y, {
    loss,
    optimizer,
    epochs,
    initialEpoch: epoch,
    batchSize: batch,
    seed,
    validationData: validation,
    verbose: 1,
    callbacks: [oneEpoch],
    onEpoch: (e, logs) => history.record(e, logs),
  });
  if (epoch < epochs - 1) sample(`sample after epoch ${epoch + 1}`); // the last: below
}
const seconds = (performance.now() - started) / 1000;
console.log(
  `trained in ${seconds.toFixed(1)} s (${(seconds / epochs).toFixed(1)} s per epoch, ` +
    `samples and validation included); validation loss ${history.valLoss.at(-1)!.toFixed(4)} ` +
    `nats per character`,
);
sample(
  `final sample (prompt ${JSON.stringify(prompt)}, temperature ${temperature})`,
  2 * sampleLength,
);
if (values.plot) {
  await Deno.writeTextFile(values.plot, historyPlot(history));
  console.log(`wrote ${values.plot}`);
}
if (values.save) {
  await model.save(values.save, { metadata: { tokenizer: tokenizer.toJSON() } });
  console.log(
    `saved ${values.save} (load it with loadModel, the tokenizer with ` +
      `CharTokenizer.fromJSON(metadata.tokenizer))`,
  );
}
