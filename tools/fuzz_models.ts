// Mutates saved models and loads them: every load must give a valid model (one that saves to
// the same bytes it loads from) or a typed error naming the loader, never a crash, a stack
// overflow, the runtime's allocation failure, or memory past a ceiling.
// tests/model_fuzz_test.ts runs a few thousand cases; this script runs as many as you ask:
//
//   deno run -A tools/fuzz_models.ts [cases=100000] [seed=1]
import {
  Adam,
  AvgPool2D,
  BatchNorm,
  Conv2D,
  decodeSafetensors,
  Dense,
  Dropout,
  Embedding,
  encodeSafetensors,
  Flatten,
  GELU,
  GlobalAvgPool2D,
  GRU,
  layerKinds,
  LayerNorm,
  LeakyReLU,
  Linear,
  LSTM,
  MaxPool2D,
  MeanSquaredError,
  modelFromBytes,
  modelToBytes,
  MultiHeadAttention,
  PositionalEmbedding,
  RandomState,
  ReLU,
  Residual,
  SafetensorsError,
  Sequential,
  Sigmoid,
  Softmax,
  Tanh,
  Tensor,
} from "../mod.ts";

/** A model with one layer of every built-in kind (they need not fit together to load). */
export function everyKind(): Sequential {
  return new Sequential([
    new Dense(3, 4, { seed: 1 }),
    new ReLU(),
    new BatchNorm(4),
    new Dropout(0.1),
    new LeakyReLU(),
    new GELU(),
    new Sigmoid(),
    new Tanh(),
    new Softmax(),
    new Linear(),
    new LayerNorm(4),
    new Residual([new Dense(4, 4, { seed: 2 }), new ReLU()]),
    new Conv2D(1, 2, 3, { seed: 3 }),
    new MaxPool2D(2),
    new AvgPool2D(2),
    new GlobalAvgPool2D(),
    new Flatten(),
    new Embedding(5, 4, { seed: 4 }),
    new PositionalEmbedding(6, 4, { seed: 5 }),
    new MultiHeadAttention(4, 2, { seed: 6 }),
    new LSTM(4, 3, { seed: 7 }),
    new GRU(3, 2, { seed: 8 }),
    new Sequential([new Dense(2, 2, { seed: 9, dtype: "float64" })]),
  ]);
}

/** The files the mutations start from: every kind, and a nested model saved with Adam. */
export function seedFiles(): Uint8Array[] {
  const nested = new Sequential([
    new Sequential([new Sequential([new Dense(2, 3, { seed: 1 })]), new ReLU()]),
    new Residual([new Sequential([new Dense(3, 3, { seed: 2 })])]),
    new Dense(3, 1, { seed: 3 }),
  ]);
  const adam = new Adam();
  nested.fit([[1, 2], [3, 4]], [[1], [0]], {
    loss: new MeanSquaredError(),
    optimizer: adam,
    epochs: 1,
    batchSize: 2,
  });
  return [everyKind().toBytes(), modelToBytes(nested, { optimizer: adam })];
}

const NUMBERS = [0, -1, 1, 2, 3, 1.5, 1e9, 2 ** 31, 2 ** 53, 1e300, 1300, 100000, -0.5];
const ODD = [null, "72", "same", "full", true, [], {}, [3, 3], [1, 2, 3], "", "Dense"];

/** Mutations of a saved model: of its architecture's JSON, its tensors, and its bytes. */
export class ModelMutator {
  constructor(readonly rng: RandomState) {}

