// The worker pool's lifecycle: workers exit when told or when idle, a worker that dies
// mid-product becomes an Error in the caller (never a hang) and the next product runs on a
// fresh pool, and a script that trains exits by itself under `deno run` with no flags.
import assert from "node:assert/strict";
import { PoolError, type WorkerFault, type WorkerPool } from "../backends/pool.ts";
import { resetThreadFailures } from "../backends/threads.ts";
import { parallelTuning, setPoolTiming } from "../backends/wasm.ts";
import { Conv2D, RandomState, setThreads, Tensor, withBackend } from "../mod.ts";
import { naiveBackend, wasmBackend } from "../plugin.ts";
import { livePool, threads } from "./_threads.ts";

// These tests need the large products on the pool every time, also while other processes
// keep the machine busy (which would otherwise send a few products back to one thread).
parallelTuning.backoff = false;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await sleep(10);
  assert.ok(condition(), `timed out waiting until ${what}`);
}

// A product large enough for the pool (192³ = 7 M multiply-adds, in 8 tasks on 2 threads).
const SIZE = 192;
const random = new RandomState(11);
const a = Float32Array.from({ length: SIZE * SIZE }, () => random.random() - 0.5);
const b = Float32Array.from({ length: SIZE * SIZE }, () => random.random() - 0.5);
const product = () => {
  const c = new Float32Array(SIZE * SIZE);
  wasmBackend.matmul(a, b, c, SIZE, SIZE, SIZE);
  return c;
};

Deno.test("setThreads(1) shuts the pool down: its workers exit", async () => {
  const pool = await livePool(2);
  assert.equal(pool.live, 1);
  setThreads(1);
  assert.match(pool.closed!, /setThreads/);
  await until("the worker exited", () => pool.live === 0);
  assert.equal(threads().current, undefined);
  product(); // runs on the calling thread
  assert.equal(threads().current, undefined);
});

Deno.test("idle workers exit by themselves, and the next product starts new ones", async () => {
  setPoolTiming({ idleMs: 50 });
  try {
    const pool = await livePool(2);
    product();
    await until("the idle worker exited", () => pool.live === 0);
    const before = pool.workerTasks;
    product(); // restarts the worker; it joins once it has started
    await until("a new worker started", () => pool.live === 1);
    for (let i = 0; i < 100 && pool.workerTasks === before; i++) product();
    assert.ok(pool.workerTasks > before, "the new worker ran no task");
  } finally {
    setPoolTiming({});
    setThreads(1);
  }
});

// Sets `fault` on the next worker to claim a task, then runs products until it fires.
function faultDuringProduct(pool: WorkerPool, fault: WorkerFault): unknown {
  pool.killNextWorker(fault);
  for (let i = 0; i < 200 && !pool.hookFired; i++) {
    try {
      product();
    } catch (error) {
      return error;
    }
  }
  return pool.hookFired ? undefined : new Error("the fault never fired: no worker claimed a task");
}

for (
  const [fault, what] of [
    ["exit", "a worker that exits holding a task (as one terminated from outside)"],
    // Deno prints this worker's "Uncaught (in worker …)" error: it is the one provoked here.
    ["uncaught", "a worker killed by an uncaught error (an error event)"],
  ] as const
) {
  Deno.test(`${what} becomes an Error in the caller; the next product runs on a fresh pool`, async () => {
    setPoolTiming({ stallMs: 200 });
    try {
      const pool = await livePool(2);
      const error = faultDuringProduct(pool, fault);
      assert.ok(error instanceof PoolError, `expected a PoolError, got ${error}`);
      assert.match(
        error.message,
        /^wasmBackend\.matmul: a worker thread stopped in the middle of a task \(\d+ of \d+ tasks unfinished after 200 ms without progress\)$/,
      );
      assert.ok(pool.closed);
      // The next product: the same result as the reference, on a fresh pool and memory.
      const want = new Float32Array(SIZE * SIZE);
      naiveBackend.matmul(a, b, want, SIZE, SIZE, SIZE);
      const got = product();
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4);
      const fresh = await livePool(2);
      assert.notEqual(fresh, pool);
      const before = fresh.workerTasks;
      for (let i = 0; i < 100 && fresh.workerTasks === before; i++) product();
      assert.ok(fresh.workerTasks > before, "the fresh pool's worker ran no task");
      await sleep(50); // lets the dead worker's error event arrive (it must not end the process)
    } finally {
      setPoolTiming({});
      resetThreadFailures();
      setThreads(1);
    }
  });
}

