import { describe } from "../core/_describe.ts";
import { workerSource } from "./_worker_source.ts";
import { jsTasks } from "./_tasks.ts";
import {
  JS_MODULE,
  JS_TASK_NAMES,
  type JsTask,
  type JsTaskName,
  type TaskContext,
} from "./_task_context.ts";

// A pool of Web Workers that run wasm kernel calls ("tasks") on one shared memory, in the
// manner of pthreadpool: the calling thread publishes a job (a table of tasks in a small
// SharedArrayBuffer), wakes the workers, and claims tasks itself like any worker, so a job
// finishes even when every worker is asleep, slow or gone. Tasks are claimed one at a time
// from a single word holding (total << 16 | next), by compare-and-swap: a successful swap is
// a claim of the current job whatever job the claimer saw last, so the caller never waits
// for workers to leave a job. The caller returns once every task is counted done.
//
// Failure: a task that throws is reported through the control block and becomes an Error in
// the caller; a worker that vanishes holding a task (killed, out of memory, uncaught error)
// stops the done count, and after `stallMs` without progress the caller throws and the pool
// is closed. The caller never waits on an event (it is blocked in Atomics.wait, so events
// would not be delivered), only on the shared counters.

/** The exported kernel functions a task may call, by index (the same in every module). */
export const TASK_FUNCTIONS = [
  "gemm",
  "packRowsL",
  "packRowsR",
  "packColsL",
  "packColsR",
  "outerRows",
  "relu",
  "reluBackward",
  "cubicMap",
  "layerNormForward",
  "layerNormBackward",
] as const;

/**
 * A function as a task names it: a kernel export (task modules 0 and 1), or a JavaScript
 * task (module {@linkcode JS_MODULE}, backends/_tasks.ts).
 */
export type TaskFunction = typeof TASK_FUNCTIONS[number] | JsTaskName;

/** The most tasks one job holds (16 bits of the claim word, and the table's size). */
export const MAX_TASKS = 1024;
/** The most workers one pool has (its state slots). */
export const MAX_WORKERS = 63;
const ROW = 12; // a task: module, function, nine i32 arguments, one spare

// The control block (Int32 indices). The words that spinning threads read (wake, claim,
// done) have a 64-byte cache line each, so that one thread's spin does not slow another's
// compare-and-swap.
const LAYOUT = {
  wake: 0, // job counter; sleeping workers wait on it
  claim: 16, // total << 16 | next unclaimed task
  done: 32, // tasks finished in this job
  sleepers: 48, // workers inside Atomics.wait on `wake`
  callerWaiting: 49, // the caller is inside Atomics.wait on `done`
  stop: 50, // 1: workers exit
  error: 51, // 1: a task threw; its message follows
  kill: 52, // test hook: what the next worker to claim a task does
  spinUs: 53, // how long a worker spins for the next job before it sleeps (µs)
  idleMs: 54, // how long a worker sleeps without a job before it exits
  workerTasks: 55, // tasks run by workers since the pool started (for tests and benchmarks)
  states: 64, // one per worker slot (below)
  message: 128, // the first error's message, one UTF-16 unit per element
  messageLength: 200,
  tasks: 336,
  row: ROW,
  // Worker states.
  starting: 0,
  live: 1,
  exited: 2,
  failed: 3,
  // Test hooks (see `killNextWorker`).
  hookExit: 1,
  hookUncaught: 2,
  hookThrow: 3,
  functions: TASK_FUNCTIONS,
} as const;
const CONTROL_LENGTH = LAYOUT.tasks + MAX_TASKS * ROW;

/** What a test may make the next worker that claims a task do. */
export type WorkerFault = "exit" | "uncaught" | "throw";

/** Timing of a pool; the defaults are {@linkcode POOL_DEFAULTS}. */
export interface PoolTiming {
  /** How long a worker spins (with `Atomics.pause`) for the next job before it sleeps (µs). */
  spinUs: number;
  /** How long the caller spins for the workers' last tasks before it sleeps (µs). */
  callerSpinUs: number;
  /** A worker exits after this long without a job (ms). */
  idleMs: number;
  /** The caller gives up after this long without a task finishing (ms). */
  stallMs: number;
}

