// Helpers for the recurrent layers' worker-pool tests (tests/recurrent_threads_test.ts, the
// LSTM's; tests/gru_threads_test.ts, the GRU's): the same cases, spies and comparisons, with
// the layer and its pair of backend methods as parameters.
import assert from "node:assert/strict";
import { wasmBackend } from "../plugin.ts";
import { type Backend, type FloatArray, GRU, LSTM, Tensor, withBackend } from "../mod.ts";
import { assertSameBits, onThreadCounts } from "./_threads.ts";

/** A recurrent layer's shape under test. */
export interface RecurrentCase {
  what: string;
  batch: number;
  steps: number;
  inputSize: number;
  hidden: number;
  returnSequences: boolean;
}

/** The layer and the backend methods its float32 training passes hand the steps to. */
export type RecurrentKind = "lstm" | "gru";

/** A deterministic float32 tensor of `shape` in (−scale, scale). */
export function filled(shape: number[], seed: number, scale: number): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  let s = seed;
  const data = Float32Array.from({ length: size }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648 * 2 - 1) * scale;
  });
  return new Tensor(data, shape);
}

/**
 * Split calls (true) and declined ones (false) of `kind`'s forward and backward methods,
 * through a wasm backend that records them; with `decline`, one whose layer loops itself
 * (the reference).
 */
export function spyBackend(kind: RecurrentKind, answers: boolean[], decline = false): Backend {
  const [forward, backward] = kind === "lstm"
    ? ["lstmForward", "lstmBackward"] as const
    : ["gruForward", "gruBackward"] as const;
  const record = (method: typeof forward | typeof backward) => (...args: unknown[]) => {
    // deno-lint-ignore no-explicit-any
    answers.push(!decline && (wasmBackend[method] as any)(...args));
    return answers.at(-1)!;
  };
  return {
    ...wasmBackend,
    name: `wasm-${kind}-spy`,
    [forward]: record(forward),
    [backward]: record(backward),
  };
}

/** A new float32 layer of `kind` for `c`, seeded. */
export function recurrentLayer(kind: RecurrentKind, c: RecurrentCase): LSTM | GRU {
  const options = { seed: 7, returnSequences: c.returnSequences };
  return kind === "lstm"
    ? new LSTM(c.inputSize, c.hidden, options)
    : new GRU(c.inputSize, c.hidden, options);
}

// Two training passes (the second reuses the resident buffers): outputs, dinputs and the
// params' gradients of the second.
function pass(
  kind: RecurrentKind,
  c: RecurrentCase,
  answers: boolean[],
  decline = false,
): FloatArray[] {
  const layer = recurrentLayer(kind, c);
  const x = filled([c.batch, c.steps, c.inputSize], 11, 2);
  const outShape = c.returnSequences ? [c.batch, c.steps, c.hidden] : [c.batch, c.hidden];
  const dvalues = filled(outShape, 5, 1);
  return withBackend(spyBackend(kind, answers, decline), () => {
    let got: FloatArray[] = [];
    for (let round = 0; round < 2; round++) {
      for (const p of layer.params()) p.grad.data.fill(0);
      const outputs = layer.forward(x, { training: true }).data.slice();
      const dinputs = layer.backward(dvalues).data.slice();
      got = [outputs, dinputs, ...layer.params().map((p) => p.grad.data.slice())];
    }
    return got;
  });
}

/**
 * Every case split by rows on 1, 2 and 3 threads gives the layer's own loop's bits, with
 * every call split and tasks on the workers.
 */
export function splitGivesLoopBits(kind: RecurrentKind, cases: RecurrentCase[]): Promise<void> {
  const names = ["outputs", "dinputs", "dW", "dU", "dbi", "dbh"];
  return onThreadCounts(
    () => cases.map((c) => pass(kind, c, [], true)),
    (references, threads, pool) => {
      cases.forEach((c, k) => {
        const answers: boolean[] = [];
        const before = pool?.workerTasks ?? 0;
        const got = pass(kind, c, answers);
        // 2 rounds × forward and backward, every one split (on this thread when it is one)
        assert.deepEqual(answers, [true, true, true, true], `${c.what}, ${threads} threads`);
        if (pool) assert.ok(pool.workerTasks > before, `${threads} threads: no task on a worker`);
        got.forEach((array, i) =>
          assertSameBits(array, references[k][i], `${c.what} ${names[i]}, ${threads} threads`)
        );
      });
    },
  );
}

/**
 * The workers' copies of a pair of gate functions, evaluated from `source` (the text the
 * workers run), give the module's own bits on random and special inputs.
 */
export function assertWorkerCopies(
  source: string,
  names: [string, string],
  own: [(x: number) => number, (x: number) => number],
): void {
  const copies = new Function(`${source}\nreturn [${names.join(", ")}];`)() as [
    (x: number) => number,
    (x: number) => number,
  ];
  const check = (x: number) => {
    for (let f = 0; f < 2; f++) assert.ok(Object.is(copies[f](x), own[f](x)), `${names[f]}(${x})`);
  };
  let s = 12345;
  for (let k = 0; k < 20000; k++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    check((s / 2147483648 * 2 - 1) * (k % 2 === 0 ? 12 : 800));
  }
  for (const x of [0, -0, 1e-300, -1e-12, Infinity, -Infinity, NaN, 354.5, -709.5]) check(x);
}