  int(n: number): number {
    return Math.floor(this.rng.random() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  // Every object and array in a JSON tree, with its parent's key path.
  #nodes(root: unknown): (Record<string, unknown> | unknown[])[] {
    const out: (Record<string, unknown> | unknown[])[] = [];
    const visit = (value: unknown) => {
      if (typeof value !== "object" || value === null) return;
      out.push(value as Record<string, unknown>);
      for (const item of Object.values(value)) visit(item);
    };
    visit(root);
    return out;
  }

  // The layer objects ({ kind, config }) of a model spec.
  #layers(root: unknown): Record<string, unknown>[] {
    return this.#nodes(root).filter((node) =>
      !Array.isArray(node) && typeof node.kind === "string" && typeof node.config === "object"
    ) as Record<string, unknown>[];
  }

  architecture(spec: Record<string, unknown>): Record<string, unknown> {
    const layers = this.#layers(spec);
    if (layers.length === 0) return spec;
    const layer = this.pick(layers);
    const config = (layer.config ?? {}) as Record<string, unknown>;
    const keys = Object.keys(config);
    switch (this.int(10)) {
      case 0: // a number becomes another, possibly huge
      case 1: {
        const key = keys.length ? this.pick(keys) : "units";
        config[key] = this.pick(NUMBERS);
        break;
      }
      case 2: // a value of another type
        if (keys.length) config[this.pick(keys)] = this.pick(ODD);
        break;
      case 3: // a key removed
        if (keys.length) delete config[this.pick(keys)];
        break;
      case 4: // another kind
        layer.kind = this.pick([...layerKinds(), "NoSuchLayer", "constructor", "__proto__"]);
        break;
      case 5: // a layer copied next to itself, or into a list elsewhere
      case 6: {
        const lists = this.#nodes(spec).filter(Array.isArray).filter((list) =>
          list.every((item) => typeof item === "object" && item !== null && "kind" in item)
        ) as unknown[][];
        if (lists.length) this.pick(lists).splice(0, 0, structuredClone(layer));
        break;
      }
      case 7: { // the model wrapped in Sequentials, up to past the depth limit
        const depth = 1 + this.int(40);
        let inner: Record<string, unknown> = { kind: "Sequential", config: spec.config };
        for (let i = 1; i < depth; i++) {
          inner = { kind: "Sequential", config: { layers: [inner] } };
        }
        return { kind: "Sequential", config: { layers: [inner] } };
      }
      case 8: // config replaced wholesale
        layer.config = this.pick([null, [], "x", 1, {}]);
        break;
      default: { // layers of a container shuffled or cut
        const list = (config.layers ?? []) as unknown[];
        if (Array.isArray(list) && list.length > 1) {
          const i = this.int(list.length);
          const [item] = list.splice(i, 1);
          if (this.int(2)) list.push(item);
        }
      }
    }
    return spec;
  }

  tensors(tensors: Record<string, Tensor>): void {
    const names = Object.keys(tensors);
    if (names.length === 0) return;
    const name = this.pick(names);
    const tensor = tensors[name];
    switch (this.int(5)) {
      case 0:
        delete tensors[name];
        break;
      case 1: // a value that is not finite, or one float32 cannot hold
        if (tensor.size > 0) {
          const wide = Tensor.zeros(tensor.shape, { dtype: "float64" });
          wide.data.set(tensor.data);
          wide.data[this.int(tensor.size)] = this.pick([NaN, Infinity, -Infinity, 1e300]);
          tensors[name] = wide;
        }
        break;
      case 2: // another shape, same elements
        tensors[name] = new Tensor(tensor.data, [tensor.size]);
        break;
      case 3: // an extra tensor
        tensors[`${name}.extra`] = Tensor.zeros([1 + this.int(3)]);
        break;
      default: // renamed
        delete tensors[name];
        tensors[name.replace(/\d/, String(this.int(10)))] = tensor;
    }
  }

  bytes(bytes: Uint8Array): Uint8Array {
    const out = bytes.slice();
    switch (this.int(4)) {
      case 0:
        for (let k = 0; k <= this.int(4); k++) out[this.int(out.length)] ^= 1 << this.int(8);
        return out;
      case 1:
        out[this.int(out.length)] = this.int(256);
        return out;
      case 2:
        return out.subarray(0, this.int(out.length));
      default: {
        const at = this.int(out.length);
        return new Uint8Array([...out.subarray(0, at), ...out.subarray(at + 1 + this.int(8))]);
      }
    }
  }

  /** One to three mutations of a saved model's file. */
  file(seed: Uint8Array): Uint8Array {
    const file = decodeSafetensors(seed);
    const tensors: Record<string, Tensor> = {};
    for (const [name, entry] of file.tensors) {
      tensors[name] = new Tensor(entry.data as Float32Array | Float64Array, entry.shape);
    }
    const metadata = { ...file.metadata };
    let spec = JSON.parse(metadata["chainrule.model"]);
    const steps = 1 + this.int(3);
    let byteLevel = false;
    for (let k = 0; k < steps; k++) {
      const what = this.int(10);
      if (what < 6) spec = this.architecture(spec);
      else if (what < 9) this.tensors(tensors);
      else byteLevel = true;
    }
    metadata["chainrule.model"] = JSON.stringify(spec);
    const bytes = encodeSafetensors(tensors, metadata);
    return byteLevel ? this.bytes(bytes) : bytes;
  }
}