Deno.test("a worker that exits during a convolution becomes a PoolError; the next one runs on a fresh pool", async () => {
  const conv = new Conv2D(8, 16, 3, { padding: 1, seed: 3 });
  const x = Tensor.randn([16, 8, 14, 14], { seed: 4 }); // 3.6 M multiply-adds a product: the pool
  const d = Tensor.randn([16, 16, 14, 14], { seed: 5 });
  const convolve = () => {
    conv.weights.grad.data.fill(0);
    const outputs = withBackend("wasm", () => conv.forward(x, { training: true })).data.slice();
    const dinputs = withBackend("wasm", () => conv.backward(d)).data.slice();
    return [outputs, dinputs, conv.weights.grad.data.slice()];
  };
  setThreads(1);
  const want = convolve();
  setPoolTiming({ stallMs: 200 });
  try {
    const pool = await livePool(2);
    pool.killNextWorker("exit");
    let error: unknown;
    for (let i = 0; i < 200 && !pool.hookFired && !error; i++) {
      try {
        convolve();
      } catch (thrown) {
        error = thrown;
      }
    }
    assert.ok(error instanceof PoolError, `expected a PoolError, got ${error}`);
    assert.match(error.message, /^wasmBackend\.conv2d(Forward|Backward): a worker thread stopped/);
    assert.ok(pool.closed);
    const fresh = await livePool(2);
    assert.notEqual(fresh, pool);
    for (let i = 0; i < 100 && fresh.workerTasks === 0; i++) {
      convolve().forEach((got, j) => assert.deepEqual(got, want[j]));
    }
    assert.ok(fresh.workerTasks > 0, "the fresh pool's worker ran no task");
    await sleep(50);
  } finally {
    setPoolTiming({});
    resetThreadFailures();
    setThreads(1);
  }
});

Deno.test("a kernel task that throws in a worker becomes an Error; the pool stays usable", async () => {
  try {
    const pool = await livePool(2);
    const error = faultDuringProduct(pool, "throw");
    assert.ok(error instanceof Error && !(error instanceof PoolError), `got ${error}`);
    assert.equal(
      error.message,
      "wasmBackend.matmul: a kernel task failed in a worker thread: pool test hook: a task threw",
    );
    assert.equal(pool.closed, undefined);
    const before = pool.workerTasks;
    for (let i = 0; i < 100 && pool.workerTasks === before; i++) product();
    assert.ok(pool.workerTasks > before);
  } finally {
    setThreads(1);
  }
});