/**
 * The pool's timing. A worker spins 20 µs for the next job: long enough for the second job
 * of a product (the tiles, right after the packing), short enough not to take much from
 * the calling thread when another process holds the other core and the two share one (in
 * W2 a 100 µs spin between the products of a step cost ~10% of the epoch that way); a wake
 * from Atomics.wait measured ~5 µs, and the caller starts on the tasks meanwhile. The
 * caller spins 50 µs for the workers' last tasks, less than one task of a W2-sized product.
 * A second without a job ends a worker: a script exits about a second after its last
 * product. A task is at most a few milliseconds of work, so three seconds without one
 * finishing means a worker is gone (a descheduled thread on a loaded machine comes back
 * long before).
 */
export const POOL_DEFAULTS: Readonly<PoolTiming> = {
  spinUs: 20,
  callerSpinUs: 50,
  idleMs: 1000,
  stallMs: 3000,
};

const SLICE_MS = 50; // the caller's Atomics.wait slices while it watches for a stall
let workerUrl: string | undefined; // one blob: URL for every pool of the process

/** How the caller's part of a job went (see {@linkcode WorkerPool.lastJob}). */
export interface JobReport {
  /** Tasks in the job. */
  tasks: number;
  /** Of which the calling thread ran. */
  callerTasks: number;
  /** ms the caller spent running its tasks. */
  work: number;
  /** ms it then waited for the workers' last tasks. */
  wait: number;
}

/** Thrown by {@linkcode WorkerPool.run} when the pool can no longer be used. */
export class PoolError extends Error {
  override name = "PoolError";
}

/**
 * Workers sharing one wasm memory, each with its own instance of the same kernel modules; the
 * calling thread is one more participant. Workers start on the first job and exit after
 * `idleMs` without one; {@linkcode WorkerPool.close} stops them.
 */
export class WorkerPool {
  /** Worker threads besides the caller. */
  readonly workers: number;
  readonly #control: Int32Array;
  readonly #memory: WebAssembly.Memory;
  readonly #modules: WebAssembly.Module[];
  readonly #callers: ((...args: number[]) => void)[][];
  readonly #timing: PoolTiming;
  readonly #threads: (Worker | undefined)[];
  #tasks = 0;
  #closed: string | undefined;
  /**
   * The caller's last job: its tasks and all of them, the ms it spent on its own, then the
   * ms it waited for the workers' (long waits mean a worker was descheduled holding a task:
   * another process had its core).
   */
  lastJob: JobReport = { tasks: 0, callerTasks: 0, work: 0, wait: 0 };

