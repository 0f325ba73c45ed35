import type { Backend } from "./backend.ts";
import { allocate, type DType, Tensor } from "./tensor.ts";

/**
 * The reusable buffers behind a layer's training tensors: asking twice for the same dtype
 * and shape returns the same tensor, so a training step allocates nothing once the batch
 * shape has been seen. It remembers two shapes, so that an epoch's smaller last batch does
 * not evict the full-batch buffer.
 */
export class Scratch {
  #recent?: Tensor;
  #older?: Tensor;

  /**
   * A tensor of `dtype` and `shape` whose contents are whatever was last written to it; a new
   * one is placed by `backend` where it offers to (`Backend.allocate`).
   */
  get(dtype: DType, shape: readonly number[], backend?: Pick<Backend, "allocate">): Tensor {
    const recent = this.#recent;
    if (recent && matches(recent, dtype, shape)) return recent;
    const older = this.#older;
    if (older && matches(older, dtype, shape)) {
      this.#older = recent;
      this.#recent = older;
      return older;
    }
    let size = 1;
    for (const dim of shape) size *= dim;
    const fresh = new Tensor(backend?.allocate?.(dtype, size) ?? allocate(dtype, size), shape);
    this.#older = recent;
    this.#recent = fresh;
    return fresh;
  }
}

function matches(tensor: Tensor, dtype: DType, shape: readonly number[]): boolean {
  if (tensor.dtype !== dtype || tensor.shape.length !== shape.length) return false;
  for (let d = 0; d < shape.length; d++) if (tensor.shape[d] !== shape[d]) return false;
  return true;
}
