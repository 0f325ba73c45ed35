import { describe, describeKind } from "./_describe.ts";
import { type RandomOptions, resolveRandom } from "./random.ts";

/** Element type of a tensor: `"float32"` (the default) or `"float64"` (for verification). */
export type DType = "float32" | "float64";

/** The flat storage behind a tensor. */
export type FloatArray = Float32Array | Float64Array;

/** Numbers nested as deeply as the tensor has dimensions (a plain number for a scalar). */
export type NestedArray = number | ArrayLike<number> | readonly NestedArray[];

/** Options shared by the tensor constructors. */
export interface TensorOptions {
  /** Element type; `"float32"` when omitted. */
  dtype?: DType;
}

// The budget `withAllocationBudget` sets: what `allocate` may still hand out, and for whom.
interface AllocationBudget {
  left: number; // bytes
  readonly total: number; // bytes
  readonly where: string;
  readonly why: string;
  exceeded?: AllocationBudgetError; // the first refusal, rethrown by withAllocationBudget
}
const budgets: AllocationBudget[] = [];

/** What `allocate` (or a layer's `checkAllocation`) throws past a budget; see withAllocationBudget. */
export class AllocationBudgetError extends RangeError {
  /** Creates the error; `message` names the budget's owner, the bytes asked and left. */
  constructor(message: string) {
    super(message);
    this.name = "AllocationBudgetError";
  }
}

function refuse(budget: AllocationBudget, what: string, bytes: number): never {
  const error = new AllocationBudgetError(
    `${budget.where}: refusing to allocate ${what} (${bytes} bytes): ` +
      `only ${budget.left} of the ${budget.total} bytes ${budget.why} are left`,
  );
  budget.exceeded ??= error;
  throw error;
}

/**
 * Refuses `bytes` (what `what` describes: `new Dense's weights [3, 4]`) when they pass the
 * budget of the innermost {@linkcode withAllocationBudget}, without counting them: a layer
 * calls it before allocating its params, so the error can name it. Does nothing outside a
 * budget.
 *
 * @throws {AllocationBudgetError} past the budget.
 */
export function checkAllocationBudget(what: string, bytes: number): void {
  const budget = budgets.at(-1);
  if (budget && !(bytes <= budget.left)) refuse(budget, what, bytes);
}

/**
 * Allocates a zeroed flat array of the given dtype. Inside {@linkcode withAllocationBudget}
 * the bytes are counted against the budget first, and an allocation past it is refused.
 *
 * @throws {RangeError} past the budget, naming the budget's owner, the bytes asked and left.
 */
export function allocate(dtype: DType, length: number): FloatArray {
  const budget = budgets.at(-1);
  if (budget) {
    const bytes = length * (dtype === "float64" ? 8 : 4);
    if (!(bytes <= budget.left)) refuse(budget, `${length} ${dtype} elements`, bytes);
    budget.left -= bytes;
  }
  return dtype === "float64" ? new Float64Array(length) : new Float32Array(length);
}

/**
 * Runs `build` with every {@linkcode allocate} counted against `bytes`: the first
 * allocation past it throws, before any memory is taken. A loader uses it to build layers
 * from an untrusted file's config, with a budget derived from the tensors the file holds, so
 * that a small file cannot declare a gigantic layer. `why` ends the error message
 * (`"the file's tensors allow"`). Budgets nest; the innermost counts. If the budget was
 * exceeded, the refusal is rethrown even when `build` caught it and threw another error.
 *
 * @throws {AllocationBudgetError} (a `RangeError`) when `build` allocates more than `bytes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tensor } from "@chainrule/nn";
 * import { withAllocationBudget } from "@chainrule/nn/plugin";
 *
 * const small = withAllocationBudget(1024, "example", "the budget allows", () => Tensor.zeros([16]));
 * assert.equal(small.size, 16);
 * assert.throws(
 *   () => withAllocationBudget(1024, "example", "the budget allows", () => Tensor.zeros([1e9])),
 *   /example: refusing to allocate 1000000000 float32 elements \(4000000000 bytes\)/,
 * );
 * ```
 */
export function withAllocationBudget<T>(
  bytes: number,
  where: string,
  why: string,
  build: () => T,
): T {
  const budget: AllocationBudget = { left: bytes, total: bytes, where, why };
  budgets.push(budget);
  try {
    return build();
  } catch (error) {
    throw budget.exceeded ?? error;
  } finally {
    budgets.splice(budgets.indexOf(budget), 1);
  }
}

