// Command-line scaffolding shared by the training examples.

/** The `parseArgs` options every training example takes. */
export const trainingFlags = {
  epochs: { type: "string", default: "10001" },
  seed: { type: "string", default: "0" },
  "print-every": { type: "string", default: "1000" },
  help: { type: "boolean", default: false },
} as const;

/** The help lines of {@linkcode trainingFlags} (the seed's meaning is the example's). */
export function trainingHelp(seed: string): string {
  return `  --epochs N        full-batch epochs (default 10001, as the book)
  --seed S          ${seed}
  --print-every N   print progress every N epochs (default 1000)
  --help            show this help`;
}

/** Prints `message` and the usage to stderr, then exits with status 2. */
export function usageError(program: string, message: string, help: string): never {
  console.error(`${program}: ${message}\n\n${help}`);
  Deno.exit(2);
}

/**
 * Reads the integer flag `--name` (from `min` to `max`), or exits through
 * {@linkcode usageError}.
 */
export function integerFlag(
  program: string,
  help: string,
  name: string,
  text: string,
  min: number,
  max = Infinity,
): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `≥ ${min}` : `in [${min}, ${max}]`;
    usageError(program, `--${name} must be an integer ${range}, got "${text}"`, help);
  }
  return value;
}
