import type {
  AdamHyper,
  AttentionShape,
  Backend,
  BatchNormArrays,
  BatchNormPass,
  RightProduct,
} from "../core/backend.ts";
import { batchNormPass } from "./_wasm_batch_norm.ts";
import type { FloatArray } from "../core/tensor.ts";
import { formatBytes } from "../core/_allocation.ts";
import { sumRowsByGroup } from "../core/row_groups.ts";
import type { ConvGeometry, PoolGeometry } from "../core/backend.ts";
import { adamLoop, jsBackend } from "./js.ts";
import { convBackward, convElements, convForward } from "./_wasm_conv.ts";
import {
  winogradConvElements,
  winogradConvolution,
  winogradWeightElements,
  winogradWeightGradient,
  winogradWork,
} from "./_wasm_winograd.ts";
import { type WinogradConvShape, winogradPlaneScratch } from "./_winograd_tasks.ts";
import { maxPoolBackward, maxPoolForward } from "./_wasm_pool.ts";
import { writeAdamDescriptor } from "./_adam_task.ts";
import {
  type LstmCellKernels,
  recurrentScratch,
  writeRecurrentDescriptor,
} from "./_recurrent_tasks.ts";
import { attentionScratch, writeAttentionDescriptor } from "./_attention_tasks.ts";
import { runTasks, spans } from "./_tasks.ts";
import {
  type WinogradSizes,
  type WinogradTransforms,
  writeWinogradDescriptor,
} from "./_conv_tasks.ts";
import { JS_MODULE, type TaskHost, type TaskKernelExports } from "./_task_context.ts";
import { RESIDENT_MIN_ELEMENTS, ResidentHeap } from "./_resident.ts";
import {
  PLAIN_KERNELS,
  PLAIN_KERNELS_F64,
  RELAXED_KERNELS,
  RELAXED_KERNELS_F64,
  SHARED_PLAIN_KERNELS,
  SHARED_PLAIN_KERNELS_F64,
  SHARED_RELAXED_KERNELS,
  SHARED_RELAXED_KERNELS_F64,
  TILE,
  TILE_F64,
} from "./_wasm_kernels.ts";
import {
  type JobReport,
  MAX_TASKS,
  type PoolTiming,
  type TaskFunction,
  WorkerPool,
} from "./pool.ts";
import {
  disableThreads,
  getThreads,
  onThreadsChange,
  recordThreadFailure,
  threadsUnavailable,
} from "./threads.ts";

// The wasm backend copies each operand into a scratch area of the module's memory
// (one memcpy, ~1% of a 1024³ product), packs it into panels there and runs the SIMD
// kernels (one module for float32, one for float64); the result is copied back. The
// exception: layers' large training buffers (`allocate`) live in the shared memory of the
// threads' builds, which never detaches, and the convolutions, ReLU and max pooling read and
// write them where they lie (backends/_resident.ts); every call's scratch starts above them.
//
// Threads (backends/threads.ts, pool.ts): where workers are available, both modules are the
// builds that import one shared memory, and a product of at least PARALLEL_THRESHOLD
// multiply-adds is cut into tasks that the calling thread and the pool's workers claim:
// first the packing of panels, then tiles of the output (rows × columns). The reduction is
// never split, so each output element is summed by the same kernel in the same order on
// any thread: the same bits for any thread count. The copies in and out stay on the
// calling thread (the caller's arrays are not shared).

// gemm(lp, rp, c, m, n, k, ldc, load, scratch) and the four packings, as the convolution
// tasks call them too, then the rest.
interface KernelExports extends TaskKernelExports {
  memory?: WebAssembly.Memory; // absent from the shared builds, which import theirs
  addBias(c: number, bias: number, m: number, n: number): void;
  sumRows(a: number, out: number, m: number, n: number): void;
  relu(x: number, out: number, n: number): void;
  reluBackward(x: number, dvalues: number, out: number, n: number): void;
  /** The float32 build only (see tools/wasm/kernels.ts). */
  cubicMap?(
    x: number,
    w: number,
    out: number,
    n: number,
    table: number,
    intervals: number,
    list: number,
  ): void;
  /** The float32 build only (see tools/wasm/kernels.ts), likewise the next. */
  layerNormForward?(x: number, y: number, rows: number, params: number, stats: number): void;
  layerNormBackward?(
    x: number,
    dv: number,
    dx: number,
    rows: number,
    params: number,
    stats: number,
    partials: number,
  ): void;
  dotRows(a: number, bt: number, c: number, m: number, k: number, n: number, load: number): void;
  outerRows(
    a: number,
    b: number,
    c: number,
    m: number,
    k: number,
    n: number,
    load: number,
    lda: number,
  ): void;
}

/** Which WebAssembly kernels this runtime can run. */
export type WasmSupport = "relaxed-simd" | "simd" | "none";