/** The dtype of a flat array. */
export function dtypeOf(data: FloatArray): DType {
  return data instanceof Float64Array ? "float64" : "float32";
}

/** Formats a shape the way error messages show it: `[8, 4]`. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function checkShape(shape: readonly number[], where: string): number {
  let size = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new TypeError(
        `${where}: shape ${formatShape(shape)} must hold non-negative integers, got ${
          describe(dim)
        }`,
      );
    }
    size *= dim;
  }
  return size;
}

function isArrayLevel(value: unknown): value is ArrayLike<NestedArray> {
  return Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
}

function inferShape(value: NestedArray, where: string, argument: string): number[] {
  const shape: number[] = [];
  let level: unknown = value;
  while (typeof level !== "number") {
    if (!isArrayLevel(level)) {
      const at = shape.length === 0 ? "" : ` at depth ${shape.length}`;
      throw new TypeError(
        `${where}: ${argument} must be a Tensor or nested arrays of numbers, got ${
          describeKind(level)
        }${at}`,
      );
    }
    shape.push(level.length);
    if (level.length === 0) break;
    level = level[0];
  }
  return shape;
}

function flattenInto(
  value: NestedArray,
  shape: readonly number[],
  depth: number,
  out: FloatArray,
  offset: number,
  where: string,
): number {
  if (depth === shape.length) {
    if (typeof value !== "number") {
      throw new TypeError(
        `${where}: ragged nesting, expected a number at depth ${depth}, got ${describeKind(value)}`,
      );
    }
    out[offset] = value;
    return offset + 1;
  }
  if (!isArrayLevel(value) || value.length !== shape[depth]) {
    const got = isArrayLevel(value) ? `length ${value.length}` : describeKind(value);
    throw new TypeError(
      `${where}: ragged nesting, expected length ${shape[depth]} at depth ${depth}, got ${got}`,
    );
  }
  const items = value as ArrayLike<NestedArray>;
  for (let i = 0; i < items.length; i++) {
    offset = flattenInto(items[i], shape, depth + 1, out, offset, where);
  }
  return offset;
}

/**
 * An n-dimensional array: a shape plus a flat row-major typed array.
 *
 * Memory is ordinary garbage-collected memory; there is nothing to dispose.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tensor } from "@chainrule/nn";
 *
 * const t = Tensor.from([[1, 2], [3, 4]], { dtype: "float64" });
 * assert.deepEqual(t.shape, [2, 2]);
 * assert.equal(t.get(1, 0), 3);
 * assert.deepEqual(t.toArray(), [[1, 2], [3, 4]]);
 * ```
 */
export class Tensor {
  /** Sizes of the dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Row-major elements; its length is the product of `shape`. */
  readonly data: FloatArray;

  /**
   * Wraps existing storage without copying it.
   *
   * @throws {TypeError} when the data length does not match the shape.
   */
  constructor(data: FloatArray, shape: readonly number[]) {
    const size = checkShape(shape, "new Tensor");
    if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) {
      throw new TypeError("new Tensor: data must be a Float32Array or Float64Array");
    }
    if (data.length !== size) {
      throw new TypeError(
        `new Tensor: data has ${data.length} elements, shape ${formatShape(shape)} needs ${size}`,
      );
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
  }

  /** Builds a tensor by copying nested arrays (or a flat typed array, as a vector). */
  static from(values: NestedArray, options: TensorOptions = {}): Tensor {
    return fromNested(values, options.dtype ?? "float32", "Tensor.from", "values");
  }

