// The source of a pool worker, a string so that the pool can start it from a `blob:` URL: no
// file to read (no --allow-read), and it works the same when chainrule is imported from a
// remote URL or JSR. The layout constants are passed in `init` by backends/pool.ts, which
// owns them; this file only runs tasks.
//
// A worker instantiates the kernel modules it is sent on the shared memory it is sent, then
// loops: claim a task, run it, count it done; when no task is left it spins briefly for the
// next job, then sleeps in Atomics.wait; after `idleMs` without a job it exits by itself, so
// that a script whose training has returned can end (Deno keeps a process alive while a
// worker lives, and `terminate()` does not stop a worker blocked in a loop).

import { jsTaskSource } from "./_tasks.ts";

/**
 * The worker's whole source (JavaScript): the loop below, and the JavaScript tasks
 * (backends/_tasks.ts) as module 2, called with their context and the worker's slot.
 */
export function workerSource(): string {
  return WORKER_LOOP + jsTaskSource();
}

const WORKER_LOOP = `"use strict";
self.onmessage = (event) => {
  self.onmessage = null;
  const { init, control, memory, modules, slot } = event.data;
  const ctl = new Int32Array(control);
  const L = init;
  const fail = (state, error) => {
    const text = String(error && error.message || error).slice(0, L.messageLength);
    if (Atomics.compareExchange(ctl, L.error, 0, 1) === 0) {
      for (let i = 0; i < text.length; i++) ctl[L.message + i] = text.charCodeAt(i);
      ctl[L.message + text.length] = 0;
    }
    if (state) Atomics.store(ctl, L.states + slot, state);
  };
  let kernels;
  try {
    const instances = modules.map((module) => new WebAssembly.Instance(module, { env: { memory } }));
    kernels = instances.map(({ exports }) => L.functions.map((name) => exports[name]));
    const context = { memory, exports: instances.map((instance) => instance.exports) };
    kernels.push(JS_TASKS.map((task) => (a, b, c, d, e, f, g, h, i) =>
      task(context, slot, a, b, c, d, e, f, g, h, i)));
  } catch (error) {
    fail(L.failed, error);
    self.close();
    return;
  }
  Atomics.store(ctl, L.states + slot, L.live);
  const pause = typeof Atomics.pause === "function" ? () => Atomics.pause() : () => {};
  // Spins while ctl[index] === value, for at most \`us\` µs; true when it changed.
  const spin = (index, value, us) => {
    const end = performance.now() + us / 1000;
    for (let i = 1; Atomics.load(ctl, index) === value; i++) {
      pause();
      if ((i & 63) === 0 && performance.now() > end) return false;
    }
    return true;
  };
  // Claims and runs tasks until the current job has none left.
  const work = () => {
    for (;;) {
      let word = Atomics.load(ctl, L.claim);
      let task = -1, total = 0;
      for (;;) {
        total = word >>> 16;
        if ((word & 0xffff) >= total) return true;
        const seen = Atomics.compareExchange(ctl, L.claim, word, word + 1);
        if (seen === word) {
          task = word & 0xffff;
          break;
        }
        word = seen;
      }
      const hook = ctl[L.kill] !== 0 ? Atomics.exchange(ctl, L.kill, 0) : 0;
      if (hook === L.hookExit) return false; // leaves its task unfinished, as a killed worker
      if (hook === L.hookUncaught) throw new Error("pool test hook: uncaught error in a worker");
      const row = L.tasks + task * L.row;
      try {
        if (hook === L.hookThrow) throw new Error("pool test hook: a task threw");
        const fn = kernels[ctl[row]][ctl[row + 1]];
        fn(ctl[row + 2], ctl[row + 3], ctl[row + 4], ctl[row + 5], ctl[row + 6], ctl[row + 7],
          ctl[row + 8], ctl[row + 9], ctl[row + 10]);
      } catch (error) {
        fail(0, error);
      }
      Atomics.add(ctl, L.workerTasks, 1);
      if (Atomics.add(ctl, L.done, 1) + 1 === total && Atomics.load(ctl, L.callerWaiting)) {
        Atomics.notify(ctl, L.done);
      }
    }
  };
  let seen = Atomics.load(ctl, L.wake);
  for (;;) {
    if (Atomics.load(ctl, L.stop) || !work()) break;
    if (!spin(L.wake, seen, Atomics.load(ctl, L.spinUs))) {
      Atomics.add(ctl, L.sleepers, 1);
      const result = Atomics.wait(ctl, L.wake, seen, Atomics.load(ctl, L.idleMs));
      Atomics.sub(ctl, L.sleepers, 1);
      if (result === "timed-out" && Atomics.load(ctl, L.wake) === seen) break;
    }
    seen = Atomics.load(ctl, L.wake);
  }
  Atomics.store(ctl, L.states + slot, L.exited);
  self.close();
};
`;