function decode(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// Element offsets of the scratch areas, 16-element aligned.
const align = (floats: number) => (floats + 15) & ~15;

/** Element type of a kernel module. */
export type WasmFloat = "f32" | "f64";

/**
 * Products of at least this many multiply-adds (m·k·n) are split across the worker pool;
 * smaller ones stay on the calling thread, where the hand-off (waking a worker, a second
 * job for the packing, a few µs each) would cost more than it saves. Measured with
 * `bench/threads.ts` (docs/speed.md): two threads break even near 0.3 M multiply-adds.
 */
export const PARALLEL_THRESHOLD = 1 << 20;

/** How products are cut into tasks (see {@linkcode parallelTuning}). */
export interface ParallelTuning {
  /** Products of at least this many multiply-adds go to the pool. */
  threshold: number;
  /** A packing task copies at least this many elements. */
  minPackTask: number;
  /** A product task does at least this many multiply-adds. */
  minTask: number;
  /** A job has this many tasks per thread, or more where tasks would exceed `maxTask`. */
  tasksPerThread: number;
  /** A product task does at most about this many multiply-adds (where `minTask` allows). */
  maxTask: number;
  /** Back off to one thread on a busy machine ({@linkcode contentionBackoff}). */
  backoff: boolean;
  /**
   * The wasm backend runs a convolution whose inputs, outputs and gradients hold at most this
   * many elements; Conv2D lowers a larger one itself, chunk by chunk (the backend's
   * convolution copies them whole into the kernels' memory, at most 4 GiB).
   */
  convElements: number;
  /**
   * The bytes of WebAssembly memory a call may use: {@linkcode WASM_MEMORY_BYTES} (4 GiB) by
   * default. A product past it is computed in blocks of output rows and columns (the same
   * bits), a convolution on fewer threads or lowered by Conv2D; tests lower it.
   */
  memoryBytes: number;
}

// Several tasks per thread, so that a thread descheduled on a loaded machine leaves the
// rest of the job to the others, and at most ~0.7 ms each, so that the threads finish
// within a fraction of a task of each other (W3's 2.1 G multiply-add products in 8 tasks
// left the caller waiting up to 13 ms of 60); tasks big enough that the claim (a
// compare-and-swap and a call, ~0.1 µs) and the re-reading of panels stay small.
const TUNING: Readonly<ParallelTuning> = {
  threshold: PARALLEL_THRESHOLD,
  minPackTask: 1 << 14,
  minTask: 1 << 18,
  tasksPerThread: 4,
  maxTask: 1 << 25,
  backoff: true,
  convElements: 1 << 26,
  memoryBytes: 2 ** 32,
};

/**
 * How products are cut into tasks, mutable for benchmarks and tests only (tests set
 * everything to 0 or 1 to send small odd shapes through many tasks);
 * {@linkcode resetParallelTuning} restores it.
 */
export const parallelTuning: ParallelTuning = { ...TUNING };

/** Restores {@linkcode parallelTuning}'s defaults. */
export function resetParallelTuning(): void {
  Object.assign(parallelTuning, TUNING);
}

/**
 * The wasm backend's memory budget: a WebAssembly memory holds at most 65,536 pages of
 * 64 KiB, 4 GiB, the layers' resident training buffers (at most `RESIDENT_MAX_BYTES`)
 * included. Every call copies its operands into it: a product whose copies and packed
 * panels would pass it runs in blocks of output rows and columns (each output element
 * still summed by the same kernel over the whole reduction: the same bits); a convolution
 * whose per-thread scratch would pass it runs on fewer threads (the same bits on any thread
 * count), or goes back to Conv2D, which lowers it sample by sample into such products. Work
 * that cannot be cut so (a reduction too long for even one block of 48 × 48 outputs) fails
 * with an error that says what to do.
 */
export const WASM_MEMORY_BYTES: number = 2 ** 32;

// Output blocks of a product too large for the memory: row boundaries fall on multiples of
// 48 (a multiple of every kernel's mr) and column ones on multiples of 8 (of every nr), so
// that each element keeps its place in its register tile.
const BLOCK_ROWS = 48;
const BLOCK_COLS = 8;

// Copies rows × width elements of `src` (leading dimension `ld`) from column `first` into a
// new compact array: the columns [first, first + width) of a row-major matrix.
function gatherColumns(
  src: FloatArray,
  ld: number,
  rows: number,
  first: number,
  width: number,
): FloatArray {
  const out = new (src.constructor as Float32ArrayConstructor)(rows * width);
  for (let r = 0; r < rows; r++) {
    out.set(src.subarray(r * ld + first, r * ld + first + width), r * width);
  }
  return out;
}

// The inverse of gatherColumns: block [rows, width] into `dst`'s columns from `first`.
function scatterColumns(
  block: FloatArray,
  dst: FloatArray,
  ld: number,
  rows: number,
  first: number,
  width: number,
): void {
  for (let r = 0; r < rows; r++) {
    dst.set(block.subarray(r * width, (r + 1) * width), r * ld + first);
  }
}

// Boundaries of `parts` near-equal blocks of [0, extent), on multiples of `multiple`.
function boundaries(extent: number, parts: number, multiple: number): number[] {
  const cuts = [0];
  for (let i = 1; i < parts; i++) {
    const cut = Math.round((i * extent) / parts / multiple) * multiple;
    if (cut > cuts[cuts.length - 1] && cut < extent) cuts.push(cut);
  }
  cuts.push(extent);
  return cuts;
}

const PRODUCTS = ["matmul", "matmulTransA", "matmulTransB"] as const;

// The arrays of one call, for finding the resident ones.
/** How an LSTM's or a GRU's pool job is sized (see `WasmKernels.#recurrentPlan`). */
interface RecurrentPlan {
  large: boolean; // enough multiply-adds for the pool
  rows: (threads: number) => number; // batch rows a task takes
  scratchLength: (threads: number) => number; // a thread's scratch, elements
  packed: number; // U packed whole panels wide, elements
  copied: number; // room for dvalues copied in, elements
}

type Operands = readonly (FloatArray | Int32Array | null | undefined)[];

const isShared = (array: FloatArray | Int32Array | null | undefined): boolean =>
  !!array && typeof SharedArrayBuffer === "function" &&
  array.buffer instanceof SharedArrayBuffer;

// A packing call: [function, source, leading dimension, rows, cols] (elements).
type PackCall = [
  "packColsL" | "packRowsL" | "packColsR" | "packRowsR",
  number,
  number,
  number,
  number,
];

// A product in parallel: the pool, the kernels' Threads (which run jobs), the caller's name;
// `judge: false` for the memory-bound passes (ReLU, pooling, Adam), whose modest gain on two
// threads says nothing of a busy machine: judged, they backed W4 off the pool ~20 times in 85
// steps, each time sending the next job (a convolution, as often as not) to one thread.
interface Parallel {
  pool: WorkerPool;
  threads: Threads;
  where: string;
  judge?: boolean;
}

/** The multiply-adds of one product of a convolution: N·O·C·KH·KW·OH·OW. */
function convWork(g: ConvGeometry): number {
  return g.batch * g.outChannels * g.channels * g.kernelH * g.kernelW * g.outH * g.outW;
}

/** Tasks for `work` multiply-adds on `threads` threads. */
function taskCount(work: number, threads: number): number {
  const { tasksPerThread, minTask, maxTask } = parallelTuning;
  const wanted = Math.max(threads * tasksPerThread, Math.ceil(work / maxTask));
  return Math.max(1, Math.min(wanted, MAX_TASKS, Math.floor(work / minTask)));
}

/**
 * The output tiles of a product of rowPanels × colPanels register panels of mr × nr
 * elements, `depth` deep: of the splits into at most {@linkcode taskCount} tiles, the one
 * whose tiles share best among the threads (9 tiles on 2 threads leave one idle for a
 * ninth of the time; 8 do not), then the one with the most tiles, then the squarest (a
 * square tile reads the fewest panels per multiply-add).
 */
export function tileGrid(
  rowPanels: number,
  colPanels: number,
  [mr, nr]: [number, number],
  depth: number,
  threads: number,
): { rowPanels: number; colPanels: number; tasks: number } {
  const target = taskCount(rowPanels * colPanels * mr * nr * depth, threads);
  let best = { rowPanels, colPanels, tasks: 1 }, bestScore = [-1, 0, 0];
  for (let rowSplit = 1; rowSplit <= Math.min(target, rowPanels); rowSplit++) {
    const colSplit = Math.min(colPanels, Math.floor(target / rowSplit));
    const rowsEach = Math.ceil(rowPanels / rowSplit), colsEach = Math.ceil(colPanels / colSplit);
    const tasks = Math.ceil(rowPanels / rowsEach) * Math.ceil(colPanels / colsEach);
    const shared = tasks / (threads * Math.ceil(tasks / threads));
    const square = -Math.abs(Math.log((rowsEach * mr) / (colsEach * nr)));
    const score = [shared, tasks, square];
    const better = score.findIndex((x, i) => x !== bestScore[i]);
    if (better >= 0 && score[better] > bestScore[better]) {
      best = { rowPanels: rowsEach, colPanels: colsEach, tasks };
      bestScore = score;
    }
  }
  return best;
}

// Counts the calls that have used some kernels' scratch (every one reserves it first): a
// right operand packed by `prepareRight` is still there while the count is the one its
// last product left.
let scratchUses = 0;

// Where `prepareRight` last packed its operand: which kernels, at which element offset (the
// origin of their scratch then), after how many scratch uses.
interface PackedRight {
  kernels?: WasmKernels;
  at: number;
  uses: number;
}

/** The wasm kernels of one instantiated module, with the copies in and out of its memory. */
export class WasmKernels {
  /** `"relaxed-simd"` (fused multiply-add) or `"simd"` (mul + add). */
  readonly variant: WasmSupport;
  /** The element type the kernels compute in. */
  readonly float: WasmFloat;
  /** The compiled module (workers instantiate the shared builds' module on the same memory). */
  readonly module: WebAssembly.Module;
  /** This thread's instance of {@linkcode module}. */
  readonly instance: WebAssembly.Instance;
  readonly #exports: KernelExports;
  readonly #memory: WebAssembly.Memory;
  readonly #bytes: number; // per element
  readonly #mr: number;
  readonly #nr: number;
  readonly #threads: (() => Threads | null) | undefined;
  readonly #resident: ResidentHeap | undefined; // the shared builds' resident blocks
  #heap: FloatArray;
  readonly #views = new Map<number, FloatArray>(); // by offset, see #slice

  /**
   * Compiles `bytes` synchronously (they are a few kilobytes) or takes a compiled module. With
   * `memory`, the module is a shared build and is instantiated on it; `resident` holds the
   * blocks of that memory that the kernels' scratch must stay above. `threads` gives the
   * shared kernels and their pool to which large products go (created on the first one).
   */
  constructor(
    bytes: Uint8Array | WebAssembly.Module,
    variant: WasmSupport,
    float: WasmFloat = "f32",
    memory?: WebAssembly.Memory,
    threads?: () => Threads | null,
    resident?: ResidentHeap,
  ) {
    this.module = bytes instanceof WebAssembly.Module
      ? bytes
      : new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    this.instance = new WebAssembly.Instance(this.module, memory ? { env: { memory } } : {});
    this.#exports = this.instance.exports as unknown as KernelExports;
    this.#memory = memory ?? this.#exports.memory!;
    this.#threads = threads;
    this.#resident = resident;
    this.float = float;
    this.#bytes = float === "f64" ? 8 : 4;
    ({ mr: this.#mr, nr: this.#nr } = float === "f64" ? TILE_F64 : TILE);
    this.#heap = this.#view();
    this.variant = variant;
  }

  /**
   * heap[at, at + length) as a view, reused across calls: a training step copies its
   * results out through the same few views every time, so it allocates none.
   */
  #slice(at: number, length: number): FloatArray {
    const views = this.#views;
    let view = views.get(at);
    if (view === undefined || view.length !== length || view.buffer !== this.#heap.buffer) {
      if (views.size >= 64) views.clear(); // many shapes: keep the cache small
      view = this.#heap.subarray(at, at + length);
      views.set(at, view);
    }
    return view;
  }

  // The element offset of this call's scratch: above the resident blocks, which only the
  // shared builds have.
  #origin(): number {
    return this.#resident ? this.#resident.top / this.#bytes : 0;
  }

  #view(): FloatArray {
    const buffer = this.#memory.buffer;
    return this.float === "f64" ? new Float64Array(buffer) : new Float32Array(buffer);
  }

  // Grows the memory to hold `floats` elements. Only the calling thread grows it, between
  // jobs; V8 makes grown shared pages visible to every instance at once (checked: 3,000
  // grow-then-use rounds with a worker, with and without explicit bounds checks).
  #reserve(floats: number): FloatArray {
    scratchUses++;
    const memory = this.#memory;
    const bytes = floats * this.#bytes;
    const budget = parallelTuning.memoryBytes;
    let fits = bytes <= budget;
    const missing = bytes - memory.buffer.byteLength;
    if (fits && missing > 0) {
      try {
        memory.grow(Math.ceil(missing / 65536));
      } catch {
        fits = false; // past what the runtime gives: the same advice
      }
    }
    if (!fits) {
      throw new RangeError(
        `wasmBackend: a call needs ${
          formatBytes(bytes)
        } bytes of WebAssembly memory, past the wasm backend's budget of ${
          formatBytes(budget)
        } bytes (WASM_MEMORY_BYTES, 4 GiB at most); use a smaller batch, fewer threads (setThreads(1)), or setBackend("js") for this work`,
      );
    }
    if (this.#heap.buffer !== memory.buffer) this.#heap = this.#view();
    return this.#heap;
  }

  /**
   * c (=|+=) L·R for one of the three products: `kind` 0 = a·b, 1 = aᵀ·b, 2 = a·bᵀ, with
   * m, k, n as in {@linkcode Backend}; then `bias` added to every row of c, if given, before
   * c is copied out (rounded as a separate `addBias` would). A product of at least
   * `parallelTuning.threshold` multiply-adds goes to the shared kernels and their pool when
   * threads are wanted; they run it with `parallel` set.
   *
   * @throws {Error} when a worker thread failed during the product (the next product runs
   * on a fresh pool).
   */
  product(
    kind: 0 | 1 | 2,
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    m: number,
    k: number,
    n: number,
    accumulate: boolean,
    bias?: FloatArray,
    parallel?: Parallel,
  ): void {
    // The output is rows × cols with the reduction `depth`.
    const rows = kind === 1 ? k : m;
    const cols = kind === 2 ? k : n;
    const depth = kind === 0 ? k : kind === 1 ? m : n;
    if (this.#productBytes(rows, cols, depth) > this.#room()) {
      return this.#blocks(kind, a, b, c, m, k, n, accumulate, bias, parallel);
    }
    // `a·b` and `a·bᵀ` with ≤ 4 output columns stay on the calling thread whatever their size:
    // copying their large operand in, which that thread does alone, costs about what the
    // dot products do (2048×1024×3 on two threads measured 0.83–1.18×).
    const thin = cols <= 4 && kind !== 1;
    if (!parallel && this.#threads && !thin && rows * cols * depth >= parallelTuning.threshold) {
      // Large: to the shared memory's kernels, when there is a pool for them. Smaller work
      // stays in this memory: copies into a shared memory are ~40% slower (V8 copies
      // SharedArrayBuffers with relaxed atomics), which W1's many small calls would feel.
      const threads = this.#threads();
      const pool = threads?.pool();
      if (pool) {
        const kernels = this.float === "f64" ? threads!.f64 : threads!.f32;
        const where = `wasmBackend.${PRODUCTS[kind]}`;
        const job = { pool, threads: threads!, where };
        return kernels.product(kind, a, b, c, m, k, n, accumulate, bias, job);
      }
    }
    // A large product with an operand resident in the shared memory (a layer's training
    // buffer): the shared kernels on this thread, which read it (or write c) where it lies.
    // (A small one, such as attention's per-head products, is copied here as before: in one
    // paired run a resident 64×64×32 took 7.2 µs there against 6.6 µs copied.)
    const large = rows * cols * depth >= parallelTuning.threshold;
    const resident = isShared(a) || isShared(b) || isShared(c);
    if (!parallel && this.#threads && !thin && large && resident) {
      const shared = this.#sharedFor(false, [a, b, c]);
      if (shared?.resident) {
        return shared.kernels.product(kind, a, b, c, m, k, n, accumulate, bias);
      }
    }
    if (cols <= 4) {
      return this.#thin(kind, a, b, c, rows, cols, depth, accumulate, bias, parallel);
    }
    if (kind === 1 && rows <= 4) {
      return this.#thinRows(a, b, c, rows, cols, depth, accumulate, parallel);
    }
    const MR = this.#mr, NR = this.#nr, B = this.#bytes;
    const base = this.#origin();
    const tile = align(MR * NR); // the edge-tile scratch of one gemm call, at `base`
    // Resident operands are read where they lie, and a resident c written (or summed into)
    // in its place, unless it shares bytes with a or b; the rest are copied above `base`.
    const [aAt, bAt, cAt] = this.#placed(a, b, c);
    const rawA = aAt >= 0 ? aAt : base + tile;
    const rawB = bAt >= 0 ? bAt : base + tile + (aAt >= 0 ? 0 : align(a.length));
    const packedL = base + tile + (aAt >= 0 ? 0 : align(a.length)) +
      (bAt >= 0 ? 0 : align(b.length));
    const packedR = packedL + align(Math.ceil(rows / MR) * MR * depth);
    const outAt = packedR + align(Math.ceil(cols / NR) * NR * depth);
    const out = cAt >= 0 ? cAt : outAt;
    const biasAt = cAt >= 0 ? outAt : outAt + align(rows * cols);
    const tiles = biasAt + align(cols); // per-task scratch, when parallel
    const grid = parallel
      ? tileGrid(
        Math.ceil(rows / MR),
        Math.ceil(cols / NR),
        [MR, NR],
        depth,
        parallel.pool.workers + 1,
      )
      : undefined;
    const heap = this.#reserve(grid ? tiles + grid.tasks * tile : tiles);
    if (aAt < 0) heap.set(a, rawA);
    if (bAt < 0) heap.set(b, rawB);
    if (accumulate && cAt < 0) heap.set(c, out);
    const load = accumulate ? 1 : 0;
    if (!parallel) {
      const x = this.#exports;
      if (kind === 0) {
        x.packColsL(rawA * B, k, m, k, packedL * B);
        x.packRowsR(rawB * B, n, k, n, packedR * B);
      } else if (kind === 1) {
        x.packRowsL(rawA * B, k, m, k, packedL * B);
        x.packRowsR(rawB * B, n, m, n, packedR * B);
      } else {
        x.packColsL(rawA * B, n, m, n, packedL * B);
        x.packColsR(rawB * B, n, k, n, packedR * B);
      }
      x.gemm(packedL * B, packedR * B, out * B, rows, cols, depth, cols, load, base * B);
    } else {
      // The same packing calls, [function, source, leading dimension, rows, cols], in ranges
      // of panels; then the output tiles.
      const left: PackCall = kind === 0
        ? ["packColsL", rawA, k, m, k]
        : kind === 1
        ? ["packRowsL", rawA, k, m, k]
        : ["packColsL", rawA, n, m, n];
      const right: PackCall = kind === 0
        ? ["packRowsR", rawB, n, k, n]
        : kind === 1
        ? ["packRowsR", rawB, n, m, n]
        : ["packColsR", rawB, n, k, n];
      this.#packTasks(left, MR, depth, packedL, parallel);
      this.#packTasks(right, NR, depth, packedR, parallel);
      parallel.threads.run(parallel.pool, parallel.where, false); // the tiles' job judges
      this.#tileTasks([packedL, packedR, out, tiles], rows, cols, depth, load, grid!, parallel);
    }
    this.#finish(out, c, rows, cols, bias, biasAt, cAt >= 0);
  }

  // The element offsets of a product's operands a, b and c where they lie resident in this
  // memory, else −1 (c also −1 when its bytes overlap a's or b's: it must not be written
  // before they are read).
  #placed(a: FloatArray, b: FloatArray, c: FloatArray): [number, number, number] {
    if (!this.#resident) return [-1, -1, -1];
    const at = (x: FloatArray) => x.BYTES_PER_ELEMENT === this.#bytes ? this.#residentAt(x) : -1;
    const aAt = at(a), bAt = at(b);
    let cAt = at(c);
    const overlaps = (x: FloatArray) =>
      x.buffer === c.buffer && x.byteOffset < c.byteOffset + c.byteLength &&
      c.byteOffset < x.byteOffset + x.byteLength;
    if (cAt >= 0 && (overlaps(a) || overlaps(b))) cAt = -1;
    return [aAt, bAt, cAt];
  }

  // Bytes of this memory a call may still use: the budget above the resident blocks.
  #room(): number {
    return parallelTuning.memoryBytes - (this.#resident?.top ?? 0);
  }

  // An upper bound on the bytes a product of rows × cols outputs summing `depth` terms
  // reserves: both operands copied and packed (panels padded), the output, a bias row and
  // the tasks' edge tiles, each aligned.
  #productBytes(rows: number, cols: number, depth: number): number {
    const MR = this.#mr, NR = this.#nr;
    const elements = 2 * (rows + MR + cols + NR) * depth + rows * cols + 2 * cols +
      (MAX_TASKS + 2) * align(MR * NR) + 16 * 16;
    return elements * this.#bytes;
  }

  // A product too large for the memory, as blocks of output rows and columns, each a product
  // of its own (the larger side halved until a block fits).
  #blocks(
    kind: 0 | 1 | 2,
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    m: number,
    k: number,
    n: number,
    accumulate: boolean,
    bias?: FloatArray,
    parallel?: Parallel,
  ): void {
    const rows = kind === 1 ? k : m;
    const cols = kind === 2 ? k : n;
    const depth = kind === 0 ? k : kind === 1 ? m : n;
    const room = this.#room();
    let rowParts = 1, colParts = 1;
    for (;;) {
      const blockRows = Math.ceil(rows / rowParts), blockCols = Math.ceil(cols / colParts);
      if (this.#productBytes(blockRows + BLOCK_ROWS, blockCols + BLOCK_COLS, depth) <= room) {
        break;
      }
      const rowsSplit = blockRows > BLOCK_ROWS, colsSplit = blockCols > BLOCK_ROWS;
      if (!rowsSplit && !colsSplit) {
        const bytes = this.#productBytes(blockRows + BLOCK_ROWS, blockCols + BLOCK_COLS, depth);
        throw new RangeError(
          `wasmBackend.${PRODUCTS[kind]}: a product summing ${depth} terms per output needs ${
            formatBytes(bytes)
          } bytes of WebAssembly memory even in blocks of at most ${blockRows} × ${blockCols} outputs, past the wasm backend's budget of ${
            formatBytes(room)
          } bytes; use a smaller batch, or setBackend("js") for this work`,
        );
      }
      if (rowsSplit && (blockRows >= blockCols || !colsSplit)) rowParts *= 2;
      else colParts *= 2;
    }
    const rowCuts = boundaries(rows, rowParts, BLOCK_ROWS);
    const colCuts = boundaries(cols, colParts, BLOCK_COLS);
    for (let i = 0; i + 1 < rowCuts.length; i++) {
      const r0 = rowCuts[i], R = rowCuts[i + 1] - r0;
      for (let j = 0; j + 1 < colCuts.length; j++) {
        const j0 = colCuts[j], C = colCuts[j + 1] - j0;
        const wholeRows = C === cols; // the output block is contiguous rows of c
        // The block's operands: [rows of a or b] as views, columns gathered.
        let left: FloatArray, right: FloatArray;
        if (kind === 0) {
          left = a.subarray(r0 * k, (r0 + R) * k);
          right = C === n ? b : gatherColumns(b, n, k, j0, C);
        } else if (kind === 1) {
          left = R === k ? a : gatherColumns(a, k, m, r0, R);
          right = C === n ? b : gatherColumns(b, n, m, j0, C);
        } else {
          left = a.subarray(r0 * n, (r0 + R) * n);
          right = b.subarray(j0 * n, (j0 + C) * n);
        }
        const out = wholeRows
          ? c.subarray(r0 * cols, (r0 + R) * cols)
          : accumulate
          ? gatherColumns(c.subarray(r0 * cols), cols, R, j0, C)
          : new (c.constructor as Float32ArrayConstructor)(R * C);
        const blockBias = bias?.subarray(j0, j0 + C);
        if (kind === 0) this.product(0, left, right, out, R, k, C, accumulate, blockBias, parallel);
        else if (kind === 1) {
          this.product(1, left, right, out, m, R, C, accumulate, blockBias, parallel);
        } else this.product(2, left, right, out, R, C, n, accumulate, blockBias, parallel);
        if (!wholeRows) scatterColumns(out, c.subarray(r0 * cols), cols, R, j0, C);
      }
    }
  }

  /**
   * The products by one right operand (see `Backend.prepareRight`): as
   * {@linkcode WasmKernels.product} computes them, with `b` copied and packed once at the
   * origin of the scratch of the kernels that run them, and again only when another call
   * has used that scratch since, or the kernels change (the thread count, the size). Thin
   * products (≤ 4 columns) go to `product` each time.
   */
  prepareRight(b: FloatArray, k: number, n: number, transposed: boolean): RightProduct {
    const packed: PackedRight = { at: -1, uses: -1 };
    return (a, c, m, accumulate = false) => {
      // product()'s k and n: matmulTransB's k is the output's columns.
      const [pk, pn] = transposed ? [n, k] : [k, n];
      const kind = transposed ? 2 : 0;
      const work = m * k * n;
      const same = a.constructor === b.constructor && c.constructor === b.constructor;
      if (n <= 4 || work < CROSSOVER || !same) {
        if (same && work >= CROSSOVER) return this.product(kind, a, b, c, m, pk, pn, accumulate);
        const js = transposed ? jsBackend.matmulTransB : jsBackend.matmul;
        return js(a, b, c, m, pk, pn, accumulate);
      }
      // Too large for the memory at once: product() runs it in blocks.
      if (this.#productBytes(m, n, k) > this.#room()) {
        return this.product(kind, a, b, c, m, pk, pn, accumulate);
      }
      // As product() places it: large products on the shared kernels (their pool, when
      // there is one now), the rest here.
      const threads = this.#threads && work >= parallelTuning.threshold ? this.#threads() : null;
      const pool = threads?.pool();
      if (!pool) {
        // A resident a or c: the shared kernels on this thread (as product() places it).
        const shared = isShared(a) || isShared(c) ? this.#sharedFor(false, [a, c]) : null;
        const kernels = shared?.resident ? shared.kernels : this;
        return kernels.#productByPacked(packed, kind, a, b, c, m, k, n, accumulate);
      }
      const shared = this.float === "f64" ? threads!.f64 : threads!.f32;
      const parallel = { pool, threads: threads!, where: "wasmBackend.prepareRight" };
      shared.#productByPacked(packed, kind, a, b, c, m, k, n, accumulate, parallel);
    };
  }

  // One product of prepareRight's: c[rows, cols] (=|+=) a[rows, depth]·R with R packed at
  // the scratch's origin (packed first when `packed` says it is not there).
  #productByPacked(
    packed: PackedRight,
    kind: 0 | 2,
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    rows: number,
    depth: number,
    cols: number,
    accumulate: boolean,
    parallel?: Parallel,
  ): void {
    const MR = this.#mr, NR = this.#nr, B = this.#bytes;
    const base = this.#origin();
    const packedR = base;
    const tile = align(MR * NR);
    const edge = packedR + align(Math.ceil(cols / NR) * NR * depth); // gemm's edge scratch
    // A resident a is read where it lies, a resident c written (or summed into) in place.
    const [aAt, , cAt] = this.#placed(a, b, c);
    const rawA = aAt >= 0 ? aAt : edge + tile;
    const packedL = edge + tile + (aAt >= 0 ? 0 : align(a.length));
    const outAt = packedL + align(Math.ceil(rows / MR) * MR * depth);
    const out = cAt >= 0 ? cAt : outAt;
    const tiles = cAt >= 0 ? outAt : outAt + align(rows * cols);
    const grid = parallel
      ? tileGrid(
        Math.ceil(rows / MR),
        Math.ceil(cols / NR),
        [MR, NR],
        depth,
        parallel.pool.workers + 1,
      )
      : undefined;
    const rawB = grid ? tiles + grid.tasks * tile : tiles;
    const stale = packed.kernels !== this || packed.at !== base || packed.uses !== scratchUses;
    const heap = this.#reserve(stale ? rawB + b.length : rawB);
    const x = this.#exports;
    if (stale) {
      heap.set(b, rawB);
      if (kind === 0) x.packRowsR(rawB * B, cols, depth, cols, packedR * B);
      else x.packColsR(rawB * B, depth, cols, depth, packedR * B);
    }
    if (aAt < 0) heap.set(a, rawA);
    if (accumulate && cAt < 0) heap.set(c, out);
    const load = accumulate ? 1 : 0;
    x.packColsL(rawA * B, depth, rows, depth, packedL * B);
    if (grid) {
      this.#tileTasks([packedL, packedR, out, tiles], rows, cols, depth, load, grid, parallel!);
    } else x.gemm(packedL * B, packedR * B, out * B, rows, cols, depth, cols, load, edge * B);
    this.#finish(out, c, rows, cols, undefined, undefined, cAt >= 0);
    Object.assign(packed, { kernels: this, at: base, uses: scratchUses });
  }

  // Runs the output tiles of a packed product as one job: rowPanels × colPanels register
  // panels each, every tile summed over the whole depth (any tiling gives the same sums),
  // each with its own edge scratch in `tiles`.
  #tileTasks(
    [packedL, packedR, out, tiles]: number[],
    rows: number,
    cols: number,
    depth: number,
    load: number,
    { rowPanels, colPanels }: { rowPanels: number; colPanels: number },
    { pool, threads, where }: Parallel,
  ): void {
    const MR = this.#mr, NR = this.#nr, B = this.#bytes, tile = align(MR * NR);
    const module = this.float === "f64" ? 1 : 0;
    let task = 0;
    for (let ib = 0; ib * MR < rows; ib += rowPanels) {
      for (let jb = 0; jb * NR < cols; jb += colPanels) {
        pool.task(
          module,
          "gemm",
          (packedL + ib * MR * depth) * B,
          (packedR + jb * NR * depth) * B,
          (out + ib * MR * cols + jb * NR) * B,
          Math.min(rows, (ib + rowPanels) * MR) - ib * MR,
          Math.min(cols, (jb + colPanels) * NR) - jb * NR,
          depth,
          cols,
          load,
          (tiles + task++ * tile) * B,
        );
      }
    }
    threads.run(pool, where);
  }

  // Adds the tasks packing one operand's panels, a range of panels each: a packCols call
  // packs panels of `width` source rows, a packRows call panels of `width` source columns;
  // every panel holds width × depth elements. The last range keeps the zero padding.
  #packTasks(
    [fn, src, ld, rows, cols]: PackCall,
    width: number,
    depth: number,
    dst: number,
    { pool }: Parallel,
  ): void {
    const B = this.#bytes;
    const byRows = fn === "packColsL" || fn === "packColsR";
    const extent = byRows ? rows : cols;
    const panels = Math.ceil(extent / width);
    const most = Math.floor((panels * width * depth) / parallelTuning.minPackTask);
    const tasks = Math.max(1, Math.min(pool.workers + 1, most));
    const step = Math.ceil(panels / tasks);
    const module = this.float === "f64" ? 1 : 0;
    for (let p0 = 0; p0 < panels; p0 += step) {
      const count = Math.min(extent, (p0 + step) * width) - p0 * width;
      const from = src + (byRows ? p0 * width * ld : p0 * width);
      pool.task(
        module,
        fn,
        from * B,
        ld,
        byRows ? count : rows,
        byRows ? cols : count,
        (dst + p0 * width * depth) * B,
      );
    }
  }

  /**
   * The products whose output has at most four columns, unpacked: `a·b` and `a·bᵀ` as dot
   * products of contiguous rows (`dotRows`, with `bt` the right operand as [cols, depth]),
   * `aᵀ·b` as a sum of row outer products (`outerRows`). In parallel (`aᵀ·b` only), the
   * output rows are split in multiples of eight: `outerRows` takes the last k mod 4 (float32)
   * or k mod 2 (float64) columns by a scalar path, which must stay the same columns.
   */
  #thin(
    kind: 0 | 1 | 2,
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    rows: number,
    cols: number,
    depth: number,
    accumulate: boolean,
    bias?: FloatArray,
    parallel?: Parallel,
  ): void {
    const B = this.#bytes;
    const base = this.#origin();
    const btAt = base + align(a.length);
    const out = btAt + align(cols * depth);
    const heap = this.#reserve(out + align(rows * cols) + cols);
    const load = accumulate ? 1 : 0;
    heap.set(a, base);
    if (kind === 1) {
      heap.set(b, btAt);
      if (accumulate) heap.set(c, out);
      if (parallel) {
        this.#split(parallel, rows, cols * depth, 8, (q0, count) => [
          "outerRows",
          (base + q0) * B,
          btAt * B,
          (out + q0 * cols) * B,
          depth,
          count,
          cols,
          load,
          rows,
        ]);
      } else this.#exports.outerRows(base * B, btAt * B, out * B, depth, rows, cols, load, rows);
      return this.#finish(out, c, rows, cols, bias);
    }
    if (kind === 2) heap.set(b, btAt);
    else {
      for (let j = 0; j < cols; j++) {
        for (let p = 0, to = btAt + j * depth; p < depth; p++) heap[to + p] = b[p * cols + j];
      }
    }
    if (accumulate) heap.set(c, out);
    this.#exports.dotRows(base * B, btAt * B, out * B, rows, depth, cols, load);
    this.#finish(out, c, rows, cols, bias);
  }

  // Runs `extent` output rows (of `work` multiply-adds each) as tasks of a multiple of
  // `multiple` rows; `call(first, count)` gives each task's function and arguments.
  #split(
    { pool, threads, where, judge = true }: Parallel,
    extent: number,
    work: number,
    multiple: number,
    call: (first: number, count: number) => [TaskFunction, ...number[]],
  ): void {
    const module = this.float === "f64" ? 1 : 0;
    const tasks = taskCount(extent * work, pool.workers + 1);
    const step = Math.ceil(Math.ceil(extent / tasks) / multiple) * multiple;
    for (let first = 0; first < extent; first += step) {
      const [fn, ...args] = call(first, Math.min(step, extent - first));
      pool.task(module, fn, ...args);
    }
    threads.run(pool, where, judge);
  }

  /**
   * c = heap[out, out + rows·cols) (+ bias on every row, copied to `at`); `inPlace` when out
   * is c's own place in the memory (resident), which then needs no copy.
   */
  #finish(
    out: number,
    c: FloatArray,
    rows: number,
    cols: number,
    bias?: FloatArray,
    at: number = out + align(rows * cols),
    inPlace = false,
  ): void {
    const heap = this.#heap;
    if (bias) {
      heap.set(bias, at);
      this.#exports.addBias(out * this.#bytes, at * this.#bytes, rows, cols);
    }
    if (!inPlace) c.set(this.#slice(out, rows * cols));
  }

  /**
   * `aᵀ·b` with at most four output rows (`dweights` of a layer with few inputs): the
   * transpose bᵀ·a by `outerRows`, transposed back into c.
   */
  #thinRows(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    rows: number,
    cols: number,
    depth: number,
    accumulate: boolean,
    parallel?: Parallel,
  ): void {
    const B = this.#bytes;
    const base = this.#origin();
    const aAt = base + align(b.length);
    const out = aAt + align(a.length);
    const heap = this.#reserve(out + rows * cols);
    heap.set(b, base);
    heap.set(a, aAt);
    if (parallel) {
      this.#split(parallel, cols, rows * depth, 8, (q0, count) => [
        "outerRows",
        (base + q0) * B,
        aAt * B,
        (out + q0 * rows) * B,
        depth,
        count,
        rows,
        0,
        cols,
      ]);
    } else this.#exports.outerRows(base * B, aAt * B, out * B, depth, cols, rows, 0, cols);
    for (let r = 0; r < rows; r++) {
      for (let j = 0, at = r * cols; j < cols; j++) {
        c[at + j] = accumulate ? c[at + j] + heap[out + j * rows + r] : heap[out + j * rows + r];
      }
    }
  }

  /**
   * The convolution's forward pass (see `Backend.conv2dForward`): on the shared kernels and
   * their pool when threads are wanted and it does at least `parallelTuning.threshold`
   * multiply-adds, else here; on one thread when the threads' scratch would pass the memory
   * budget (`parallelTuning.memoryBytes`), and not at all (false) when one thread's would.
   *
   * @throws {Error} when a worker thread failed (the next call runs on a fresh pool).
   */
  conv2dForward(
    x: FloatArray,
    w: FloatArray,
    bias: FloatArray | undefined,
    y: FloatArray,
    g: ConvGeometry,
  ): boolean {
    const large = convWork(g) >= parallelTuning.threshold;
    const need = (threads: number) => convElements(g, this.tileSize, threads, false);
    const host = this.#taskHost(large, "conv2dForward", [x, y], need);
    if (!host) return false;
    convForward(host, x, w, bias, y, g);
    return true;
  }

  /** The convolution's backward pass (see `Backend.conv2dBackward`), placed as forward's. */
  conv2dBackward(
    x: FloatArray,
    w: FloatArray,
    dvalues: FloatArray,
    dw: FloatArray,
    dbias: FloatArray | undefined,
    dx: FloatArray | null,
    g: ConvGeometry,
  ): boolean {
    const work = (dx ? 2 : 1) * convWork(g);
    const large = work >= parallelTuning.threshold;
    const need = (threads: number) => convElements(g, this.tileSize, threads, true);
    const host = this.#taskHost(large, "conv2dBackward", [x, dvalues, dx], need);
    if (!host) return false;
    convBackward(host, x, w, dvalues, dw, dbias, dx, g);
    return true;
  }

  /**
   * Max pooling's forward pass (see `Backend.maxPool2dForward`) where x, y and argmax lie
   * resident in the shared memory, on the pool when threads are wanted and x has at least
   * twice `parallelTuning.minTask` elements; false (nothing done) otherwise.
   */
  maxPool2dForward(x: FloatArray, y: FloatArray, argmax: Int32Array, g: PoolGeometry): boolean {
    const large = x.length >= 2 * parallelTuning.minTask;
    const pass = this.#residentPass(large, "maxPool2dForward", [x, y, argmax], true);
    return pass !== null && maxPoolForward(pass.kernels.#host(pass.parallel), x, y, argmax, g);
  }

  /** Its backward pass (see `Backend.maxPool2dBackward`), placed likewise. */
  maxPool2dBackward(
    dvalues: FloatArray,
    dx: FloatArray,
    argmax: Int32Array,
    g: PoolGeometry,
  ): boolean {
    const large = dx.length >= 2 * parallelTuning.minTask;
    const pass = this.#residentPass(large, "maxPool2dBackward", [dvalues, dx, argmax], true);
    return pass !== null &&
      maxPoolBackward(pass.kernels.#host(pass.parallel), dvalues, dx, argmax, g);
  }

  /**
   * One of BatchNorm's passes (see `Backend.batchNorm`) where its arrays lie resident in the
   * shared memory: a task per range of planes, on the pool when threads are wanted and the
   * pass covers at least twice `parallelTuning.minTask` elements; false (nothing done)
   * otherwise.
   */
  batchNorm(
    pass: BatchNormPass,
    batch: number,
    features: number,
    positions: number,
    arrays: BatchNormArrays,
  ): boolean {
    const large = batch * features * positions >= 2 * parallelTuning.minTask;
    const operands = [arrays.x, arrays.dvalues, arrays.out].filter((a) => a !== undefined);
    const resident = this.#residentPass(large, "batchNorm", operands as FloatArray[], true);
    return resident !== null &&
      batchNormPass(
        resident.kernels.#host(resident.parallel),
        pass,
        batch,
        features,
        positions,
        arrays,
      );
  }

  /**
   * Winograd's input transform (see `winogradInputs` in layers/_winograd.ts, same arguments)
   * on the float32 kernels, where x and v lie resident in the shared memory: a task per
   * range of image planes, on the pool when threads are wanted and v has at least twice
   * `parallelTuning.minTask` elements; false (nothing done) otherwise.
   */
  winogradInputs(
    x: FloatArray,
    first: number,
    count: number,
    channels: number,
    height: number,
    width: number,
    top: number,
    left: number,
    tilesH: number,
    tilesW: number,
    v: FloatArray,
  ): boolean {
    if (this.float !== "f32") return false;
    const large = v.length >= 2 * parallelTuning.minTask;
    const pass = this.#residentPass(large, "winogradInputs", [v], true);
    if (!pass) return false;
    const host = pass.kernels.#host(pass.parallel);
    const sizes = { channels, height, width, top, left, tilesH, tilesW, first, count };
    const length = count * channels * height * width, at = host.residentAt(x);
    if (at < 0 && !pass.kernels.#fits(winogradElements(sizes, host.threads) + length)) {
      return false;
    }
    runWinograd(host, "winogradInputs", sizes, at, host.residentAt(v), x);
    return true;
  }

  /**
   * Winograd's output transform (see `winogradOutputs` in layers/_winograd.ts, same
   * arguments), placed as {@linkcode WasmKernels.winogradInputs}: m and y resident.
   */
  winogradOutputs(
    m: FloatArray,
    first: number,
    count: number,
    out: number,
    outH: number,
    outW: number,
    tilesH: number,
    tilesW: number,
    y: FloatArray,
    bias?: FloatArray,
  ): boolean {
    const sizes = [first, count, out, outH, outW, tilesH, tilesW] as const;
    return this.#outputSide("winogradOutputs", m, y, sizes, bias);
  }

  /**
   * The output transform's gradient (see `WinogradTransforms.winogradGradOutputs`), placed
   * as {@linkcode WasmKernels.winogradInputs}: dvalues and dm resident.
   */
  winogradGradOutputs(
    dvalues: FloatArray,
    first: number,
    count: number,
    out: number,
    outH: number,
    outW: number,
    tilesH: number,
    tilesW: number,
    dm: FloatArray,
  ): boolean {
    const sizes = [first, count, out, outH, outW, tilesH, tilesW] as const;
    return this.#outputSide("winogradGradOutputs", dm, dvalues, sizes);
  }

  // The transforms on the outputs' side: the output transform writes the images y from the
  // planes m, its gradient the planes dm from the images dvalues. The planes must lie
  // resident; images that do not go through a copy in the scratch.
  #outputSide(
    task: "winogradOutputs" | "winogradGradOutputs",
    planes: FloatArray, // m or dm [16, O, count·tilesH·tilesW]
    images: FloatArray, // y or dvalues [N, O, outH, outW]
    [first, count, out, outH, outW, tilesH, tilesW]: readonly number[],
    bias?: FloatArray,
  ): boolean {
    if (this.float !== "f32") return false;
    const large = planes.length >= 2 * parallelTuning.minTask;
    const pass = this.#residentPass(large, task, [planes], true);
    if (!pass) return false;
    const host = pass.kernels.#host(pass.parallel);
    const sizes = {
      channels: out,
      height: outH,
      width: outW,
      top: 0,
      left: 0,
      tilesH,
      tilesW,
      first,
      count,
    };
    const length = count * out * outH * outW, at = host.residentAt(images);
    if (at < 0 && !pass.kernels.#fits(winogradElements(sizes, host.threads) + length)) {
      return false;
    }
    const placed = host.residentAt(planes);
    const [source, target] = task === "winogradOutputs" ? [placed, at] : [at, placed];
    runWinograd(host, task, sizes, source, target, images, bias);
    return true;
  }

  /**
   * Winograd's whole convolution (see `WinogradTransforms.winogradConvolution`) on the
   * float32 kernels, placed as {@linkcode WasmKernels.conv2dForward}: a job of units of
   * samples, each unit's tiles and products in its thread's scratch; false for float64.
   *
   * @throws {Error} when a worker thread failed (the next call runs on a fresh pool).
   */
  winogradConvolution(
    x: FloatArray,
    u: FloatArray,
    y: FloatArray,
    shape: WinogradConvShape,
    bias?: FloatArray,
  ): boolean {
    if (this.float !== "f32") return false;
    const large = winogradWork(shape) >= parallelTuning.threshold;
    const need = (threads: number) => winogradConvElements(shape, this.tileSize, threads);
    const host = this.#taskHost(large, "winogradConvolution", [x, y], need);
    if (!host) return false;
    winogradConvolution(host, x, u, y, shape, bias);
    return true;
  }

  /**
   * The weights' gradient of Winograd's convolution (see
   * `WinogradTransforms.winogradWeights`), placed as {@linkcode WasmKernels.conv2dBackward};
   * false for float64.
   *
   * @throws {Error} when a worker thread failed (the next call runs on a fresh pool).
   */
  winogradWeights(
    x: FloatArray,
    dvalues: FloatArray,
    du: FloatArray,
    dbias: FloatArray | undefined,
    shape: WinogradConvShape,
  ): boolean {
    if (this.float !== "f32") return false;
    const large = winogradWork(shape) >= parallelTuning.threshold;
    const need = (threads: number) => winogradWeightElements(shape, this.tileSize, threads);
    const host = this.#taskHost(large, "winogradWeights", [x, dvalues], need);
    if (!host) return false;
    winogradWeightGradient(host, x, dvalues, du, dbias, shape);
    return true;
  }

  // A memory-bound pass (ReLU, pooling, Adam) over `operands`, one of them resident in the
  // shared memory (`all`: every one): the shared kernels, with their pool when the pass is
  // `large` (its jobs not judged for the back-off); null when the operands are not so.
  #residentPass(
    large: boolean,
    name: string,
    operands: Operands,
    all = false,
  ): { kernels: WasmKernels; parallel?: Parallel } | null {
    const shared = this.#sharedFor(large, operands);
    if (!shared) return null;
    const { threads, kernels } = shared;
    const placed = (array: FloatArray | Int32Array | null | undefined) =>
      !array || threads.resident.offsetOf(array) >= 0;
    if (all ? !operands.every(placed) : !shared.resident) return null;
    const pool = large ? threads.pool() : null;
    const where = `wasmBackend.${name}`;
    return { kernels, parallel: pool ? { pool, threads, where, judge: false } : undefined };
  }

  // The kernels a job of tasks runs on: the shared ones with their pool when it is `large`
  // enough and threads are wanted (and not backing off, unless the job is a `wholePass`, see
  // Threads.pool); else the shared ones on this thread
  // when an operand lies resident in their memory; else these, on this thread.
  // With `need` (the elements a job reserves on so many threads), a job whose scratch for all
  // the pool's threads would pass the memory budget runs on the calling thread alone (the
  // same bits), and one that would pass it even so gets null.
  #taskHost(
    large: boolean,
    name: string,
    operands: Operands,
    need: (threads: number) => number = () => 0,
    wholePass = false,
  ): TaskHost | null {
    const shared = this.#sharedFor(large, operands);
    if (!shared) return this.#fits(need(1)) ? this.#host() : null;
    const kernels = shared.kernels;
    const pool = large ? shared.threads.pool(wholePass) : null;
    const where = `wasmBackend.${name}`;
    if (pool && kernels.#fits(need(pool.workers + 1))) {
      return kernels.#host({ pool, threads: shared.threads, where });
    }
    if (shared.resident) return kernels.#fits(need(1)) ? kernels.#host() : null;
    return this.#fits(need(1)) ? this.#host() : null;
  }

  // Whether `elements` above the origin fit the budget above the resident blocks.
  #fits(elements: number): boolean {
    return elements * this.#bytes <= this.#room();
  }

  /** The register tile of these kernels, [mr, nr]. */
  get tileSize(): [number, number] {
    return [this.#mr, this.#nr];
  }

  // The shared kernels of this element type, when these are the calling thread's own and the
  // work is `large` or an operand may be resident; `resident` says whether one is.
  #sharedFor(
    large: boolean,
    operands: Operands,
  ): { threads: Threads; kernels: WasmKernels; resident: boolean } | null {
    const threads = this.#threads && (large || operands.some(isShared)) ? this.#threads() : null;
    if (!threads) return null;
    const kernels = this.float === "f64" ? threads.f64 : threads.f32;
    const resident = operands.some((array) => array && threads.resident.offsetOf(array) >= 0);
    return { threads, kernels, resident };
  }

  // `array`'s offset in its own elements when it lies resident in this memory, else −1.
  #residentAt(array: FloatArray | Int32Array): number {
    const at = this.#resident?.offsetOf(array) ?? -1;
    return at < 0 ? -1 : at / array.BYTES_PER_ELEMENT;
  }

  #host(parallel?: Parallel): TaskHost {
    return {
      module: this.float === "f64" ? 1 : 0,
      tile: [this.#mr, this.#nr],
      memory: this.#memory,
      exports: this.#exports,
      reserve: (floats: number) => this.#reserve(floats),
      origin: this.#origin(),
      residentAt: (array: FloatArray | Int32Array) => this.#residentAt(array),
      threads: parallel ? parallel.pool.workers + 1 : 1,
      runJob: (task, descriptor, groups) => {
        if (!parallel) return false;
        for (const [first, count] of groups) {
          parallel.pool.task(JS_MODULE, task, descriptor, first, count);
        }
        parallel.threads.run(parallel.pool, parallel.where, parallel.judge ?? true);
        return true;
      },
    };
  }

  /** c[m, n] += bias[n] on every row. */
  addBias(c: FloatArray, bias: FloatArray, m: number, n: number): void {
    const at = this.#origin() + align(this.#mr * this.#nr);
    const biasAt = at + align(m * n);
    const heap = this.#reserve(biasAt + n);
    heap.set(c, at);
    heap.set(bias, biasAt);
    this.#exports.addBias(at * this.#bytes, biasAt * this.#bytes, m, n);
    c.set(this.#slice(at, m * n));
  }

  /** out[n] (=|+=) Σ_rows a[m, n], rows added in ascending order. */
  sumColumns(
    a: FloatArray,
    out: FloatArray,
    m: number,
    n: number,
    accumulate: boolean,
  ): void {
    // A resident a (a layer's gradient buffer) is summed where it lies, by the shared
    // kernels on this thread, instead of copied (W6's gate gradients: 8 MiB a step).
    const pass = this.#residentPass(false, "sumColumns", [a]);
    if (pass) return pass.kernels.#sumColumns(a, out, m, n, accumulate);
    this.#sumColumns(a, out, m, n, accumulate);
  }

  /**
   * out[g, :] = Σ a[r, :] over the rows r of group g, in ascending r: a resident `a` (a
   * layer's gate gradients) row by row with the column-sum kernel where it lies, else the
   * JavaScript loop (the same bits: a float32 sum rounded from float64 is the float32 sum).
   */
  sumRowsByGroup(
    a: FloatArray,
    out: FloatArray,
    n: number,
    group: Int32Array,
    count: number,
  ): void {
    const pass = this.#residentPass(false, "sumRowsByGroup", [a]);
    if (!pass) return sumRowsByGroup(a, out, n, group, count);
    pass.kernels.#sumRowsByGroup(a, out, n, group, count);
  }

  #sumRowsByGroup(
    a: FloatArray,
    out: FloatArray,
    n: number,
    group: Int32Array,
    count: number,
  ): void {
    const aAt = this.#residentAt(a);
    const outAt = this.#origin() + align(this.#mr * this.#nr);
    const heap = this.#reserve(outAt + count * n);
    heap.fill(0, outAt, outAt + count * n);
    const bytes = this.#bytes, sumRows = this.#exports.sumRows;
    for (let r = 0; r < group.length; r++) {
      sumRows((aAt + r * n) * bytes, (outAt + group[r] * n) * bytes, 1, n);
    }
    out.set(this.#slice(outAt, count * n));
  }

  #sumColumns(a: FloatArray, out: FloatArray, m: number, n: number, accumulate: boolean): void {
    const resident = this.#residentAt(a);
    const at = this.#origin() + align(this.#mr * this.#nr);
    const outAt = resident >= 0 ? at : at + align(m * n);
    const heap = this.#reserve(outAt + n);
    if (resident < 0) heap.set(a, at);
    if (accumulate) heap.set(out, outAt);
    else heap.fill(0, outAt, outAt + n);
    const aAt = resident >= 0 ? resident : at;
    this.#exports.sumRows(aAt * this.#bytes, outAt * this.#bytes, m, n);
    out.set(this.#slice(outAt, n));
  }

  /**
   * out = max(x, 0); with `dvalues`, out = x > 0 ? dvalues : 0. Where an operand lies
   * resident in the shared memory, the shared kernels run it there, on the pool when it has
   * at least twice `parallelTuning.minTask` elements (each element alone: the same bits).
   */
  relu(x: FloatArray, out: FloatArray, dvalues?: FloatArray): void {
    const large = x.length >= 2 * parallelTuning.minTask;
    const pass = this.#residentPass(large, "relu", [x, out, dvalues]);
    if (!pass) return this.#relu(x, out, dvalues);
    pass.kernels.#relu(x, out, dvalues, pass.parallel);
  }

  #relu(x: FloatArray, out: FloatArray, dvalues?: FloatArray, parallel?: Parallel): void {
    const n = x.length;
    const B = this.#bytes;
    const inputs = dvalues ? [x, dvalues] : [x];
    const offsets = this.#place(
      inputs,
      [out],
      this.#origin() + align(this.#mr * this.#nr),
    );
    const [xAt, dvAt, outAt] = dvalues ? offsets : [offsets[0], -1, offsets[1]];
    const call = (first: number, count: number): [TaskFunction, ...number[]] =>
      dvalues
        ? ["reluBackward", (xAt + first) * B, (dvAt + first) * B, (outAt + first) * B, count]
        : ["relu", (xAt + first) * B, (outAt + first) * B, count];
    if (parallel) this.#split(parallel, n, 1, 16, call);
    else {
      const [fn, ...args] = call(0, n);
      (this.#exports[fn as "relu"] as (...args: number[]) => void)(...args);
    }
    if (this.#residentAt(out) < 0) out.set(this.#slice(outAt, n));
  }

  /**
   * The piecewise-cubic map of `Backend.cubicMap` on the float32 kernels, where x, out and
   * dvalues lie resident in the shared memory: a task per range of elements (on the pool when
   * threads are wanted and not backing off), each with its own list of the elements off the
   * grid; null (nothing done) otherwise. The table goes into the call's scratch.
   */
  cubicMap(
    x: FloatArray,
    table: Float64Array,
    low: number,
    steps: number,
    out: FloatArray,
    dvalues?: FloatArray,
  ): Int32Array | null {
    const n = x.length, intervals = table.length / 4;
    if (out.length !== n || (dvalues && dvalues.length !== n) || !Number.isInteger(intervals)) {
      throw new TypeError(
        `wasmBackend.cubicMap: x, out and dvalues must have one length and the table 4 values ` +
          `per interval, got ${n}, ${out.length}, ${dvalues?.length ?? "none"} and ${table.length}`,
      );
    }
    if (this.float !== "f32" || n === 0 || intervals === 0) return null;
    // An element (~2 ns: a gather of four f64 and ten f64 operations) costs at least what 16
    // multiply-adds of a product do: every resident array (≥ 2^16 elements) is worth a job.
    const work = 16 * n;
    const operands = [x, out, dvalues];
    const pass = this.#residentPass(work >= parallelTuning.threshold, "cubicMap", operands, true);
    if (!pass) return null;
    const kernels = pass.kernels, parallel = pass.parallel;
    const tasks = parallel ? taskCount(work, parallel.pool.workers + 1) : 1;
    const step = Math.ceil(n / tasks / 16) * 16;
    // The table after low and steps (f64), then each task's list: its count, then up to its
    // elements' indices (i32).
    const tableAt = kernels.#origin(), listAt = tableAt + align(2 * table.length + 4);
    const segments = Math.ceil(n / step);
    if (!kernels.#fits(listAt - tableAt + n + segments)) return null;
    const heap = kernels.#reserve(listAt + n + segments);
    const header = new Float64Array(heap.buffer, tableAt * 4, table.length + 2);
    header[0] = low;
    header[1] = steps;
    header.set(table, 2);
    const xAt = kernels.#residentAt(x), outAt = kernels.#residentAt(out);
    const wAt = dvalues ? kernels.#residentAt(dvalues) : xAt;
    for (let first = 0, j = 0; first < n; first += step, j++) {
      const args: [number, number, number, number, number, number, number] = [
        (xAt + first) * 4,
        (wAt + first) * 4,
        (outAt + first) * 4,
        Math.min(step, n - first),
        tableAt * 4,
        intervals,
        (listAt + first + j) * 4,
      ];
      if (parallel) parallel.pool.task(0, "cubicMap", ...args);
      else kernels.#exports.cubicMap!(...args);
    }
    // Judged for the back-off, as products are (not a memory-bound pass: it gains about 1.8×
    // on two free cores).
    if (parallel) parallel.threads.run(parallel.pool, parallel.where, true);
    // The lists, in task order, with the tasks' first elements added: ascending indices.
    const lists = new Int32Array(heap.buffer, listAt * 4, n + segments);
    let total = 0;
    for (let first = 0, j = 0; first < n; first += step, j++) total += lists[first + j];
    const indices = new Int32Array(total);
    for (let first = 0, j = 0, o = 0; first < n; first += step, j++) {
      const at = first + j, count = lists[at];
      for (let c = 1; c <= count; c++) indices[o++] = first + lists[at + c];
    }
    return indices;
  }

  /**
   * LayerNorm's float32 forward pass (see `Backend.layerNormForward`) on the float32 kernels,
   * where y lies resident in the shared memory (a layer's training buffer; an inference
   * forward's outputs do not, and go back to the layer's loops): a task per range of rows, on
   * the pool when threads are wanted and not backing off; false (nothing done) otherwise. x,
   * when not resident (W5's first LayerNorm reads PositionalEmbedding's outputs), gamma, beta
   * and the rows' statistics go through the call's scratch.
   */
  layerNormForward(
    x: FloatArray, // [rows, F]
    gamma: FloatArray, // [F]
    beta: FloatArray, // [F]
    epsilon: number,
    y: FloatArray, // [rows, F]
    means: Float64Array, // [rows]
    invStds: Float64Array, // [rows]
  ): boolean {
    const features = gamma.length, rows = means.length;
    this.#checkLayerNorm("layerNormForward", x, y, gamma, means, invStds);
    if (beta.length !== features) {
      throw new TypeError(
        `wasmBackend.layerNormForward: beta has ${beta.length} elements, expected ${features} like gamma`,
      );
    }
    if (this.float !== "f32" || rows === 0) return false;
    const n = x.length, work = 16 * n; // an element costs about what 16 multiply-adds do
    const large = work >= parallelTuning.threshold;
    const pass = this.#residentPass(large, "layerNormForward", [y], true);
    if (!pass) return false;
    const kernels = pass.kernels, parallel = pass.parallel;
    // The header, gamma and beta; each row's mean and invStd (f64); x, unless resident.
    const paramsAt = kernels.#origin(), statsAt = paramsAt + align(8 + 2 * features);
    const copyAt = statsAt + align(4 * rows);
    const [xAt, end] = kernels.#inputsAt([x], copyAt);
    if (!kernels.#fits(end - paramsAt)) return false;
    const heap = kernels.#reserve(end);
    if (xAt < 0) heap.set(x, copyAt);
    writeLayerNormParams(heap, paramsAt, gamma, 0, false, epsilon, beta);
    const yAt = kernels.#residentAt(y);
    const tasks = parallel ? taskCount(work, parallel.pool.workers + 1) : 1;
    const step = Math.ceil(rows / tasks);
    for (let first = 0; first < rows; first += step) {
      const args: [number, number, number, number, number] = [
        ((xAt < 0 ? copyAt : xAt) + first * features) * 4,
        (yAt + first * features) * 4,
        Math.min(step, rows - first),
        paramsAt * 4,
        (statsAt + 4 * first) * 4,
      ];
      if (parallel) parallel.pool.task(0, "layerNormForward", ...args);
      else kernels.#exports.layerNormForward!(...args);
    }
    // Judged for the back-off, as products are: rows of 128 are compute-bound (a row's sums are
    // chains of dependent adds), not a memory-bound pass.
    if (parallel) parallel.threads.run(parallel.pool, parallel.where, true);
    const stats = new Float64Array(heap.buffer, statsAt * 4, 2 * rows);
    for (let r = 0; r < rows; r++) {
      means[r] = stats[2 * r];
      invStds[r] = stats[2 * r + 1];
    }
    return true;
  }

  /**
   * Its backward pass (see `Backend.layerNormBackward`), placed likewise: where dx lies
   * resident (without dx, where x or dvalues does), x and dvalues copied in when not. A task
   * per range of whole groups of `groupRows` rows, each group with its own partial sums in the
   * call's scratch, which this thread then adds in order.
   */
  layerNormBackward(
    x: FloatArray, // [rows, F]
    dvalues: FloatArray, // [rows, F]
    gamma: FloatArray, // [F]
    means: Float64Array, // [rows]
    invStds: Float64Array, // [rows]
    dgamma: Float64Array, // [F]
    dbeta: Float64Array, // [F]
    dx: FloatArray | null, // [rows, F]
    groupRows: number,
  ): boolean {
    const features = gamma.length, rows = means.length;
    this.#checkLayerNorm("layerNormBackward", x, dvalues, gamma, means, invStds);
    const where = "wasmBackend.layerNormBackward";
    if (dgamma.length !== features || dbeta.length !== features) {
      throw new TypeError(
        `${where}: dgamma and dbeta must have ${features} elements like gamma, got ${dgamma.length} and ${dbeta.length}`,
      );
    }
    if (dx && dx.length !== x.length) {
      throw new TypeError(`${where}: dx has ${dx.length} elements, expected ${x.length} like x`);
    }
    if (!Number.isSafeInteger(groupRows) || groupRows < 1) {
      throw new RangeError(`${where}: groupRows must be a positive integer, got ${groupRows}`);
    }
    if (this.float !== "f32" || rows === 0) return false;
    const n = x.length, work = 16 * n;
    const large = work >= parallelTuning.threshold;
    const pass = dx
      ? this.#residentPass(large, "layerNormBackward", [dx], true)
      : this.#residentPass(large, "layerNormBackward", [x, dvalues]);
    if (!pass) return false;
    const kernels = pass.kernels, parallel = pass.parallel;
    // The header, gamma and beta's place; each row's mean and invStd; each group's partial
    // sums [2, F] (f64); x and dvalues, unless resident.
    const groups = Math.ceil(rows / groupRows);
    const paramsAt = kernels.#origin(), statsAt = paramsAt + align(8 + 2 * features);
    const partialsAt = statsAt + align(4 * rows);
    const copyAt = partialsAt + align(4 * features * groups);
    const [xAt, dvAt, end] = kernels.#inputsAt([x, dvalues], copyAt);
    if (!kernels.#fits(end - paramsAt)) return false;
    const heap = kernels.#reserve(end);
    if (xAt < 0) heap.set(x, copyAt);
    if (dvAt < 0) heap.set(dvalues, xAt < 0 ? copyAt + align(n) : copyAt);
    writeLayerNormParams(heap, paramsAt, gamma, groupRows, dx !== null);
    const stats = new Float64Array(heap.buffer, statsAt * 4, 2 * rows);
    for (let r = 0; r < rows; r++) {
      stats[2 * r] = means[r];
      stats[2 * r + 1] = invStds[r];
    }
    const xFrom = xAt < 0 ? copyAt : xAt;
    const dvFrom = dvAt >= 0 ? dvAt : xAt < 0 ? copyAt + align(n) : copyAt;
    const dxAt = dx ? kernels.#residentAt(dx) : 0;
    const tasks = parallel ? Math.min(groups, taskCount(work, parallel.pool.workers + 1)) : 1;
    const step = Math.ceil(groups / tasks) * groupRows; // rows per task, whole groups
    for (let first = 0; first < rows; first += step) {
      const args: [number, number, number, number, number, number, number] = [
        (xFrom + first * features) * 4,
        (dvFrom + first * features) * 4,
        (dxAt + first * features) * 4,
        Math.min(step, rows - first),
        paramsAt * 4,
        (statsAt + 4 * first) * 4,
        (partialsAt + 4 * features * (first / groupRows)) * 4,
      ];
      if (parallel) parallel.pool.task(0, "layerNormBackward", ...args);
      else kernels.#exports.layerNormBackward!(...args);
    }
    if (parallel) parallel.threads.run(parallel.pool, parallel.where, true);
    // The groups' sums in order, as the layer's loop adds them.
    const partials = new Float64Array(heap.buffer, partialsAt * 4, 2 * features * groups);
    dgamma.fill(0);
    dbeta.fill(0);
    for (let g = 0, at = 0; g < groups; g++, at += 2 * features) {
      for (let f = 0; f < features; f++) {
        dgamma[f] += partials[at + f];
        dbeta[f] += partials[at + features + f];
      }
    }
    return true;
  }

  // The resident offsets of a call's input arrays (−1: not resident), and the end of the
  // copies of the others, one after another from `start` (aligned).
  #inputsAt(arrays: FloatArray[], start: number): number[] {
    let end = start;
    const offsets = arrays.map((array) => {
      const at = this.#residentAt(array);
      if (at < 0) end += align(array.length);
      return at;
    });
    return [...offsets, end];
  }

  // The arguments both LayerNorm passes share: x and its counterpart (y or dvalues) of
  // rows × F elements, the rows' statistics of rows.
  #checkLayerNorm(
    name: string,
    x: FloatArray,
    other: FloatArray,
    gamma: FloatArray,
    means: Float64Array,
    invStds: Float64Array,
  ): void {
    const features = gamma.length, rows = means.length;
    if (
      features === 0 || x.length !== rows * features || other.length !== x.length ||
      invStds.length !== rows
    ) {
      throw new TypeError(
        `wasmBackend.${name}: x and ${
          name === "layerNormForward" ? "y" : "dvalues"
        } must hold rows × features elements (rows = means.length = invStds.length, features = gamma.length > 0), got ${x.length} and ${other.length} for ${rows} and ${invStds.length} rows of ${features}`,
      );
    }
  }

  // Element offsets of one call's arrays (all of one length), inputs then outputs: a resident
  // array where it lies, any other one after another in this call's scratch from `start`,
  // the inputs copied there (copying outputs back is the caller's part).
  #place(inputs: FloatArray[], outputs: FloatArray[], start: number): number[] {
    const n = inputs[0].length;
    let end = start;
    const offsets = [...inputs, ...outputs].map((array) => {
      const at = this.#residentAt(array);
      if (at >= 0) return at;
      end += align(n);
      return end - align(n);
    });
    const heap = this.#reserve(end);
    inputs.forEach((array, k) => {
      if (this.#residentAt(array) < 0) heap.set(array, offsets[k]);
    });
    return offsets;
  }

  /**
   * A zeroed array resident in the shared memory (see `Backend.allocate`), or undefined where
   * there is none (no threads here) or the array is too small or would pass the cap.
   */
  allocate(length: number): FloatArray | undefined {
    const threads = this.#threads?.();
    return threads?.resident.allocate(this.float === "f64" ? "float64" : "float32", length);
  }

  /**
   * Adam's update of `value`, `momentum`, `cache` in place; see `Backend.adam`. Where the
   * moments lie resident in the shared memory (the optimizer placed them there), the shared
   * kernels update them in place, on the pool from `parallelTuning.minTask` elements.
   */
  adam(
    value: FloatArray,
    grad: FloatArray,
    momentum: FloatArray,
    cache: FloatArray,
    hyper: AdamHyper,
  ): void {
    const large = value.length >= parallelTuning.minTask;
    const pass = this.#residentPass(large, "adam", [momentum, cache]);
    if (!pass) return this.#adam(value, grad, momentum, cache, hyper);
    pass.kernels.#adam(value, grad, momentum, cache, hyper, pass.parallel);
  }

  /**
   * MultiHeadAttention's per-head forward loop (see `Backend.attentionForward`), a task per
   * range of (sample, head) pairs, on the pool when threads are wanted and the loop does at
   * least `parallelTuning.threshold` multiply-adds, where qkv, probs and concat lie resident
   * in the shared memory; false (nothing done) otherwise.
   */
  attentionForward(
    qkv: FloatArray,
    probs: FloatArray,
    concat: FloatArray,
    shape: AttentionShape,
  ): boolean {
    return this.#attention("attentionForward", [qkv, probs, concat, null], shape);
  }

  /** Its backward pass (see `Backend.attentionBackward`), placed likewise. */
  attentionBackward(
    qkv: FloatArray,
    probs: FloatArray,
    dconcat: FloatArray,
    dqkv: FloatArray,
    shape: AttentionShape,
  ): boolean {
    return this.#attention("attentionBackward", [qkv, probs, dconcat, dqkv], shape);
  }

  #attention(
    task: "attentionForward" | "attentionBackward",
    arrays: [FloatArray, FloatArray, FloatArray, FloatArray | null],
    { batch, heads, T, E, scale, causal }: AttentionShape,
  ): boolean {
    // The layer's own loop multiplies each head through this backend's matmul, which leaves
    // products of fewer than CROSSOVER multiply-adds, or with at most 4 output columns (E, or
    // T) or rows (T, in aᵀ·b), to other loops: there the tasks' gemm would not give its bits.
    if (T * T * E < CROSSOVER || E <= 4 || T <= 4) return false;
    const pairs = batch * heads, products = task === "attentionForward" ? 2 : 4;
    const large = products * pairs * T * T * E >= parallelTuning.threshold;
    const [mr, nr] = [this.#mr, this.#nr];
    const scratchLength = attentionScratch(T, E, mr, nr).at(-1)!;
    const need = (threads: number) => align(mr * nr) + 32 + threads * scratchLength;
    const host = this.#taskHost(large, task, arrays, need, true);
    if (!host) return false;
    const offsets = arrays.map((array) => array ? host.residentAt(array) : -1);
    if (offsets.some((at, i) => at < 0 && arrays[i] !== null)) return false;
    const descriptor = host.origin + align(mr * nr); // 128 bytes: 32 float32 or 16 float64
    const scratch = descriptor + align(32);
    const heap = host.reserve(scratch + host.threads * scratchLength);
    const bytes = heap.BYTES_PER_ELEMENT;
    writeAttentionDescriptor(heap.buffer, descriptor * bytes, [
      host.module,
      mr,
      nr,
      ...offsets,
      batch,
      heads,
      T,
      E,
      causal ? 1 : 0,
      scratch,
      scratchLength,
    ], scale);
    const tasks = Math.min(pairs, MAX_TASKS, 4 * host.threads);
    runTasks(host, task, descriptor * bytes, spans(pairs, Math.ceil(pairs / tasks)));
    return true;
  }

  /**
   * The LSTM's float32 recurrence, forward (see `Backend.lstmForward`): a task per range of
   * batch rows through all T steps, on the pool when threads are wanted and the recurrence
   * does at least `parallelTuning.threshold` multiply-adds, where gates, cells, tanhCells and
   * hiddens lie resident in the shared memory; false (nothing done) otherwise.
   */
  lstmForward(
    gates: Float32Array,
    cells: Float32Array,
    tanhCells: Float32Array,
    hiddens: Float32Array,
    recurrentWeights: Float32Array,
    batch: number,
    steps: number,
    hidden: number,
  ): boolean {
    const arrays = [gates, cells, tanhCells, hiddens, null, null];
    return this.#lstm("lstmForward", arrays, recurrentWeights, [batch, steps, hidden, 0]);
  }

  /** Its backward pass (see `Backend.lstmBackward`), placed likewise. */
  lstmBackward(
    gates: Float32Array,
    cells: Float32Array,
    tanhCells: Float32Array,
    dvalues: Float32Array,
    sequences: boolean,
    dgates: Float32Array,
    recurrentWeights: Float32Array,
    batch: number,
    steps: number,
    hidden: number,
  ): boolean {
    const arrays = [gates, cells, tanhCells, null, dvalues, dgates];
    const sizes = [batch, steps, hidden, sequences ? 1 : 0];
    return this.#lstm("lstmBackward", arrays, recurrentWeights, sizes);
  }

  // What the LSTM's and the GRU's jobs size alike (G gate columns), or null where the layer's
  // own loop would not multiply by these kernels: it multiplies by prepareRight, which leaves
  // products of fewer than CROSSOVER multiply-adds or at most 4 columns (h·U has G, the gate
  // gradients·Uᵀ H) to jsBackend's loops, whose bits the tasks' gemm would not give.
  #recurrentPlan(
    forward: boolean,
    G: number,
    B: number,
    T: number,
    H: number,
    dvalues: Float32Array | null,
  ): RecurrentPlan | null {
    if (this.float !== "f32") return null;
    if (B * H * G < CROSSOVER || (forward ? G : H) <= 4) return null;
    const [mr, nr] = [this.#mr, this.#nr];
    const rows = (threads: number) => Math.ceil(B / Math.min(B, threads));
    return {
      large: 2 * T * B * H * G >= parallelTuning.threshold,
      rows,
      scratchLength: (threads) => recurrentScratch(rows(threads), G, mr, nr).at(-1)!,
      // U packed whole panels wide: [H, G] as h·U's right operand, [G, H] as the gradients·Uᵀ's.
      packed: align(Math.max(Math.ceil(G / nr) * nr * H, Math.ceil(H / nr) * nr * G)),
      // dvalues (backward's input) is copied in when it does not lie resident.
      copied: dvalues ? align(dvalues.length) : 0,
    };
  }

  #lstm(
    task: "lstmForward" | "lstmBackward",
    arrays: (Float32Array | null)[],
    u: Float32Array, // [H, G]
    [B, T, H, sequences]: number[],
  ): boolean {
    const G = 4 * H, [mr, nr] = [this.#mr, this.#nr], dvalues = arrays[4];
    const plan = this.#recurrentPlan(task === "lstmForward", G, B, T, H, dvalues);
    if (!plan) return false;
    const { large, rows, scratchLength, packed, copied } = plan;
    const fixed = align(mr * nr) + 32 + 128 + packed + 2 * align(B * H) + copied;
    const need = (threads: number) => fixed + threads * scratchLength(threads) + G * H;
    const host = this.#taskHost(large, task, arrays, need, true);
    if (!host) return false;
    const offsets = arrays.map((array) => array ? host.residentAt(array) : -1);
    if (offsets.some((at, i) => at < 0 && arrays[i] !== null && i !== 4)) return false;
    const descriptor = host.origin + align(mr * nr); // 128 bytes
    // the gate functions' 64 doubles (forward's cells) above the descriptor
    const table = descriptor + 32, packedU = table + 128;
    const dh = packedU + packed, dc = dh + align(B * H);
    const copy = dc + align(B * H), scratch = copy + copied, length = scratchLength(host.threads);
    const heap = host.reserve(scratch + Math.max(host.threads * length, G * H));
    if (dvalues && offsets[4] < 0) {
      heap.set(dvalues, copy);
      offsets[4] = copy;
    }
    // U [H, G] packed as the right operand once for every task: as h·U forward, as dgates·Uᵀ
    // backward (from a spare spot: the scratch, which the tasks overwrite afterwards).
    heap.set(u, scratch);
    if (task === "lstmForward") host.exports.packRowsR(scratch * 4, G, H, G, packedU * 4);
    else host.exports.packColsR(scratch * 4, G, H, G, packedU * 4);
    heap.fill(0, dh, dh + 2 * align(B * H));
    const cells = host.exports as typeof host.exports & LstmCellKernels;
    if (task === "lstmForward") cells.lstmExpFractions(table * 4);
    writeRecurrentDescriptor(heap.buffer, descriptor * 4, [
      ...offsets.slice(0, 6),
      dh,
      dc,
      packedU,
      B,
      T,
      H,
      sequences,
      scratch,
      length,
      mr,
      nr,
      table,
    ]);
    runTasks(host, task, descriptor * 4, spans(B, rows(host.threads)));
    return true;
  }

  /**
   * The GRU's float32 recurrence, forward (see `Backend.gruForward`): a task per range of
   * batch rows through all T steps, on the pool when threads are wanted and the recurrence
   * does at least `parallelTuning.threshold` multiply-adds, where gates, recurrent and hiddens
   * lie resident in the shared memory; false (nothing done) otherwise, and where the layer's
   * own loop would not compute a step's product by these kernels (fewer than `CROSSOVER`
   * multiply-adds or at most 4 output columns), whose bits the tasks would not give.
   */
  gruForward(
    gates: Float32Array,
    recurrent: Float32Array,
    hiddens: Float32Array,
    recurrentWeights: Float32Array,
    recurrentBiases: Float32Array,
    batch: number,
    steps: number,
    hidden: number,
  ): boolean {
    const arrays = [gates, recurrent, hiddens, null, null, null];
    const sizes = [batch, steps, hidden, 0];
    return this.#gru("gruForward", arrays, recurrentWeights, recurrentBiases, sizes);
  }

  /** Its backward pass (see `Backend.gruBackward`), placed likewise. */
  gruBackward(
    gates: Float32Array,
    recurrent: Float32Array,
    hiddens: Float32Array,
    dvalues: Float32Array,
    sequences: boolean,
    dgates: Float32Array,
    drecurrent: Float32Array,
    recurrentWeights: Float32Array,
    batch: number,
    steps: number,
    hidden: number,
  ): boolean {
    const arrays = [gates, recurrent, hiddens, dvalues, dgates, drecurrent];
    const sizes = [batch, steps, hidden, sequences ? 1 : 0];
    return this.#gru("gruBackward", arrays, recurrentWeights, null, sizes);
  }

  #gru(
    task: "gruForward" | "gruBackward",
    arrays: (Float32Array | null)[], // gates, recurrent, hiddens, dvalues, dgates, drecurrent
    u: Float32Array, // [H, G]
    biases: Float32Array | null, // [G]: b_h (forward)
    [B, T, H, sequences]: number[],
  ): boolean {
    const G = 3 * H, [mr, nr] = [this.#mr, this.#nr], dvalues = arrays[3];
    const plan = this.#recurrentPlan(task === "gruForward", G, B, T, H, dvalues);
    if (!plan) return false;
    const { large, rows, scratchLength, packed, copied } = plan;
    const fixed = align(mr * nr) + 32 + align(G) + packed + align(B * H) + copied;
    const need = (threads: number) => fixed + Math.max(threads * scratchLength(threads), G * H);
    const host = this.#taskHost(large, task, arrays, need, true);
    if (!host) return false;
    const offsets = arrays.map((array) => array ? host.residentAt(array) : -1);
    if (offsets.some((at, i) => at < 0 && arrays[i] !== null && i !== 3)) return false;
    const descriptor = host.origin + align(mr * nr); // 128 bytes
    const bias = descriptor + 32, packedU = bias + align(G), dh = packedU + packed;
    const copy = dh + align(B * H), scratch = copy + copied, length = scratchLength(host.threads);
    const heap = host.reserve(scratch + Math.max(host.threads * length, G * H));
    if (dvalues && offsets[3] < 0) {
      heap.set(dvalues, copy);
      offsets[3] = copy;
    }
    // U [H, G] packed as the right operand once for every task: as h·U forward, as drec·Uᵀ
    // backward (from a spare spot: the scratch, which the tasks overwrite afterwards).
    heap.set(u, scratch);
    if (task === "gruForward") {
      host.exports.packRowsR(scratch * 4, G, H, G, packedU * 4);
      heap.set(biases!, bias);
    } else {
      host.exports.packColsR(scratch * 4, G, H, G, packedU * 4);
      heap.fill(0, dh, dh + B * H);
    }
    writeRecurrentDescriptor(heap.buffer, descriptor * 4, [
      ...offsets,
      dh,
      packedU,
      bias,
      B,
      T,
      H,
      sequences,
      scratch,
      length,
      mr,
      nr,
    ]);
    runTasks(host, task, descriptor * 4, spans(B, rows(host.threads)));
    return true;
  }

  #adam(
    value: FloatArray,
    grad: FloatArray,
    momentum: FloatArray,
    cache: FloatArray,
    hyper: AdamHyper,
    parallel?: Parallel,
  ): void {
    const n = value.length, B = this.#bytes;
    const descriptor = this.#origin() + align(this.#mr * this.#nr); // 128 bytes, when parallel
    const arrays = [value, grad, momentum, cache];
    const at = this.#place(arrays, [], descriptor + 128 / B);
    const { beta1, beta2, epsilon } = hyper;
    const scalars = [
      beta1,
      1 - beta1,
      beta2,
      1 - beta2,
      -hyper.learningRate,
      hyper.correction1,
      hyper.correction2,
      epsilon,
    ];
    if (parallel) {
      const module = this.float === "f64" ? 1 : 0;
      const offsets = [module, at[0], at[1], at[2], at[3]] as const;
      writeAdamDescriptor(this.#heap.buffer, descriptor * B, offsets, scalars);
      // An element costs about what 16 multiply-adds do (two divisions and a square root).
      const tasks = taskCount(16 * n, parallel.pool.workers + 1);
      this.#host(parallel).runJob("adam", descriptor * B, spans(n, Math.ceil(n / tasks / 16) * 16));
    } else {
      const [s0, s1, s2, s3, s4, s5, s6, s7] = scalars;
      this.#exports.adam(
        at[0] * B,
        at[1] * B,
        at[2] * B,
        at[3] * B,
        n,
        s0,
        s1,
        s2,
        s3,
        s4,
        s5,
        s6,
        s7,
      );
    }
    // The updated arrays that were copied in go back out.
    for (const k of [0, 2, 3]) {
      if (this.#residentAt(arrays[k]) < 0) arrays[k].set(this.#slice(at[k], n));
    }
  }
}

let kernels: WasmKernels | null | undefined;
let kernels64: WasmKernels | null | undefined;

/**
 * Instantiates one build of the kernels, or returns null where the runtime rejects it;
 * `threads` as in {@linkcode WasmKernels}'s constructor.
 */
export function instantiateKernels(
  variant: "relaxed-simd" | "simd",
  float: WasmFloat = "f32",
  threads?: () => Threads | null,
): WasmKernels | null {
  if (typeof WebAssembly !== "object") return null;
  const relaxed = variant === "relaxed-simd";
  const bytes = decode(
    float === "f64"
      ? (relaxed ? RELAXED_KERNELS_F64 : PLAIN_KERNELS_F64)
      : (relaxed ? RELAXED_KERNELS : PLAIN_KERNELS),
  );
  return WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)
    ? new WasmKernels(bytes, variant, float, undefined, threads)
    : null;
}

