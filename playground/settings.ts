// The playground's settings: one plain object that the page's form edits, the worker trains
// from, and a downloaded model carries in its metadata so that loading it restores the form.

/** The data sets the playground offers. */
export const DATASETS = ["spiral", "circles", "xor", "blobs"] as const;
/** A data set's name. */
export type DatasetName = typeof DATASETS[number];
/** The hidden layers' activations. */
export const ACTIVATIONS = ["ReLU", "LeakyReLU", "Tanh", "Sigmoid"] as const;
/** An activation's kind. */
export type ActivationName = typeof ACTIVATIONS[number];
/** The optimizers. */
export const OPTIMIZERS = ["SGD", "RMSprop", "Adam"] as const;
/** An optimizer's kind. */
export type OptimizerName = typeof OPTIMIZERS[number];

/** Everything that decides what the playground trains, and how. */
export interface Settings {
  /** Which data set. */
  dataset: DatasetName;
  /** Classes, 2–5 (the spiral and the blobs; circles and XOR always have 2). */
  classes: number;
  /** Noise level in [0, 1]; each data set scales it (the spiral's 0.2 is the book's). */
  noise: number;
  /** Points in all, training and validation together. */
  points: number;
  /** Fraction of the points held out for validation, in [0, 0.5]. */
  validation: number;
  /** Seed of the data, the initial weights and the dropout masks. */
  seed: number;
  /** Units of each hidden layer, input side first; empty for none. */
  hidden: number[];
  /** The activation after each hidden layer. */
  activation: ActivationName;
  /** The optimizer. */
  optimizer: OptimizerName;
  /** Its (initial) learning rate. */
  learningRate: number;
  /** SGD's momentum, in [0, 1). */
  momentum: number;
  /** L2 penalty on the hidden layers' weights and biases. */
  l2: number;
  /** Dropout rate after each hidden activation, in [0, 0.9]. */
  dropout: number;
  /** Samples per step; 0 for the whole training set at once (as the book trains). */
  batchSize: number;
}

/** The book's spiral and network: 300 points, 3 classes, Dense(2, 64) → ReLU → Dense(64, 3), Adam. */
export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  dataset: "spiral",
  classes: 3,
  noise: 0.2,
  points: 300,
  validation: 0.2,
  seed: 0,
  hidden: [64],
  activation: "ReLU",
  optimizer: "Adam",
  learningRate: 0.05,
  momentum: 0.9,
  l2: 0,
  dropout: 0,
  batchSize: 0,
});

/** The learning rates the book uses with each optimizer, offered when one is picked. */
export const BOOK_LEARNING_RATES: Readonly<Record<OptimizerName, number>> = Object.freeze({
  SGD: 1,
  RMSprop: 0.02,
  Adam: 0.05,
});

/** Whether a data set lets the user choose its number of classes. */
export function hasClassChoice(dataset: DatasetName): boolean {
  return dataset === "spiral" || dataset === "blobs";
}

/** The settings keys whose change needs new data or a new model (the rest only a new optimizer). */
export const REBUILD_KEYS: readonly (keyof Settings)[] = [
  "dataset",
  "classes",
  "noise",
  "points",
  "validation",
  "seed",
  "hidden",
  "activation",
  "l2",
  "dropout",
];

/** Whether going from `before` to `after` needs new data or a new model. */
export function needsRebuild(before: Settings, after: Settings): boolean {
  return REBUILD_KEYS.some((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
}

type Check = (value: unknown) => boolean;
const inRange = (min: number, max: number, integer = false): Check => (value) =>
  typeof value === "number" && Number.isFinite(value) && value >= min && value <= max &&
  (!integer || Number.isInteger(value));
const oneOf = (choices: readonly string[]): Check => (value) =>
  typeof value === "string" && choices.includes(value);

/** What each setting accepts, in words for error messages and as a check. */
const RULES: Record<keyof Settings, [string, Check]> = {
  dataset: [`one of ${DATASETS.join(", ")}`, oneOf(DATASETS)],
  classes: ["an integer in [2, 5]", inRange(2, 5, true)],
  noise: ["a number in [0, 1]", inRange(0, 1)],
  points: ["an integer in [20, 2000]", inRange(20, 2000, true)],
  validation: ["a number in [0, 0.5]", inRange(0, 0.5)],
  seed: ["an integer in [0, 2147483646]", inRange(0, 2 ** 31 - 2, true)],
  hidden: [
    "a list of at most 6 layer sizes, each 1–256",
    (value) => Array.isArray(value) && value.length <= 6 && value.every(inRange(1, 256, true)),
  ],
  activation: [`one of ${ACTIVATIONS.join(", ")}`, oneOf(ACTIVATIONS)],
  optimizer: [`one of ${OPTIMIZERS.join(", ")}`, oneOf(OPTIMIZERS)],
  learningRate: ["a number in (0, 10]", (value) => inRange(0, 10)(value) && value !== 0],
  momentum: ["a number in [0, 1)", (value) => inRange(0, 1)(value) && value !== 1],
  l2: ["a number in [0, 1]", inRange(0, 1)],
  dropout: ["a number in [0, 0.9]", inRange(0, 0.9)],
  batchSize: ["an integer in [0, 2000] (0: all)", inRange(0, 2000, true)],
};

/** What a setting accepts, in words: `"an integer in [2, 5]"`. */
export function describeSetting(key: keyof Settings): string {
  return RULES[key][0];
}

/** The first field of `record` that is missing or out of range, if any. */
export function invalidField(record: Record<string, unknown>): keyof Settings | undefined {
  return (Object.keys(RULES) as (keyof Settings)[]).find((key) => !RULES[key][1](record[key]));
}

/**
 * Checks every field of `value` and returns it as {@linkcode Settings}.
 *
 * @throws {TypeError} naming the first field that is missing or out of range, what it
 * accepts and what it holds.
 */
export function checkSettings(value: unknown, where = "checkSettings"): Settings {
  if (!value || typeof value !== "object") {
    throw new TypeError(`${where}: settings must be an object, got ${value}`);
  }
  const record = value as Record<string, unknown>;
  const key = invalidField(record);
  if (key) {
    throw new TypeError(
      `${where}: ${key} must be ${RULES[key][0]}, got ${JSON.stringify(record[key])}`,
    );
  }
  const settings = {} as Record<string, unknown>;
  for (const key of Object.keys(RULES)) settings[key] = record[key];
  return settings as unknown as Settings;
}
