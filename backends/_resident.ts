// Layers' reusable training buffers (core/_scratch.ts) placed in the shared kernels' memory,
// so that the convolutions and ReLU read and write them where they lie instead of copying
// them in and out of the memory on the calling thread, which in a W4 step moved more bytes
// than the kernels did.
//
// A shared memory never detaches when it grows, so a view of it stays valid for as long as
// anything holds it. That is also why a block is never freed: a buffer's array may be gone
// while a subarray of it is still held, and there is no knowing, so reusing the block could
// change a tensor under its holder's feet. Instead the blocks are capped in total: past the
// cap a layer gets an ordinary array, which the kernels copy as before. A layer allocates
// its buffers once per batch shape, so a process that trains a few models stays well below.
import type { DType, FloatArray } from "../core/tensor.ts";

/** Buffers shorter than this are not worth placing: their copies cost less than a call. */
export const RESIDENT_MIN_ELEMENTS = 1 << 16;
/** The most bytes all resident buffers together may take (they are never freed). */
export const RESIDENT_MAX_BYTES = 1 << 28;

const BLOCK_ALIGN = 128; // bytes: 16 elements of float64 (the kernels align their scratch so)

/**
 * The resident blocks of one shared memory, allocated upward from byte 0; the kernels keep
 * their per-call scratch above {@linkcode ResidentHeap.top}.
 */
export class ResidentHeap {
  readonly #memory: WebAssembly.Memory;
  readonly #maxBytes: number;
  #top = 0; // bytes in use, a multiple of BLOCK_ALIGN
  // The memory's buffer objects that views were made of: a new one appears after each grow,
  // and each view keeps the one it was made of.
  readonly #buffers = new WeakSet<ArrayBufferLike>();

  /** Blocks of `memory`, at most `maxBytes` in all (tests lower it). */
  constructor(memory: WebAssembly.Memory, maxBytes: number = RESIDENT_MAX_BYTES) {
    this.#memory = memory;
    this.#maxBytes = maxBytes;
  }

  /** Bytes the resident blocks take: the kernels' scratch starts here. */
  get top(): number {
    return this.#top;
  }

  /**
   * A zeroed array of `length` elements of `dtype` in the memory, or undefined when it would
   * pass the cap. (The backend asks only for {@linkcode RESIDENT_MIN_ELEMENTS} or more.)
   */
  allocate(dtype: DType, length: number): FloatArray | undefined {
    const bytes = dtype === "float64" ? 8 : 4;
    const size = Math.ceil((length * bytes) / BLOCK_ALIGN) * BLOCK_ALIGN;
    if (this.#top + size > this.#maxBytes) return undefined;
    const at = this.#top;
    const memory = this.#memory;
    const grownFrom = memory.buffer.byteLength;
    const missing = at + size - grownFrom;
    if (missing > 0) memory.grow(Math.ceil(missing / 65536));
    const buffer = memory.buffer;
    this.#buffers.add(buffer);
    this.#top = at + size;
    const view = dtype === "float64"
      ? new Float64Array(buffer, at, length)
      : new Float32Array(buffer, at, length);
    // The kernels' scratch may have used the bytes below the memory's old end. Those past it
    // are fresh zero pages that nothing has touched: left alone, each page is faulted in by
    // the thread that first writes it (the pool's, in parallel) instead of all here. A page
    // fault costs this machine's VM about 3.5 ms a MiB, W5's first step 97 MiB of them.
    const used = Math.min(length, Math.ceil((grownFrom - at) / bytes));
    if (used > 0) view.fill(0, 0, used);
    return view;
  }

  /** `array`'s byte offset in the memory when it lies in a resident block, else −1. */
  offsetOf(array: ArrayBufferView): number {
    const inside = this.#buffers.has(array.buffer) &&
      array.byteOffset + array.byteLength <= this.#top;
    return inside ? array.byteOffset : -1;
  }
}