/**
 * The float32 and float64 kernels on one shared memory, with the worker pool that runs their
 * tasks: created on first use where {@linkcode threadsUnavailable} is null. The pool itself
 * starts on the first product large enough for it.
 */
export class Threads {
  /** The memory both kernel modules and every worker use. */
  readonly memory: WebAssembly.Memory;
  /** The float32 kernels (task module 0). */
  readonly f32: WasmKernels;
  /** The float64 kernels (task module 1). */
  readonly f64: WasmKernels;
  /** Layers' training buffers placed in {@linkcode memory} (see `Backend.allocate`). */
  readonly resident: ResidentHeap;
  #pool: WorkerPool | undefined;
  #backoff = 0; // products to run on one thread after the last contended job
  #skip = 0; // of which still to run

  private constructor(variant: "relaxed-simd" | "simd") {
    const relaxed = variant === "relaxed-simd";
    this.memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
    const module = (base64: string) =>
      new WebAssembly.Module(decode(base64) as Uint8Array<ArrayBuffer>);
    const f32 = module(relaxed ? SHARED_RELAXED_KERNELS : SHARED_PLAIN_KERNELS);
    const f64 = module(relaxed ? SHARED_RELAXED_KERNELS_F64 : SHARED_PLAIN_KERNELS_F64);
    this.resident = new ResidentHeap(this.memory);
    this.f32 = new WasmKernels(f32, variant, "f32", this.memory, undefined, this.resident);
    this.f64 = new WasmKernels(f64, variant, "f64", this.memory, undefined, this.resident);
  }

