// Threads in Chromium: a cross-origin isolated page's main thread stays on one thread and says
// why, and a Worker of that page runs the products and a convolution on the pool with the
// same bits as on one thread. Run with `deno task test:browser`.
import assert from "node:assert/strict";
import { bundleModule } from "../../playground/server.ts";
import { browserTest, describeErrors, serveBuild } from "./_setup.ts";

const IN_PAGE = new URL("./in_page/", import.meta.url);
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chainrule threads</title>
<link rel="icon" href="data:,"><script type="module" src="threads_page.js"></script></head>
<body><p>chainrule's worker pool in the browser.</p></body></html>`;

async function buildThreadsPage(dir: string): Promise<void> {
  await bundleModule(new URL("threads_page.ts", IN_PAGE), `${dir}/threads_page.js`);
  await bundleModule(new URL("threads_worker.ts", IN_PAGE), `${dir}/threads_worker.js`);
  await Deno.writeTextFile(`${dir}/index.html`, PAGE);
}

interface Report {
  main: { isolated: boolean; threads: number; why: string | null };
  worker: {
    threads: number;
    why: string | null;
    identical: boolean[];
    convIdentical: boolean;
    convWorkerTasks: number;
    cnnIdentical: boolean;
    cnnResident: boolean;
    workerTasks: number;
    rounds: number;
  };
}

browserTest(
  "in Chromium: the worker pool runs inside a Worker, bit for bit",
  async (t, browser) => {
    const server = await serveBuild(buildThreadsPage);
    try {
      const page = await browser.newPage();
      await page.goto(server.url);
      const report = await page.evaluate<Report>("runThreadsInPage()");

      await t.step("the page's main thread may not block: one thread, and it says why", () => {
        assert.equal(report.main.isolated, true);
        assert.equal(report.main.threads, 1);
        assert.match(report.main.why ?? "", /main thread.*train inside a Worker/);
      });
      await t.step("inside a Worker: 2 threads, the pool's workers ran tasks", () => {
        assert.equal(report.worker.why, null);
        assert.equal(report.worker.threads, 2);
        assert.ok(
          report.worker.workerTasks > 0,
          `no worker task in ${report.worker.rounds} rounds`,
        );
      });
      await t.step("the three products have the same bits on 1 and 2 threads", () => {
        assert.deepEqual(report.worker.identical, [true, true, true]);
      });
      await t.step("a convolution has the same bits on 1 and 2 threads, run by both", () => {
        assert.equal(report.worker.convIdentical, true);
        assert.ok(report.worker.convWorkerTasks > 0, "no convolution task ran on a worker");
      });
      await t.step("a CNN step on resident buffers has the same bits on 1 and 2 threads", () => {
        assert.equal(report.worker.cnnResident, true, "its activations are in the shared memory");
        assert.equal(report.worker.cnnIdentical, true);
      });
      await t.step("no console errors", () => {
        assert.deepEqual(page.errors, [], describeErrors(page));
      });
    } finally {
      await server.close();
    }
  },
);