  /**
   * A pool of `workers` threads (1–{@linkcode MAX_WORKERS}) over `memory`; `instances` are
   * the caller's own instances of `modules` on that memory (task module i runs in
   * instances[i]).
   */
  constructor(
    memory: WebAssembly.Memory,
    modules: WebAssembly.Module[],
    instances: WebAssembly.Instance[],
    workers: number,
    timing: Partial<PoolTiming> = {},
  ) {
    if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
      throw new RangeError(
        `WorkerPool: workers must be 1 to ${MAX_WORKERS}, got ${describe(workers)}`,
      );
    }
    this.workers = workers;
    this.#memory = memory;
    this.#modules = modules;
    this.#callers = instances.map((instance) =>
      TASK_FUNCTIONS.map((name) => instance.exports[name] as (...args: number[]) => void)
    );
    // The JavaScript tasks run on the caller as one more thread, after the workers' slots.
    const context: TaskContext = {
      memory,
      exports: instances.map((instance) =>
        instance.exports as unknown as TaskContext["exports"][0]
      ),
    };
    this.#callers[JS_MODULE] = jsTasks().map((task: JsTask) => (...args: number[]) =>
      task(context, workers, ...args)
    );
    this.#timing = { ...POOL_DEFAULTS, ...timing };
    this.#control = new Int32Array(new SharedArrayBuffer(CONTROL_LENGTH * 4));
    Atomics.store(this.#control, LAYOUT.spinUs, this.#timing.spinUs);
    Atomics.store(this.#control, LAYOUT.idleMs, this.#timing.idleMs);
    this.#threads = new Array(workers).fill(undefined);
  }

  /** Why the pool is closed (it runs nothing more), or undefined while it is usable. */
  get closed(): string | undefined {
    return this.#closed;
  }

  /** Workers that have started and not exited, as they report it (for tests and benchmarks). */
  get live(): number {
    let live = 0;
    for (let slot = 0; slot < this.workers; slot++) if (this.#state(slot) === LAYOUT.live) live++;
    return live;
  }

  /** Tasks the workers (not the caller) have run since the pool started. */
  get workerTasks(): number {
    return Atomics.load(this.#control, LAYOUT.workerTasks);
  }

  /** Adds a task to the job being prepared: `fn(...args)` of kernel module `module`. */
  task(module: number, fn: TaskFunction, ...args: number[]): void {
    if (this.#tasks >= MAX_TASKS) {
      throw new RangeError(`WorkerPool.task: a job holds at most ${MAX_TASKS} tasks`);
    }
    const row = LAYOUT.tasks + this.#tasks++ * ROW;
    const control = this.#control;
    control[row] = module;
    control[row + 1] = module === JS_MODULE
      ? JS_TASK_NAMES.indexOf(fn as JsTaskName)
      : TASK_FUNCTIONS.indexOf(fn as typeof TASK_FUNCTIONS[number]);
    for (let i = 0; i < 9; i++) control[row + 2 + i] = args[i] ?? 0;
  }

  /**
   * Runs the tasks added since the last run on the workers and the calling thread, and
   * returns when all are done. `where` names the caller in errors.
   *
   * @throws {Error} when a task threw (the pool stays usable).
   * @throws {PoolError} when a worker vanished holding a task, or the pool is closed; the
   * pool is then closed.
   */
  run(where: string): void {
    const total = this.#tasks;
    this.#tasks = 0;
    if (this.#closed) throw new PoolError(`${where}: the worker pool is closed (${this.#closed})`);
    this.#spawn();
    if (total === 0) return; // an empty job only starts the workers
    const control = this.#control;
    Atomics.store(control, LAYOUT.done, 0);
    Atomics.store(control, LAYOUT.error, 0);
    Atomics.store(control, LAYOUT.claim, total << 16); // publishes the task table
    Atomics.add(control, LAYOUT.wake, 1);
    if (Atomics.load(control, LAYOUT.sleepers) > 0) Atomics.notify(control, LAYOUT.wake);
    const start = performance.now();
    const callerTasks = this.#work();
    const worked = performance.now();
    this.#await(total, where);
    const wait = performance.now() - worked;
    this.lastJob = { tasks: total, callerTasks, work: worked - start, wait };
    if (Atomics.load(control, LAYOUT.error)) {
      throw new Error(`${where}: a kernel task failed in a worker thread: ${this.#message()}`);
    }
  }

  /** Stops the workers (they exit within a spin or a wake); later runs throw. */
  close(reason = "closed"): void {
    if (this.#closed) return;
    this.#closed = reason;
    Atomics.store(this.#control, LAYOUT.stop, 1);
    Atomics.add(this.#control, LAYOUT.wake, 1);
    Atomics.notify(this.#control, LAYOUT.wake);
    // terminate() as well, for workers still starting (it cannot stop one inside its loop,
    // which the stop flag does).
    for (const worker of this.#threads) worker?.terminate();
    this.#threads.fill(undefined);
  }

  /**
   * Test hook: the next worker that claims a task exits without finishing it (`"exit"`),
   * throws an uncaught error (`"uncaught"`), or has the task throw (`"throw"`).
   */
  killNextWorker(fault: WorkerFault): void {
    const hook = { exit: LAYOUT.hookExit, uncaught: LAYOUT.hookUncaught, throw: LAYOUT.hookThrow };
    Atomics.store(this.#control, LAYOUT.kill, hook[fault]);
  }

  /** Whether the last test hook set by {@linkcode killNextWorker} has fired. */
  get hookFired(): boolean {
    return Atomics.load(this.#control, LAYOUT.kill) === 0;
  }

  #state(slot: number): number {
    return Atomics.load(this.#control, LAYOUT.states + slot);
  }

  // Starts a worker in every slot that has none or whose worker has exited. A new worker
  // joins the job once it has instantiated the kernels (~20 ms); until then the others and
  // the caller do its share.
  #spawn(): void {
    for (let slot = 0; slot < this.workers; slot++) {
      const state = this.#state(slot);
      if (this.#threads[slot] && state !== LAYOUT.exited && state !== LAYOUT.failed) continue;
      this.#threads[slot]?.terminate();
      Atomics.store(this.#control, LAYOUT.states + slot, LAYOUT.starting);
      workerUrl ??= URL.createObjectURL(new Blob([workerSource()], { type: "text/javascript" }));
      const worker = new Worker(workerUrl, { type: "module", name: `chainrule pool ${slot}` });
      // An unhandled error event would end a Deno process; the caller learns of a dead
      // worker from the stalled done count instead (it cannot receive events while it waits).
      worker.onerror = (event) => {
        event.preventDefault();
        Atomics.store(this.#control, LAYOUT.states + slot, LAYOUT.failed);
      };
      const { init, memory, modules } = {
        init: LAYOUT,
        memory: this.#memory,
        modules: this.#modules,
      };
      worker.postMessage({ init, control: this.#control.buffer, memory, modules, slot });
      this.#threads[slot] = worker;
    }
  }

  // The caller's share: claim and run tasks until none is left; returns how many it ran.
  #work(): number {
    const control = this.#control;
    for (let ran = 0;; ran++) {
      let word = Atomics.load(control, LAYOUT.claim);
      let task = -1;
      while (task < 0) {
        if ((word & 0xffff) >= word >>> 16) return ran;
        const seen = Atomics.compareExchange(control, LAYOUT.claim, word, word + 1);
        if (seen === word) task = word & 0xffff;
        else word = seen;
      }
      const row = LAYOUT.tasks + task * ROW;
      const fn = this.#callers[control[row]][control[row + 1]];
      fn(
        control[row + 2],
        control[row + 3],
        control[row + 4],
        control[row + 5],
        control[row + 6],
        control[row + 7],
        control[row + 8],
        control[row + 9],
        control[row + 10],
      );
      Atomics.add(control, LAYOUT.done, 1);
    }
  }

  // Spins, then sleeps in slices, until every task is done; throws after `stallMs` in
  // which none finished (a worker holding one is gone).
  #await(total: number, where: string): void {
    const control = this.#control;
    let done = Atomics.load(control, LAYOUT.done);
    const end = performance.now() + this.#timing.callerSpinUs / 1000;
    for (let i = 1; done < total; i++) {
      if ((i & 63) === 0 && performance.now() > end) break;
      done = Atomics.load(control, LAYOUT.done);
    }
    let stalled = 0;
    while (done < total) {
      Atomics.store(control, LAYOUT.callerWaiting, 1);
      Atomics.wait(control, LAYOUT.done, done, SLICE_MS);
      Atomics.store(control, LAYOUT.callerWaiting, 0);
      const now = Atomics.load(control, LAYOUT.done);
      stalled = now === done ? stalled + SLICE_MS : 0;
      done = now;
      if (done < total && stalled >= this.#timing.stallMs) {
        const reason = `a worker thread stopped in the middle of a task (${total - done} of ` +
          `${total} tasks unfinished after ${this.#timing.stallMs} ms without progress)`;
        this.close(reason);
        throw new PoolError(`${where}: ${reason}`);
      }
    }
  }

  #message(): string {
    const control = this.#control;
    let text = "";
    for (let i = 0; i < LAYOUT.messageLength && control[LAYOUT.message + i] !== 0; i++) {
      text += String.fromCharCode(control[LAYOUT.message + i]);
    }
    return text;
  }
}