  /** The shared kernels for `variant`, or null where the runtime rejects a shared memory. */
  static create(variant: "relaxed-simd" | "simd"): Threads | null {
    try {
      return new Threads(variant);
    } catch (error) {
      disableThreads(`no shared WebAssembly.Memory here: ${(error as Error).message}`);
      return null;
    }
  }

  /**
   * The pool for a large product: started for {@linkcode getThreads} − 1 workers; null at 1
   * thread, and while backing off from a busy machine ({@linkcode contentionBackoff}) unless
   * the job is a layer's `wholePass` (a recurrence's or attention's heads': one job of tens
   * of milliseconds, which a back-off after one slow millisecond of product would otherwise
   * put on one thread; W6's LSTM lost a third of its recurrence jobs in its first steps so).
   */
  pool(wholePass = false): WorkerPool | null {
    const threads = getThreads();
    if (threads < 2) return null;
    if (this.#skip > 0 && parallelTuning.backoff && !wholePass) {
      this.#skip--;
      return null;
    }
    if (this.#pool?.workers !== threads - 1) {
      this.#pool?.close("the thread count changed");
      const modules = [this.f32.module, this.f64.module];
      const instances = [this.f32.instance, this.f64.instance];
      this.#pool = new WorkerPool(this.memory, modules, instances, threads - 1, poolTiming);
    }
    return this.#pool;
  }

