// Builds an optimizer from command-line flags, for the examples: the book's chapter-10
// settings for the spiral are each optimizer's defaults, and --learning-rate, --decay,
// --momentum and --weight-decay override them.
import { AdaGrad, Adam, AdamW, type Optimizer, RMSprop, SGD } from "../mod.ts";

/** An optimizer that reports its current step size (every built-in one does). */
export type ReportingOptimizer = Optimizer & { readonly currentLearningRate: number };

interface Settings {
  learningRate: number;
  decay: number;
  momentum?: number;
  weightDecay?: number;
}

// The book's settings for the spiral (Adam's are also the spiral example's default).
const BOOK: Record<string, Settings & { make: (s: Settings) => ReportingOptimizer }> = {
  sgd: { learningRate: 1, decay: 1e-3, momentum: 0, make: (s) => new SGD(s) },
  "sgd-momentum": { learningRate: 1, decay: 1e-3, momentum: 0.9, make: (s) => new SGD(s) },
  adagrad: { learningRate: 1, decay: 1e-4, make: (s) => new AdaGrad(s) },
  rmsprop: {
    learningRate: 0.02,
    decay: 1e-5,
    make: (s) => new RMSprop({ ...s, rho: 0.999 }),
  },
  adam: { learningRate: 0.05, decay: 5e-7, make: (s) => new Adam(s) },
  adamw: { learningRate: 0.05, decay: 5e-7, weightDecay: 0.01, make: (s) => new AdamW(s) },
};

/** The `parseArgs` options of the optimizer flags. */
export const optimizerFlags = {
  optimizer: { type: "string", default: "adam" },
  "learning-rate": { type: "string" },
  decay: { type: "string" },
  momentum: { type: "string" },
  "weight-decay": { type: "string" },
} as const;

/** The help lines of the optimizer flags. */
export const optimizerHelp = `  --optimizer NAME  ${
  Object.keys(BOOK).join(", ")
} (default adam), with the book's settings:
                    sgd lr 1 decay 1e-3 (sgd-momentum: momentum 0.9), adagrad lr 1 decay 1e-4,
                    rmsprop lr 0.02 decay 1e-5 rho 0.999, adam lr 0.05 decay 5e-7,
                    adamw as adam with weight decay 0.01
  --learning-rate X initial step size
  --decay X         the book's inverse-time decay: lr / (1 + X·step)
  --momentum X      momentum of sgd, in [0, 1]
  --weight-decay X  decoupled weight decay of adamw`;

/** Parses a number flag, or returns `fallback` when it is absent. */
export function numberFlag(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) {
    throw new RangeError(`--${name} must be a number, got "${text}"`);
  }
  return value;
}

/**
 * The optimizer the flags ask for.
 *
 * @throws {RangeError} for an unknown name, a flag the optimizer does not take, or a value
 * the optimizer rejects.
 */
export function optimizerFromFlags(
  values: { [K in keyof typeof optimizerFlags]?: string },
): ReportingOptimizer {
  const name = values.optimizer ?? "adam";
  const book = Object.hasOwn(BOOK, name) ? BOOK[name] : undefined;
  if (!book) {
    throw new RangeError(
      `--optimizer must be one of ${Object.keys(BOOK).join(", ")}, got "${name}"`,
    );
  }
  for (const [flag, key] of [["momentum", "momentum"], ["weight-decay", "weightDecay"]] as const) {
    if (values[flag] !== undefined && book[key] === undefined) {
      throw new RangeError(`--${flag} does not apply to --optimizer ${name}`);
    }
  }
  const settings: Settings = {
    learningRate: numberFlag("learning-rate", values["learning-rate"], book.learningRate),
    decay: numberFlag("decay", values.decay, book.decay),
  };
  if (book.momentum !== undefined) {
    settings.momentum = numberFlag("momentum", values.momentum, book.momentum);
  }
  if (book.weightDecay !== undefined) {
    settings.weightDecay = numberFlag("weight-decay", values["weight-decay"], book.weightDecay);
  }
  return book.make(settings);
}
