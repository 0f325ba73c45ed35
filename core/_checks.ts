// Argument checks shared by plugins; exported for plugin authors from the plugin entry.
import { describe, describeKind } from "./_describe.ts";
import { formatShape, Tensor } from "./tensor.ts";

/**
 * Checks that `inputs` is a tensor.
 *
 * @throws {TypeError} naming `where`.
 */
export function expectTensor(inputs: Tensor, where: string): void {
  if (!(inputs instanceof Tensor)) {
    throw new TypeError(`${where}: inputs must be a Tensor, got ${describeKind(inputs)}`);
  }
}

/**
 * Checks that `dvalues` has the shape and dtype of `cached` (what the last forward saw) and
 * returns `cached`.
 *
 * @throws {Error} when forward has not run; {TypeError} when `dvalues` does not match.
 */
export function expectLike(
  dvalues: Tensor,
  cached: Tensor | undefined,
  where: string,
  cachedName = "inputs",
): Tensor {
  if (!cached) throw new Error(`${where}: call forward first`);
  const same = dvalues instanceof Tensor && dvalues.dtype === cached.dtype &&
    dvalues.rank === cached.rank && dvalues.shape.every((d, i) => d === cached.shape[i]);
  if (!same) {
    const got = dvalues instanceof Tensor
      ? `${dvalues.dtype} ${formatShape(dvalues.shape)}`
      : describeKind(dvalues);
    throw new TypeError(
      `${where}: dvalues is ${got}, expected ${cached.dtype} ${
        formatShape(cached.shape)
      } like the last forward's ${cachedName}`,
    );
  }
  return cached;
}

/** Checks an optimizer hyper-parameter and returns it. */
export function checkHyper(
  where: string,
  name: string,
  value: number,
  min = 0,
  max = Infinity,
): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    const range = max === Infinity ? `≥ ${min}` : `in [${min}, ${max}]`;
    throw new RangeError(
      `${where}: ${name} must be a finite number ${range}, got ${describe(value)}`,
    );
  }
  return value;
}
