// WebGPU in Chromium: the library bundled for a page, webgpuStatus() there, and a small MLP
// trained with fitAsync on "webgpu" and on "cpu" from the same weights: the same epoch losses
// within 1e-3 relative, and predictAsync on "webgpu" equal to predict. Chromium runs with
// --enable-unsafe-webgpu (tests/browser/_chromium.ts), which gives SwiftShader's software
// adapter without a GPU; where it finds none, the GPU steps are reported as ignored, their
// names saying why. Also, in Deno's own WebGPU, the playground worker's GPU runs: a step, a
// pause, a change of settings and of device while one runs. Run with `deno task test:browser`.
import assert from "node:assert/strict";
import { webgpuStatus } from "../../mod.ts";
import type { Command, Report } from "../../playground/protocol.ts";
import { bundleModule } from "../../playground/server.ts";
import { PlaygroundSession } from "../../playground/session.ts";
import { DEFAULT_SETTINGS, type Settings } from "../../playground/settings.ts";
import { browserTest, describeErrors, serveBuild } from "./_setup.ts";
import { type GpuReport, RUN } from "./in_page/gpu_run.ts";

const IN_PAGE = new URL("./in_page/", import.meta.url);
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chainrule on WebGPU</title>
<link rel="icon" href="data:,"><script type="module" src="gpu_page.js"></script></head>
<body><p>chainrule's fitAsync on WebGPU in the browser.</p></body></html>`;