  /** Test hook: back off from the pool for the next `products` products, as after a slow job. */
  backOff(products: number): void {
    this.#backoff = this.#skip = products;
  }

  /** The pool if one has been started (for tests and benchmarks). */
  get current(): WorkerPool | undefined {
    return this.#pool;
  }

  /**
   * Runs the pool's job, and with `judge` backs off from the pool after a job that gained
   * too little ({@linkcode contentionBackoff}). When the pool fails (a worker vanished), it
   * is closed and these kernels are dropped with it: a worker that only seemed dead could
   * still write into their memory, so the next product starts on a fresh memory and pool.
   */
  run(pool: WorkerPool, where: string, judge = true): void {
    try {
      pool.run(where);
      // Not while workers are still starting: the caller then runs most tasks itself, which
      // says nothing about the machine (and backed off W4's first steps onto one thread).
      if (judge && parallelTuning.backoff && pool.live === pool.workers) {
        this.#backoff = contentionBackoff(pool.lastJob, this.#backoff);
        this.#skip = this.#backoff;
      }
    } catch (error) {
      if (pool.closed) {
        recordThreadFailure(pool.closed);
        if (threads === this) threads = undefined;
      }
      throw error;
    }
  }

  /** Stops the workers; the next large product starts a new pool if threads are wanted. */
  closePool(): void {
    this.#pool?.close("setThreads");
    this.#pool = undefined;
  }
}

