// The page of the threads test (tests/browser/threads_test.ts): what the main thread says
// about threads, then what a Worker that trains with them measures.
import { getThreads, threadsUnavailable } from "../../../mod.ts";

/** The main thread's view, and the report of `threads_worker.js`. */
async function runThreadsInPage(): Promise<unknown> {
  const main = { isolated: crossOriginIsolated, threads: getThreads(), why: threadsUnavailable() };
  const worker = new Worker("threads_worker.js", { type: "module" });
  try {
    const report = await new Promise((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(`threads_worker.js: ${event.message}`));
    });
    return { main, worker: report };
  } finally {
    worker.terminate();
  }
}

Object.defineProperty(globalThis, "runThreadsInPage", { value: runThreadsInPage });
