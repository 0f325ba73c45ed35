// How many threads the large matrix products use: the public setThreads/getThreads, and
// whether this runtime can run worker threads at all (threadsUnavailable). The pool itself
// lives in pool.ts and is driven by wasm.ts; blas.ts passes the count to OpenBLAS.
import { describe } from "../core/_describe.ts";

/** The most threads {@linkcode setThreads} accepts: the caller and 63 workers. */
export const MAX_THREADS = 64;

/**
 * The default is the available cores capped at 8: each product's operands are copied into
 * the kernels' memory and its result out by the calling thread alone (10–15% of a W2-sized
 * product on one thread, ~1% of a 1024³ one), so by Amdahl's law a W2-sized product gains
 * at most ~4× at 8 threads and ~5× at 16, while every worker holds its own JavaScript
 * isolate (a few MB) and shares the memory bandwidth. Larger counts are one
 * {@linkcode setThreads} call away.
 */
export const DEFAULT_THREADS_CAP = 8;

let requested: number | undefined; // undefined: the default
let unavailable: string | null | undefined; // cached by threadsUnavailable
let failures = 0;
let lastFailure = "";
const listeners = new Set<(threads: number) => void>();

/** The cores the runtime reports (`navigator.hardwareConcurrency`), at least 1. */
function cores(): number {
  const reported = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  return Number.isInteger(reported) && reported! > 0 ? reported! : 1;
}

/** The globals {@linkcode detectThreads} looks at. */
export interface ThreadGlobals {
  crossOriginIsolated?: boolean;
  SharedArrayBuffer?: unknown;
  Worker?: unknown;
  Blob?: unknown;
  URL?: { createObjectURL?: unknown };
  WebAssembly?: unknown;
  Atomics?: { wait?: unknown };
}

/**
 * Why worker threads cannot run given these globals, or null: feature tests, cheapest first,
 * each reason saying what is missing and what would fix it.
 */
export function detectThreads(g: ThreadGlobals = globalThis as ThreadGlobals): string | null {
  if (g.crossOriginIsolated === false) {
    return "the page is not cross-origin isolated (serve it with the headers " +
      "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp), " +
      "so SharedArrayBuffer is unavailable";
  }
  if (typeof g.SharedArrayBuffer !== "function") return "this runtime has no SharedArrayBuffer";
  if (typeof g.Worker !== "function") return "this runtime has no Web Worker (e.g. Node.js)";
  if (typeof g.Blob !== "function" || typeof g.URL?.createObjectURL !== "function") {
    return "this runtime cannot make blob: URLs to start workers from";
  }
  if (typeof g.WebAssembly !== "object") return "this runtime has no WebAssembly";
  const wait = g.Atomics?.wait as typeof Atomics.wait | undefined;
  if (typeof wait !== "function") return "this runtime has no Atomics.wait";
  try {
    wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
  } catch {
    return "Atomics.wait may not block this thread (a browser page's main thread): " +
      "train inside a Worker to use threads";
  }
  return null;
}

/**
 * Why the large products run on one thread whatever {@linkcode setThreads} asked, or null
 * when worker threads are available: no `SharedArrayBuffer`, a page that is not
 * cross-origin isolated, no `Worker`, a browser's main thread (which may not block in
 * `Atomics.wait`), no WebAssembly SIMD, or worker threads that failed twice in this
 * process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { threadsUnavailable } from "@chainrule/nn";
 *
 * assert.equal(threadsUnavailable(), null); // Deno: workers from blob: URLs need no permission
 * ```
 */
export function threadsUnavailable(): string | null {
  unavailable ??= detectThreads();
  if (unavailable) return unavailable;
  return failures >= 2 ? `worker threads failed twice in this process (${lastFailure})` : null;
}

/** The count asked for ({@linkcode setThreads}, else the default), available or not. */
export function requestedThreads(): number {
  return requested ?? Math.min(cores(), DEFAULT_THREADS_CAP);
}

/**
 * How many threads a large matrix product uses, the calling thread included: the count set
 * by {@linkcode setThreads}, by default the available cores (`navigator.hardwareConcurrency`)
 * capped at {@linkcode DEFAULT_THREADS_CAP}; 1 where {@linkcode threadsUnavailable} says why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getThreads } from "@chainrule/nn";
 *
 * assert.ok(getThreads() >= 1);
 * ```
 */
export function getThreads(): number {
  return threadsUnavailable() === null ? requestedThreads() : 1;
}

/**
 * Sets how many threads large matrix products use, the calling thread included (1 to
 * {@linkcode MAX_THREADS}). Products are split by output tiles, never along the summed
 * dimension, so every count gives the same bits. `setThreads(1)` shuts the worker pool down
 * at once (idle workers otherwise exit a second after the last product); the `blas` backend
 * passes the count to OpenBLAS. Where threads are unavailable
 * ({@linkcode threadsUnavailable}) products stay on one thread, without an error.
 *
 * @throws {RangeError} unless `threads` is an integer from 1 to {@linkcode MAX_THREADS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getThreads, setThreads } from "@chainrule/nn";
 *
 * const before = getThreads();
 * setThreads(1);
 * assert.equal(getThreads(), 1);
 * setThreads(before);
 * ```
 */
export function setThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new RangeError(
      `setThreads: threads must be an integer from 1 to ${MAX_THREADS}, got ${describe(threads)}`,
    );
  }
  const before = requestedThreads();
  requested = threads;
  if (threads !== before || threads === 1) { for (const listener of listeners) listener(threads); }
}

/** Calls `listener` with the new count whenever {@linkcode setThreads} changes it (or sets 1). */
export function onThreadsChange(listener: (threads: number) => void): void {
  listeners.add(listener);
}

/**
 * Records that the worker pool failed (`reason`); after the second failure in a process,
 * {@linkcode threadsUnavailable} reports it and products stay on one thread.
 */
export function recordThreadFailure(reason: string): void {
  failures++;
  lastFailure = reason;
}

/** Test hook: forgets recorded failures (so one test's crash does not disable threads). */
export function resetThreadFailures(): void {
  failures = 0;
  lastFailure = "";
}

/** Makes {@linkcode threadsUnavailable} report `reason` from now on (a runtime check failed). */
export function disableThreads(reason: string): void {
  unavailable = reason;
}