/**
 * How many products to run on the calling thread after a job, given the last `backoff`.
 * The job's speed-up is estimated from the caller's side: it ran `callerTasks` of `tasks`
 * in `work` ms, so one thread would have taken about work·tasks/callerTasks, against the
 * work + wait it took. Below 1.1× — a worker that was descheduled holding a task, or that
 * barely ran, because another process has its core — a second thread costs about what it
 * gives, so the next products stay on the calling thread: 1, then 2, 4 … 256 while jobs
 * keep gaining too little, none again after one that gains. The bits are the same either
 * way.
 */
export function contentionBackoff(
  { tasks, callerTasks, work, wait }: JobReport,
  backoff: number,
): number {
  const alone = callerTasks > 0 ? work * tasks / callerTasks : Infinity;
  // Too short to judge: a worker asleep between jobs can take most of a millisecond to wake
  // on a virtual machine (an idle vCPU waits for its host), so the caller runs all of a
  // short job alone without any other process on the core.
  if (work + wait < 1) return backoff;
  if (alone >= 1.1 * (work + wait)) return 0;
  return Math.min(256, Math.max(1, backoff * 2));
}

let threads: Threads | null | undefined;
let poolTiming: Partial<PoolTiming> = {};
let listening = false;

/** The shared kernels and their pool, created on first use; null where threads are unavailable. */
export function loadThreads(variant: "relaxed-simd" | "simd"): Threads | null {
  if (threads) return threads;
  if (threadsUnavailable() !== null) return null;
  threads = Threads.create(variant);
  if (!listening) {
    listening = true;
    onThreadsChange(() => threads?.closePool());
  }
  return threads;
}