async function buildGpuPage(dir: string): Promise<void> {
  await bundleModule(new URL("gpu_page.ts", IN_PAGE), `${dir}/gpu_page.js`);
  await Deno.writeTextFile(`${dir}/index.html`, PAGE);
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
const list = (values: number[]) => values.map((v) => v.toFixed(6)).join(", ");

browserTest("in Chromium: fitAsync on WebGPU trains as on the CPU", async (t, browser) => {
  const server = await serveBuild(buildGpuPage);
  try {
    const page = await browser.newPage();
    await page.goto(server.url);
    const report = await page.evaluate<GpuReport>("runGpuInPage()");
    const skip = report.available ? undefined : report.reason;
    if (skip) {
      console.warn(
        `%cGPU browser test skipped: webgpuStatus() in Chromium: ${skip}`,
        "color: orange; font-weight: bold",
      );
    }
    const gpuStep = (name: string, fn: () => void) =>
      t.step({ name: skip ? `${name} (skipped: ${skip})` : name, ignore: !!skip, fn });

    await gpuStep("webgpuStatus() finds an adapter, and fitAsync runs on it", () => {
      assert.ok(report.available);
      assert.ok(!("error" in report), "error" in report ? report.error : "");
      console.log(`adapter: ${JSON.stringify(report.adapter)}`);
    });
    if (report.available && !("error" in report)) {
      const { gpu, cpu } = report;
      console.log(`GPU loss: ${list(gpu.loss)} (ms: ${gpu.epochMs.map(Math.round).join(", ")})`);
      console.log(`CPU loss: ${list(cpu.loss)} (ms: ${cpu.epochMs.map(Math.round).join(", ")})`);
      const worst = Math.max(...gpu.loss.map((loss, i) => relative(loss, cpu.loss[i])));
      console.log(
        `largest relative loss difference ${worst.toExponential(2)}, ` +
          `weights ${report.weightsError.toExponential(2)}, ` +
          `predictAsync ${report.predictError.toExponential(2)}`,
      );

      await gpuStep(`the ${RUN.epochs} epoch losses equal the CPU's within 1e-3 relative`, () => {
        assert.equal(gpu.loss.length, RUN.epochs);
        assert.equal(cpu.loss.length, RUN.epochs);
        gpu.loss.forEach((loss, i) => {
          assert.ok(Number.isFinite(loss), `epoch ${i}: GPU loss ${loss}`);
          assert.ok(relative(loss, cpu.loss[i]) <= 1e-3, `epoch ${i}: ${loss} vs ${cpu.loss[i]}`);
        });
      });
      await gpuStep("the accuracies agree within one sample in a hundred", () => {
        assert.equal(gpu.accuracy.length, RUN.epochs);
        gpu.accuracy.forEach((accuracy, i) =>
          assert.ok(
            Math.abs(accuracy - cpu.accuracy[i]) <= 0.01,
            `epoch ${i}: ${accuracy} vs ${cpu.accuracy[i]}`,
          )
        );
      });
      await gpuStep("the GPU's loss decreased", () => {
        assert.ok(gpu.loss.at(-1)! < gpu.loss[0] * 0.95, list(gpu.loss));
      });
      await gpuStep("the trained weights equal the CPU-trained ones within 1e-3", () => {
        assert.ok(report.weightsError <= 1e-3, `${report.weightsError}`);
      });
      await gpuStep("predictAsync on webgpu equals predict within 1e-5", () => {
        assert.deepEqual(report.predictShape, [RUN.samplesPerClass * RUN.classes, RUN.classes]);
        assert.ok(report.predictError <= 1e-5, `${report.predictError}`);
      });
    }
    if (report.available && !("error" in report)) {
      const models = await page.evaluate<
        Record<string, { gpu: number[]; cpu: number[] } | string>
      >("runModelsInPage()");
      for (const [name, result] of Object.entries(models)) {
        await t.step(`a ${name} trains on WebGPU as on the CPU`, () => {
          assert.equal(typeof result, "object", String(result));
          const { gpu, cpu } = result as { gpu: number[]; cpu: number[] };
          const worst = Math.max(...gpu.map((loss, i) => relative(loss, cpu[i])));
          console.log(`${name}: GPU ${list(gpu)}; CPU ${list(cpu)}; ${worst.toExponential(2)}`);
          assert.ok(worst <= 1e-4, `${name}: epoch losses differ by ${worst}`);
        });
      }
    }
    await t.step("no console errors", () => {
      assert.deepEqual(page.errors, [], describeErrors(page));
    });
  } finally {
    await server.close();
  }
});

// The worker's session in Deno, its slices run by timers; `until` polls a condition.
function session(gpu = true) {
  const reports: Report[] = [];
  const session = new PlaygroundSession(
    (report) => reports.push(report),
    (task) => setTimeout(task, 0),
    gpu ? webgpuStatus : undefined,
  );
  const last = <T extends Report["type"]>(type: T) =>
    reports.findLast((report) => report.type === type) as Extract<Report, { type: T }> | undefined;
  const send = (command: Command) => session.handle(command);
  return { session, reports, last, send };
}

async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const settings = (changes: Partial<Settings> = {}): Settings => ({
  ...DEFAULT_SETTINGS,
  hidden: [16],
  points: 120,
  ...changes,
});
const inDeno = await webgpuStatus();

Deno.test({
  name: "the playground's session trains on WebGPU (in Deno)" +
    (inDeno.available ? "" : ` (skipped: ${inDeno.reason})`),
  ignore: !inDeno.available,
  async fn(t) {
    await t.step("step runs one epoch on the GPU, with the CPU's figures", async () => {
      const gpu = session();
      await until(() => gpu.last("gpu") !== undefined, 10_000, "the gpu report");
      assert.equal(gpu.last("gpu")?.available, true);
      const cpu = session(false);
      for (const { send } of [gpu, cpu]) send({ type: "settings", settings: settings() });
      gpu.send({ type: "device", gpu: true });
      assert.equal(gpu.session.gpu, true);
      gpu.send({ type: "step" });
      cpu.send({ type: "step" });
      await until(
        () => gpu.session.epoch === 1 && gpu.last("progress")?.epoch === 1,
        30_000,
        "a step",
      );
      const [a, b] = [gpu.last("progress")!, cpu.last("progress")!];
      assert.equal(a.figures.loss.length, 1);
      assert.ok(a.regions, "a step sends the regions");
      for (const key of ["loss", "accuracy", "valLoss", "valAccuracy"] as const) {
        const [x, y] = [a.figures[key][0], b.figures[key][0]];
        assert.ok(Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(y)), `${key}: ${x} vs ${y}`);
      }
      assert.equal(gpu.last("error"), undefined);
    });

    await t.step(
      "start trains until paused; the pause is told at the run's last epoch",
      async () => {
        const { session: s, last, send } = session();
        await until(() => last("gpu") !== undefined, 10_000, "the gpu report");
        send({ type: "settings", settings: settings() });
        send({ type: "device", gpu: true });
        send({ type: "start" });
        assert.deepEqual(last("state"), { type: "state", running: true, epoch: 0 });
        await until(() => s.epoch >= 5, 30_000, "5 epochs");
        send({ type: "pause" });
        await until(() => last("state")?.running === false, 10_000, "the pause");
        const epoch = s.epoch;
        assert.equal(last("state")?.epoch, epoch);
        assert.equal(last("progress")?.epoch, epoch);
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.equal(s.epoch, epoch, "no epoch after the pause");
        assert.equal(last("error"), undefined);
      },
    );

    await t.step(
      "a new learning rate, then the CPU, while a GPU run trains: it goes on",
      async () => {
        const { session: s, reports, last, send } = session();
        await until(() => last("gpu") !== undefined, 10_000, "the gpu report");
        send({ type: "settings", settings: settings() });
        send({ type: "device", gpu: true });
        send({ type: "start" });
        await until(() => s.epoch >= 3, 30_000, "3 epochs");
        const runs = reports.filter((report) => report.type === "run").length;
        send({ type: "settings", settings: settings({ learningRate: 0.01 }) });
        const before = s.epoch;
        await until(() => s.epoch >= before + 3, 30_000, "3 epochs after the change");
        assert.equal(reports.filter((report) => report.type === "run").length, runs, "same run");
        send({ type: "device", gpu: false });
        await until(() => !s.gpu, 10_000, "the switch to the CPU");
        const onCpu = s.epoch;
        await until(() => s.epoch >= onCpu + 50, 10_000, "50 CPU epochs");
        send({ type: "pause" });
        assert.equal(last("state")?.running, false);
        assert.equal(last("error"), undefined);
        assert.ok(Number.isFinite(last("progress")!.figures.loss.at(-1)!));
      },
    );
  },
});

Deno.test("the playground's session refuses the GPU where webgpuStatus was not asked", () => {
  const { last, send, session: s } = session(false);
  send({ type: "device", gpu: true });
  assert.match(last("error")!.message, /GPU \(WebGPU\): not available/);
  assert.equal(s.gpu, false);
});