// Runs `source` as a script under `deno run` with `flags`; fails if it has not exited after
// a minute (a hang), which is a bound against hangs, not a timing.
async function runScript(source: string, flags: string[] = []): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/script.ts`;
    await Deno.writeTextFile(file, source);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, file],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const { code, stdout, stderr } = await child.output();
    clearTimeout(timer);
    const text = new TextDecoder().decode(stdout);
    assert.equal(code, 0, `exit code ${code}\n${text}\n${new TextDecoder().decode(stderr)}`);
    return text;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const root = new URL("../", import.meta.url).href;

Deno.test({
  name: "a script that trains on 2 threads exits by itself under `deno run` with no flags",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  async fn() {
    const output = await runScript(`
      import { Dense, ReLU, Sequential, SGD, SoftmaxCrossEntropy, Tensor, getThreads, setThreads }
        from "${root}mod.ts";
      import { loadThreads } from "${root}backends/wasm.ts";
      setThreads(2);
      const x = new Tensor(new Float32Array(512 * 256).map((_, i) => (i % 17) / 17), [512, 256]);
      const y = Int32Array.from({ length: 512 }, (_, i) => i % 10);
      const model = new Sequential([new Dense(256, 256, { seed: 1 }), new ReLU(), new Dense(256, 10)]);
      model.fit(x, y, { loss: new SoftmaxCrossEntropy(), optimizer: new SGD(), epochs: 3, batchSize: 256, verbose: 0 });
      const pool = loadThreads("relaxed-simd")?.current;
      console.log(JSON.stringify({ threads: getThreads(), workerTasks: pool?.workerTasks }));
    `);
    const result = JSON.parse(output.trim().split("\n").at(-1)!);
    assert.equal(result.threads, 2);
    assert.ok(result.workerTasks > 0, output);
  },
});

Deno.test({
  name: "without Worker a script trains on one thread, says why, and raises no error",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  async fn() {
    const output = await runScript(`
      delete (globalThis as { Worker?: unknown }).Worker;
      const { getThreads, setThreads, threadsUnavailable } = await import("${root}mod.ts");
      const { wasmBackend } = await import("${root}plugin.ts");
      setThreads(4);
      const c = new Float32Array(256 * 256);
      wasmBackend.matmul(new Float32Array(256 * 256).fill(1), new Float32Array(256 * 256).fill(2), c, 256, 256, 256);
      console.log(JSON.stringify({ threads: getThreads(), why: threadsUnavailable(), c0: c[0] }));
    `);
    const result = JSON.parse(output.trim().split("\n").at(-1)!);
    assert.deepEqual(result, {
      threads: 1,
      why: "this runtime has no Web Worker (e.g. Node.js)",
      c0: 512,
    });
  },
});

Deno.test({
  name: "imported from a remote URL, a script trains on 2 threads (the worker needs no file)",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted" ||
    Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state !== "granted",
  async fn() {
    // The checkout served over HTTP, as JSR or any server would; the script imports it by URL.
    const rootDir = new URL("../", import.meta.url);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        const path = new URL(request.url).pathname;
        try {
          const body = await Deno.readFile(new URL(`.${path}`, rootDir));
          return new Response(body, { headers: { "content-type": "application/typescript" } });
        } catch {
          return new Response("not found", { status: 404 });
        }
      },
    );
    const origin = `http://127.0.0.1:${server.addr.port}`;
    const cache = await Deno.makeTempDir(); // a fresh DENO_DIR: everything is fetched remotely
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/remote.ts`;
      await Deno.writeTextFile(
        file,
        `import { getThreads, setThreads } from "${origin}/mod.ts";
        import { wasmBackend } from "${origin}/plugin.ts";
        import { loadThreads } from "${origin}/backends/wasm.ts";
        setThreads(2);
        const c = new Float32Array(256 * 256);
        for (let i = 0; i < 20; i++) {
          wasmBackend.matmul(new Float32Array(256 * 256).fill(1), new Float32Array(256 * 256).fill(2), c, 256, 256, 256);
        }
        const pool = loadThreads("relaxed-simd")?.current;
        console.log(JSON.stringify({ threads: getThreads(), workerTasks: pool?.workerTasks, c0: c[0] }));`,
      );
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        // --allow-import lets the module graph come from this host (JSR's is allowed by
        // default); the script itself runs with no permission.
        args: ["run", `--allow-import=127.0.0.1:${server.addr.port}`, file],
        env: { DENO_DIR: cache },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(stdout);
      assert.equal(code, 0, `${text}\n${new TextDecoder().decode(stderr)}`);
      const result = JSON.parse(text.trim().split("\n").at(-1)!);
      assert.equal(result.threads, 2);
      assert.equal(result.c0, 512);
      assert.ok(result.workerTasks > 0, text);
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(cache, { recursive: true });
    }
  },
});