/** Test hook: the timing of pools started from now on (defaults: `POOL_DEFAULTS`). */
export function setPoolTiming(timing: Partial<PoolTiming>): void {
  poolTiming = timing;
  threads?.closePool();
}

let variant: WasmSupport | undefined;

/** The build this runtime validates: relaxed SIMD, else plain SIMD, else none. */
function supportedVariant(): WasmSupport {
  if (variant === undefined) {
    const valid = (base64: string) =>
      typeof WebAssembly === "object" &&
      WebAssembly.validate(decode(base64) as Uint8Array<ArrayBuffer>);
    variant = valid(RELAXED_KERNELS) ? "relaxed-simd" : valid(PLAIN_KERNELS) ? "simd" : "none";
  }
  return variant;
}

/**
 * Loads the float32 kernels on first use: the relaxed-SIMD build where
 * `WebAssembly.validate` accepts it, else the plain SIMD build; null where neither validates.
 * Large products go on to the builds on a shared memory ({@linkcode Threads}), created on
 * the first one where worker threads are available.
 */
export function loadWasmKernels(): WasmKernels | null {
  if (kernels === undefined) {
    const v = supportedVariant();
    kernels = v === "none" ? null : instantiateKernels(v, "f32", () => loadThreads(v));
  }
  return kernels;
}

/** The float64 kernels, loaded on first use like {@linkcode loadWasmKernels}. */
export function loadWasmKernels64(): WasmKernels | null {
  if (kernels64 === undefined) {
    const v = supportedVariant();
    kernels64 = v === "none" ? null : instantiateKernels(v, "f64", () => loadThreads(v));
  }
  return kernels64;
}

/**
 * What this runtime supports: `"relaxed-simd"` (fused multiply-add kernels), `"simd"`
 * (mul + add kernels, e.g. Node 20 without flags) or `"none"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wasmSupport } from "@chainrule/nn";
 *
 * assert.ok(["relaxed-simd", "simd", "none"].includes(wasmSupport()));
 * ```
 */
export function wasmSupport(): WasmSupport {
  return loadWasmKernels()?.variant ?? "none";
}

// Below this many multiply-adds (m·k·n) a product stays in JS: copying, packing and the
// call cost more than SIMD saves. Measured: JS wins at 4³–6³, wasm from about 8³ on, and
// wasm wins even on thin training shapes such as 300×64×3 (docs/speed.md).
const CROSSOVER = 512;
// The same for the bias add, the column sums and ReLU (elements).
const ELEMENTWISE = 2048;

/** The kernels for three arrays of one element type (float32 or float64), else null. */
function kernelsFor(x: FloatArray, y: FloatArray, z: FloatArray): WasmKernels | null {
  if (x instanceof Float32Array) {
    return y instanceof Float32Array && z instanceof Float32Array ? loadWasmKernels() : null;
  }
  return y instanceof Float64Array && z instanceof Float64Array ? loadWasmKernels64() : null;
}

// The most elements of each of (up to four) arrays that an element-wise pass copies into the
// kernels' memory at once: an eighth of the budget. Longer arrays go in pieces, each element
// computed alone (the column sums in row order, carried from piece to piece): the same bits.
function pieceLength(array: FloatArray): number {
  return Math.max(16, Math.floor(parallelTuning.memoryBytes / 8 / array.BYTES_PER_ELEMENT));
}

// Runs `run(first, count)` over [0, length) in pieces of at most `most`, or `whole()` (on the
// arrays themselves: no views made) when one piece holds it all.
function inPieces(
  length: number,
  most: number,
  whole: () => void,
  run: (first: number, count: number) => void,
): void {
  if (length <= most) return whole();
  for (let first = 0; first < length; first += most) run(first, Math.min(most, length - first));
}

// The element-wise passes (bias add, column sums, ReLU) of large enough arrays run in wasm
// for both element types: in W1's float64 training step this beat the JS loops by 0.7 s of
// 2.2 s (the JS loops ran 3–5× slower there than in isolation).
function elementwiseKernels(
  length: number,
  x: FloatArray,
  y: FloatArray,
  z: FloatArray,
): WasmKernels | null {
  return length >= ELEMENTWISE ? kernelsFor(x, y, z) : null;
}

/**
 * The default backend where WebAssembly SIMD is available: float32 products run in f32x4
 * kernels (6×8 register tiles, packed panels, cache-blocked), float64 products in f64x2
 * kernels (6×4 tiles), with `relaxed_madd` where the runtime supports relaxed SIMD; thin
 * products (at most four output columns) skip the packing. It decides per call: mixed
 * element types, and products too small to gain from SIMD, go to {@linkcode jsBackend}; the
 * bias add, the column sums and ReLU run in SIMD kernels too, and Conv2D's convolutions run
 * whole, a sample at a time, on the worker pool.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { naiveBackend, wasmBackend } from "@chainrule/nn/plugin";
 *
 * const a = Float32Array.from({ length: 64 * 48 }, (_, i) => (i % 7) - 3);
 * const b = Float32Array.from({ length: 48 * 40 }, (_, i) => (i % 5) - 2);
 * const fast = new Float32Array(64 * 40);
 * const reference = new Float32Array(64 * 40);
 * wasmBackend.matmul(a, b, fast, 64, 48, 40);
 * naiveBackend.matmul(a, b, reference, 64, 48, 40);
 * assert.deepEqual(fast, reference); // small integers: exact in float32
 * ```
 */