  /** A tensor of zeros. */
  static zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
    return new Tensor(
      allocate(options.dtype ?? "float32", checkShape(shape, "Tensor.zeros")),
      shape,
    );
  }

  /**
   * A tensor of standard normal deviates, `scale`·N(0, 1), drawn in row-major order.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tensor } from "@chainrule/nn";
   *
   * const a = Tensor.randn([2, 3], { seed: 1 });
   * assert.deepEqual(a.data, Tensor.randn([2, 3], { seed: 1 }).data);
   * ```
   */
  static randn(
    shape: readonly number[],
    options: TensorOptions & RandomOptions & { scale?: number } = {},
  ): Tensor {
    const t = Tensor.zeros(shape, options);
    const random = resolveRandom(options);
    const scale = options.scale ?? 1;
    for (let i = 0; i < t.size; i++) t.data[i] = scale * random.randn();
    return t;
  }

  /** A tensor with every element set to `value`. */
  static filled(shape: readonly number[], value: number, options: TensorOptions = {}): Tensor {
    const t = Tensor.zeros(shape, options);
    t.data.fill(value);
    return t;
  }

  /** Element type of the storage. */
  get dtype(): DType {
    return dtypeOf(this.data);
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** Reads one element by its indices, one per dimension. */
  get(...indices: number[]): number {
    return this.data[this.#offsetOf(indices, "Tensor.get")];
  }

  /** Writes one element by its indices, one per dimension. */
  set(value: number, ...indices: number[]): void {
    this.data[this.#offsetOf(indices, "Tensor.set")] = value;
  }

  /** A deep copy, optionally converted to another dtype. */
  clone(options: TensorOptions = {}): Tensor {
    const data = allocate(options.dtype ?? this.dtype, this.size);
    data.set(this.data);
    return new Tensor(data, this.shape);
  }

  /** The same storage seen with another shape of the same size. */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.data, shape);
  }

  /**
   * The elements as nested plain arrays (a number for a scalar).
   *
   * Pass the nesting you expect as the type argument: `t.toArray<number[][]>()`.
   */
  toArray<T extends NestedArray = NestedArray>(): T {
    if (this.shape.length === 0) return this.data[0] as T;
    const build = (depth: number, offset: number, stride: number): NestedArray => {
      const length = this.shape[depth];
      const out: NestedArray[] = new Array(length);
      const inner = stride / (length || 1);
      for (let i = 0; i < length; i++) {
        out[i] = depth === this.shape.length - 1
          ? this.data[offset + i]
          : build(depth + 1, offset + i * inner, inner);
      }
      return out;
    };
    return build(0, 0, this.size) as T;
  }

  /** A one-line summary: `Tensor(float32, [2, 3])`. */
  toString(): string {
    return `Tensor(${this.dtype}, ${formatShape(this.shape)})`;
  }

  #offsetOf(indices: number[], where: string): number {
    if (indices.length !== this.shape.length) {
      throw new RangeError(
        `${where}: expected ${this.shape.length} indices for shape ${
          formatShape(this.shape)
        }, got ${indices.length}`,
      );
    }
    let offset = 0;
    for (let d = 0; d < indices.length; d++) {
      const i = indices[d];
      if (!Number.isInteger(i) || i < 0 || i >= this.shape[d]) {
        throw new RangeError(
          `${where}: index ${i} is out of range for dimension ${d} of shape ${
            formatShape(this.shape)
          }`,
        );
      }
      offset = offset * this.shape[d] + i;
    }
    return offset;
  }
}

/** Anything a model accepts as input data: a tensor, or nested arrays of numbers. */
export type TensorLike = Tensor | NestedArray;

function fromNested(values: NestedArray, dtype: DType, where: string, argument: string): Tensor {
  const shape = inferShape(values, where, argument);
  const data = allocate(dtype, checkShape(shape, where));
  flattenInto(values, shape, 0, data, 0, where);
  return new Tensor(data, shape);
}

/**
 * Returns `value` as a tensor of `dtype`, copying only when it must.
 *
 * @throws {TypeError} naming `where` and `argument` when `value` is neither a tensor nor
 * nested arrays of numbers, or is ragged.
 */
export function toTensor(
  value: TensorLike,
  dtype: DType,
  where = "toTensor",
  argument = "x",
): Tensor {
  if (value instanceof Tensor) return value.dtype === dtype ? value : value.clone({ dtype });
  return fromNested(value, dtype, where, argument);
}

/**
 * Checks that `tensor` is 2-D with a non-empty batch and returns `[batch, features]`.
 *
 * @throws {TypeError} naming `where` and the shape received.
 */
export function expectMatrix(
  tensor: Tensor,
  where: string,
  argument: string,
  features?: number,
): [number, number] {
  if (!(tensor instanceof Tensor)) {
    throw new TypeError(`${where}: ${argument} must be a Tensor, got ${describeKind(tensor)}`);
  }
  if (tensor.rank !== 2) {
    throw new TypeError(
      `${where}: ${argument} must be 2-D [batch, features], got shape ${formatShape(tensor.shape)}`,
    );
  }
  const [batch, cols] = tensor.shape;
  if (batch === 0) {
    throw new RangeError(
      `${where}: ${argument} is an empty batch (shape ${formatShape(tensor.shape)})`,
    );
  }
  if (features !== undefined && cols !== features) {
    throw new TypeError(
      `${where}: ${argument} has ${cols} features per sample, expected ${features} (${argument} shape ${
        formatShape(tensor.shape)
      })`,
    );
  }
  return [batch, cols];
}