/** What a fuzz run saw. */
export interface FuzzReport {
  /** Cases run. */
  cases: number;
  /** How many ended in each outcome: `valid`, a `SafetensorsError` code, `TypeError`, `RangeError`. */
  outcomes: Map<string, number>;
  /** The highest resident memory seen after a case, in bytes. */
  maxRss: number;
  /** The slowest case, in milliseconds. */
  slowestMs: number;
}

// Errors the runtime throws on its own: what a typed error must never be.
const RUNTIME =
  /Maximum call stack|Invalid typed array length|Array buffer allocation failed|out of memory|Invalid array length/i;

/**
 * Runs `cases` mutated loads from `seed`. Throws on the first case that ends in anything but a
 * valid model or a typed error naming `modelFromBytes`, or that takes memory past `maxRss`.
 */
export function fuzzModels(cases: number, seed: number, maxRss = 2e9): FuzzReport {
  const rng = new RandomState(seed);
  const mutate = new ModelMutator(rng);
  const seeds = seedFiles();
  const report: FuzzReport = { cases, outcomes: new Map(), maxRss: 0, slowestMs: 0 };
  const warn = console.warn;
  for (let i = 0; i < cases; i++) {
    const bytes = mutate.file(mutate.pick(seeds));
    const start = performance.now();
    let outcome = "valid";
    try {
      const allowNonFinite = rng.random() < 0.1;
      if (allowNonFinite) console.warn = () => {};
      const { model, optimizer } = modelFromBytes(bytes, { allowNonFinite });
      // A valid model saves to the bytes it was loaded from, minus any mutation that the
      // encoder normalizes (padding), so it is compared with its own round trip.
      const again = modelToBytes(model, { optimizer });
      const copy = modelFromBytes(again, { allowNonFinite: true });
      if (copy.model.toString() !== model.toString()) {
        throw new Error(`case ${i}: a loaded model does not round-trip: ${model}`);
      }
    } catch (error) {
      const typed = error instanceof SafetensorsError || error instanceof TypeError ||
        error instanceof RangeError;
      const message = (error as Error)?.message ?? String(error);
      if (!typed || !message.startsWith("modelFromBytes: ") || RUNTIME.test(message)) {
        throw new Error(`case ${i}: expected a typed error, got ${error}`, { cause: error });
      }
      outcome = error instanceof SafetensorsError ? error.code : (error as Error).name;
    } finally {
      console.warn = warn;
    }
    const ms = performance.now() - start;
    if (ms > report.slowestMs) report.slowestMs = ms;
    const rss = Deno.memoryUsage().rss;
    if (rss > report.maxRss) report.maxRss = rss;
    if (rss > maxRss) throw new Error(`case ${i}: resident memory ${rss} bytes, over ${maxRss}`);
    report.outcomes.set(outcome, (report.outcomes.get(outcome) ?? 0) + 1);
  }
  return report;
}

if (import.meta.main) {
  const cases = Number(Deno.args[0] ?? 100_000);
  const seed = Number(Deno.args[1] ?? 1);
  console.warn = () => {}; // allowNonFinite's warnings
  const start = performance.now();
  const report = fuzzModels(cases, seed);
  const seconds = (performance.now() - start) / 1000;
  console.log(
    `${cases} cases (seed ${seed}) in ${seconds.toFixed(1)} s; ` +
      `max RSS ${(report.maxRss / 1e6).toFixed(0)} MB; slowest case ${
        report.slowestMs.toFixed(0)
      } ms`,
  );
  const sorted = [...report.outcomes].sort((a, b) => b[1] - a[1]);
  for (const [outcome, count] of sorted) console.log(`  ${outcome}: ${count}`);
}