export const wasmBackend: Backend = {
  name: "wasm",
  matmul(a, b, c, m, k, n, accumulate = false) {
    const kernels = m * k * n >= CROSSOVER ? kernelsFor(a, b, c) : null;
    if (kernels) kernels.product(0, a, b, c, m, k, n, accumulate);
    else jsBackend.matmul(a, b, c, m, k, n, accumulate);
  },
  matmulBias(a, b, bias, c, m, k, n) {
    const kernels = m * k * n >= CROSSOVER && bias.constructor === c.constructor
      ? kernelsFor(a, b, c)
      : null;
    if (kernels) kernels.product(0, a, b, c, m, k, n, false, bias);
    else {
      wasmBackend.matmul(a, b, c, m, k, n);
      wasmBackend.addBias(c, bias, m, n);
    }
  },
  matmulTransA(a, b, c, m, k, n, accumulate = false) {
    const kernels = m * k * n >= CROSSOVER ? kernelsFor(a, b, c) : null;
    if (kernels) kernels.product(1, a, b, c, m, k, n, accumulate);
    else jsBackend.matmulTransA(a, b, c, m, k, n, accumulate);
  },
  matmulTransB(a, b, c, m, k, n, accumulate = false) {
    const kernels = m * k * n >= CROSSOVER ? kernelsFor(a, b, c) : null;
    if (kernels) kernels.product(2, a, b, c, m, k, n, accumulate);
    else jsBackend.matmulTransB(a, b, c, m, k, n, accumulate);
  },
  prepareRight(b, k, n, transposed = false) {
    const kernels = kernelsFor(b, b, b);
    if (kernels) return kernels.prepareRight(b, k, n, transposed);
    const js = transposed ? jsBackend.matmulTransB : jsBackend.matmul;
    return (a, c, m, accumulate = false) =>
      transposed ? js(a, b, c, m, n, k, accumulate) : js(a, b, c, m, k, n, accumulate);
  },
  addBias(c, bias, m, n) {
    const kernels = elementwiseKernels(m * n, c, bias, bias);
    if (!kernels) return jsBackend.addBias(c, bias, m, n);
    const rows = Math.max(1, Math.floor(pieceLength(c) / n));
    inPieces(m, rows, () => kernels.addBias(c, bias, m, n), (r0, count) => {
      kernels.addBias(c.subarray(r0 * n, (r0 + count) * n), bias, count, n);
    });
  },
  sumColumns(a, out, m, n, accumulate = false) {
    const kernels = elementwiseKernels(m * n, a, out, out);
    if (!kernels) return jsBackend.sumColumns(a, out, m, n, accumulate);
    const rows = Math.max(1, Math.floor(pieceLength(a) / n));
    inPieces(m, rows, () => kernels.sumColumns(a, out, m, n, accumulate), (r0, count) => {
      const part = a.subarray(r0 * n, (r0 + count) * n);
      kernels.sumColumns(part, out, count, n, accumulate || r0 > 0);
    });
  },
  sumRowsByGroup(a, out, n, group, count) {
    const kernels = elementwiseKernels(a.length, a, out, out);
    if (!kernels) return sumRowsByGroup(a, out, n, group, count);
    kernels.sumRowsByGroup(a, out, n, group, count);
  },
  relu(x, out) {
    const kernels = elementwiseKernels(x.length, x, out, out);
    if (!kernels) return jsBackend.relu!(x, out);
    inPieces(x.length, pieceLength(x), () => kernels.relu(x, out), (i, count) => {
      kernels.relu(x.subarray(i, i + count), out.subarray(i, i + count));
    });
  },
  reluBackward(x, dvalues, out) {
    const kernels = elementwiseKernels(x.length, x, dvalues, out);
    if (!kernels) return jsBackend.reluBackward!(x, dvalues, out);
    inPieces(x.length, pieceLength(x), () => kernels.relu(x, out, dvalues), (i, count) => {
      const end = i + count;
      kernels.relu(x.subarray(i, end), out.subarray(i, end), dvalues.subarray(i, end));
    });
  },
  conv2dForward(x, w, bias, y, geometry) {
    const kernels = x.length + y.length <= parallelTuning.convElements ? kernelsFor(x, w, y) : null;
    if (!kernels || (bias && bias.constructor !== y.constructor)) return false;
    return kernels.conv2dForward(x, w, bias, y, geometry);
  },
  maxPool2dForward(x, y, argmax, geometry) {
    const kernels = kernelsFor(x, y, y);
    return kernels !== null && kernels.maxPool2dForward(x, y, argmax, geometry);
  },
  maxPool2dBackward(dvalues, dx, argmax, geometry) {
    const kernels = kernelsFor(dvalues, dx, dx);
    return kernels !== null && kernels.maxPool2dBackward(dvalues, dx, argmax, geometry);
  },
  conv2dBackward(x, w, dvalues, dw, dbias, dx, geometry) {
    const whole = 2 * x.length + dvalues.length <= parallelTuning.convElements;
    const kernels = whole ? kernelsFor(x, w, dvalues) : null;
    const same = (array: FloatArray | null | undefined) =>
      !array || array.constructor === x.constructor;
    if (!kernels || !same(dw) || !same(dbias) || !same(dx)) return false;
    return kernels.conv2dBackward(x, w, dvalues, dw, dbias, dx, geometry);
  },
  cubicMap(x, table, low, steps, out, dvalues) {
    const float32 = x instanceof Float32Array && out instanceof Float32Array &&
      (!dvalues || dvalues instanceof Float32Array);
    const kernels = float32 ? loadWasmKernels() : null;
    return kernels ? kernels.cubicMap(x, table, low, steps, out, dvalues) : null;
  },
  layerNormForward(x, gamma, beta, epsilon, y, means, invStds) {
    const float32 = x instanceof Float32Array && y instanceof Float32Array &&
      gamma instanceof Float32Array && beta instanceof Float32Array;
    const kernels = float32 ? loadWasmKernels() : null;
    return !!kernels && kernels.layerNormForward(x, gamma, beta, epsilon, y, means, invStds);
  },
  layerNormBackward(x, dvalues, gamma, means, invStds, dgamma, dbeta, dx, groupRows) {
    const float32 = x instanceof Float32Array && dvalues instanceof Float32Array &&
      gamma instanceof Float32Array && (!dx || dx instanceof Float32Array);
    const kernels = float32 ? loadWasmKernels() : null;
    return !!kernels &&
      kernels.layerNormBackward(x, dvalues, gamma, means, invStds, dgamma, dbeta, dx, groupRows);
  },
  allocate(dtype, length) {
    if (length < RESIDENT_MIN_ELEMENTS) return undefined;
    return (dtype === "float64" ? loadWasmKernels64() : loadWasmKernels())?.allocate(length);
  },
  attentionForward(qkv, probs, concat, shape) {
    const kernels = kernelsFor(qkv, probs, concat);
    return kernels !== null && kernels.attentionForward(qkv, probs, concat, shape);
  },
  attentionBackward(qkv, probs, dconcat, dqkv, shape) {
    const kernels = kernelsFor(qkv, probs, dconcat);
    return kernels !== null && dqkv.constructor === qkv.constructor &&
      kernels.attentionBackward(qkv, probs, dconcat, dqkv, shape);
  },
  lstmForward(gates, cells, tanhCells, hiddens, recurrentWeights, batch, steps, hidden) {
    const kernels = loadWasmKernels();
    return !!kernels &&
      kernels.lstmForward(gates, cells, tanhCells, hiddens, recurrentWeights, batch, steps, hidden);
  },
  lstmBackward(gates, cells, tanhCells, dvalues, sequences, dgates, u, batch, steps, hidden) {
    const kernels = loadWasmKernels();
    return !!kernels &&
      kernels.lstmBackward(
        gates,
        cells,
        tanhCells,
        dvalues,
        sequences,
        dgates,
        u,
        batch,
        steps,
        hidden,
      );
  },

  gruForward(gates, recurrent, hiddens, recurrentWeights, recurrentBiases, batch, steps, hidden) {
    const kernels = loadWasmKernels();
    return !!kernels &&
      kernels.gruForward(
        gates,
        recurrent,
        hiddens,
        recurrentWeights,
        recurrentBiases,
        batch,
        steps,
        hidden,
      );
  },
  gruBackward(gates, recurrent, hiddens, dvalues, sequences, dgates, drecurrent, u, B, T, H) {
    const kernels = loadWasmKernels();
    return !!kernels &&
      kernels.gruBackward(
        gates,
        recurrent,
        hiddens,
        dvalues,
        sequences,
        dgates,
        drecurrent,
        u,
        B,
        T,
        H,
      );
  },
  adam(value, grad, momentum, cache, hyper) {
    const kernels = elementwiseKernels(value.length, value, grad, momentum);
    if (kernels && cache.constructor === value.constructor) {
      const whole = () => kernels.adam(value, grad, momentum, cache, hyper);
      inPieces(value.length, pieceLength(value), whole, (i, count) => {
        const [v, g, m, c] = [value, grad, momentum, cache].map((array) =>
          array.subarray(i, i + count)
        );
        kernels.adam(v, g, m, c, hyper);
      });
    } else adamLoop(value, grad, momentum, cache, hyper);
  },
  batchNorm(pass, batch, features, positions, arrays) {
    const first = arrays.x ?? arrays.dvalues!;
    const kernels = kernelsFor(first, arrays.dvalues ?? first, arrays.out ?? first);
    return kernels !== null && kernels.batchNorm(pass, batch, features, positions, arrays);
  },
  winogradInputs(x, first, count, channels, height, width, top, left, tilesH, tilesW, v) {
    const kernels = kernelsFor(x, v, v);
    return kernels !== null &&
      kernels.winogradInputs(
        x,
        first,
        count,
        channels,
        height,
        width,
        top,
        left,
        tilesH,
        tilesW,
        v,
      );
  },
  winogradOutputs(m, first, count, out, outH, outW, tilesH, tilesW, y, bias) {
    const kernels = kernelsFor(m, y, y);
    if (!kernels || (bias && bias.constructor !== y.constructor)) return false;
    return kernels.winogradOutputs(m, first, count, out, outH, outW, tilesH, tilesW, y, bias);
  },
  winogradGradOutputs(dvalues, first, count, out, outH, outW, tilesH, tilesW, dm) {
    const kernels = kernelsFor(dvalues, dm, dm);
    return kernels !== null &&
      kernels.winogradGradOutputs(dvalues, first, count, out, outH, outW, tilesH, tilesW, dm);
  },
  winogradConvolution(x, u, y, shape, bias) {
    const kernels = x.length + y.length <= parallelTuning.convElements ? kernelsFor(x, u, y) : null;
    if (!kernels || (bias && bias.constructor !== y.constructor)) return false;
    return kernels.winogradConvolution(x, u, y, shape, bias);
  },
  winogradWeights(x, dvalues, du, dbias, shape) {
    const fits = x.length + dvalues.length <= parallelTuning.convElements;
    const kernels = fits ? kernelsFor(x, dvalues, du) : null;
    if (!kernels || (dbias && dbias.constructor !== du.constructor)) return false;
    return kernels.winogradWeights(x, dvalues, du, dbias, shape);
  },
} as Backend & WinogradTransforms;

// LayerNorm's kernel header at element `at` of the float32 heap (see tools/wasm/kernels.ts):
// features, rows per group, whether dinputs are wanted, epsilon, then gamma and beta.
function writeLayerNormParams(
  heap: FloatArray,
  at: number,
  gamma: FloatArray,
  groupRows: number,
  inputs: boolean,
  epsilon = 0,
  beta?: FloatArray,
): void {
  const features = gamma.length;
  const header = new Int32Array(heap.buffer, at * 4, 4);
  header[0] = features;
  header[1] = groupRows;
  header[2] = inputs ? 1 : 0;
  new Float64Array(heap.buffer, at * 4 + 16, 1)[0] = epsilon;
  heap.set(gamma, at + 8);
  if (beta) heap.set(beta, at + 8 + features);
}

// The elements of a Winograd transform's job above the origin: its descriptor, the copy of
// the biases and each thread's scratch.
function winogradElements(z: WinogradSizes, threads: number): number {
  return 32 + ((z.channels + 15) & ~15) + threads * winogradPlaneScratch(z.tilesH, z.tilesW);
}

// A Winograd transform's job on `host`: the descriptor (and a copy of the biases) at the
// start of its scratch, each thread's scratch above, then a task per range of planes over
// `source` and `target` (element offsets). The image side (x of the input transform,
// dvalues of the output transform's gradient, y of the output transform) when not resident
// (offset −1) goes through a copy of the chunk's samples above the scratch.
function runWinograd(
  host: TaskHost,
  task: "winogradInputs" | "winogradOutputs" | "winogradGradOutputs",
  z: WinogradSizes,
  source: number,
  target: number,
  images: FloatArray,
  bias?: FloatArray,
): void {
  const length = winogradPlaneScratch(z.tilesH, z.tilesW);
  const biasAt = host.origin + 32, scratch = biasAt + ((z.channels + 15) & ~15);
  const copyAt = scratch + host.threads * length;
  const sample = z.channels * z.height * z.width, chunk = z.count * sample;
  const input = task !== "winogradOutputs"; // the images are the source
  const copied = (input ? source : target) < 0;
  const heap = host.reserve(copied ? copyAt + chunk : copyAt);
  const from = z.first * sample;
  if (copied && input) heap.set(images.subarray(from, from + chunk), copyAt);
  // The copy holds samples [first, first + count): an offset as if it held them all.
  if (copied && input) source = copyAt - from;
  if (copied && !input) target = copyAt - from;
  if (bias) heap.set(bias, biasAt);
  const at = host.origin * 4;
  const placement = { source, target, bias: bias ? biasAt : -1, scratch, scratchLength: length };
  writeWinogradDescriptor(new Int32Array(heap.buffer), at / 4, z, placement);
  const planes = z.count * z.channels;
  const tasks = Math.min(planes, MAX_TASKS, 8 * host.threads);
  runTasks(host, task, at, spans(planes, Math.ceil(planes / tasks)));
  if (copied && !input) images.set(heap.subarray(copyAt, copyAt + chunk), from);
}
