// What the built-in optimizers share: per-parameter buffers and their save/restore, the
// schedule's part of toString(), gradient clipping. Not exported from mod.ts.
import { describe } from "../core/_describe.ts";
import type { Backend } from "../core/backend.ts";
import type { JsonObject } from "../core/json.ts";
import type { ClipOptions, OptimizerState } from "../core/optimizer.ts";
import type { Param } from "../core/param.ts";
import type { LearningRateSchedule } from "../core/schedule.ts";
import { allocate, type FloatArray, formatShape, Tensor } from "../core/tensor.ts";

/** Named buffers shaped like each param (`"momentum"`, `"cache"`), zeroed on first use. */
export class Slots<S extends string> {
  readonly names: readonly S[];
  #buffers = new Map<Param, Record<S, FloatArray>>();

  constructor(names: readonly S[]) {
    this.names = names;
  }

  /**
   * The buffers of `param`, created zeroed in its dtype on first use, placed by `backend`
   * where it offers to (`Backend.allocate`: the wasm backend's Adam then updates them where
   * they lie).
   */
  of(param: Param, backend?: Pick<Backend, "allocate">): Record<S, FloatArray> {
    let buffers = this.#buffers.get(param);
    if (!buffers) {
      buffers = {} as Record<S, FloatArray>;
      for (const name of this.names) {
        const size = param.value.size;
        buffers[name] = backend?.allocate?.(param.dtype, size) ?? allocate(param.dtype, size);
      }
      this.#buffers.set(param, buffers);
    }
    return buffers;
  }

  /** `getState`'s answer: the update count and copies of every buffer of `params`. */
  state(params: readonly Param[], iterations: number): OptimizerState {
    const slots: Record<string, Tensor[]> = {};
    for (const name of this.names) {
      slots[name] = params.map((p) => new Tensor(this.of(p)[name].slice(), p.value.shape));
    }
    return { scalars: { iterations }, slots };
  }

  /**
   * Restores buffers taken with {@linkcode Slots.state}, all or none, and returns the
   * saved update count.
   *
   * @throws {TypeError} naming `where` when the count is not an integer ≥ 0, or a slot is
   * missing or does not match its param.
   */
  restore(
    params: readonly Param[],
    state: OptimizerState,
    where: string,
    backend?: Pick<Backend, "allocate">,
  ): number {
    const iterations = state?.scalars?.iterations;
    if (!Number.isSafeInteger(iterations) || iterations < 0) {
      throw new TypeError(
        `${where}: scalars.iterations must be an integer ≥ 0, got ${describe(iterations)}`,
      );
    }
    params.forEach((param, i) => {
      for (const name of this.names) {
        const saved = state.slots?.[name]?.[i];
        if (!saved || saved.size !== param.value.size) {
          const got = saved ? formatShape(saved.shape) : "nothing";
          throw new TypeError(
            `${where}: slot "${name}" of param ${i} must have shape ${
              formatShape(param.value.shape)
            }, got ${got}`,
          );
        }
      }
    });
    params.forEach((param, i) => {
      for (const name of this.names) {
        this.of(param, backend)[name].set(state.slots[name][i].data);
      }
    });
    return iterations;
  }
}

/** `, decay=…` or `, schedule=…` for an optimizer's `toString()`, or nothing. */
export function describeSchedule(decay: number, schedule?: LearningRateSchedule): string {
  return schedule ? `, schedule=${schedule}` : decay ? `, decay=${decay}` : "";
}

/** An optimizer's checked clipping settings: `{}` clips nothing. */
export type Clipping = Readonly<ClipOptions>;

function checkClip(where: string, name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(
      `${where}: ${name} must be a positive finite number, got ${describe(value)}`,
    );
  }
  return value;
}

/**
 * The clipping `options` ask for, checked.
 *
 * @throws {RangeError} naming `where` when `globalClipNorm` or `clipValue` is given and is
 * not a positive finite number.
 */
export function resolveClipping(where: string, options: ClipOptions): Clipping {
  return {
    globalClipNorm: checkClip(where, "globalClipNorm", options.globalClipNorm),
    clipValue: checkClip(where, "clipValue", options.clipValue),
  };
}

// g ← clamp(g, −v, v), then with s = √Σ g² over all params: g ← g·max / (s + 1e-6) when that is < 1
/**
 * Clips the gradients of `params` in place as `clipping` asks: each element to
 * [−clipValue, clipValue] first, then all of them together to the global L2 norm
 * `globalClipNorm`, as `torch.nn.utils.clip_grad_value_` and `clip_grad_norm_` do.
 *
 * @returns the global norm before norm clipping (after value clipping), or NaN when no
 * norm clipping is asked for (it is not computed).
 * @throws {RangeError} naming `where` when the norm is NaN or infinite, before any
 * gradient is scaled.
 */
export function clipGradients(params: readonly Param[], clipping: Clipping, where: string): number {
  const { clipValue, globalClipNorm } = clipping;
  if (clipValue !== undefined) {
    for (const param of params) {
      const grad = param.grad.data;
      for (let i = 0; i < grad.length; i++) {
        const g = grad[i];
        if (g > clipValue) grad[i] = clipValue;
        else if (g < -clipValue) grad[i] = -clipValue;
      }
    }
  }
  if (globalClipNorm === undefined) return NaN;
  let squares = 0;
  for (const param of params) {
    const grad = param.grad.data;
    let sum = 0;
    for (let i = 0; i < grad.length; i++) sum += grad[i] * grad[i];
    squares += sum;
  }
  const norm = Math.sqrt(squares);
  if (!Number.isFinite(norm)) {
    throw new RangeError(
      `${where}: the global gradient norm is ${norm}, so globalClipNorm cannot rescale it; ` +
        "the step was not taken (a gradient holds NaN or ±Infinity: lower the learning rate " +
        "or look for a bad value in the data)",
    );
  }
  const coefficient = globalClipNorm / (norm + 1e-6);
  if (coefficient < 1) {
    for (const param of params) {
      const grad = param.grad.data;
      for (let i = 0; i < grad.length; i++) grad[i] *= coefficient;
    }
  }
  return norm;
}

/** `{ globalClipNorm, clipValue }` for an optimizer's config: only those that are set. */
export function clipConfig(clipping: Clipping): JsonObject {
  const { globalClipNorm, clipValue } = clipping;
  return {
    ...(globalClipNorm === undefined ? {} : { globalClipNorm }),
    ...(clipValue === undefined ? {} : { clipValue }),
  };
}

/** `, globalClipNorm=1, clipValue=0.5` for an optimizer's `toString()`, or nothing. */
export function describeClipping(clipping: Clipping): string {
  const { globalClipNorm, clipValue } = clipping;
  return (globalClipNorm === undefined ? "" : `, globalClipNorm=${globalClipNorm}`) +
    (clipValue === undefined ? "" : `, clipValue=${clipValue}`);
}
