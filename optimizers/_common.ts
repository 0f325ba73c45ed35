// What the built-in optimizers share: per-parameter buffers and their save/restore, the
// schedule's part of toString(). Not exported from mod.ts.
import type { Backend } from "../core/backend.ts";
import type { OptimizerState } from "../core/optimizer.ts";
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
        `${where}: scalars.iterations must be an integer ≥ 0, got ${iterations}`,
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
