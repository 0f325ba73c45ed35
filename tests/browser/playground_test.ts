// The playground in headless Chromium, driven as a user would: keys, clicks, a file chosen.
// Run with `deno task test:browser`. The steps share one page and run in order.
import assert from "node:assert/strict";
import { modelFromBytes } from "../../mod.ts";
import { buildPlayground, RESPONSE_HEADERS } from "../../playground/server.ts";
import type { Page } from "./_chromium.ts";
import { browserTest, describeErrors, serveBuild } from "./_setup.ts";

const view = (expression: string) => `globalThis.chainrulePlayground.${expression}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function click(page: Page, id: string): Promise<void> {
  await page.evaluate(`document.getElementById(${JSON.stringify(id)}).click()`);
}

async function focusedId(page: Page): Promise<string> {
  return await page.evaluate<string>("document.activeElement?.id ?? ''");
}

// Sets a form field and fires `change`, as picking an option does.
async function choose(page: Page, id: string, value: string): Promise<void> {
  await page.evaluate(`(() => {
    const field = document.getElementById(${JSON.stringify(id)});
    field.value = ${JSON.stringify(value)};
    field.dispatchEvent(new Event("change", { bubbles: true }));
  })()`);
}

async function waitForDownload(dir: string, timeoutMs: number): Promise<string> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    try {
      for await (const entry of Deno.readDir(dir)) {
        if (entry.name.endsWith(".safetensors")) return `${dir}/${entry.name}`;
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    await sleep(50);
  }
  throw new Error(`no .safetensors file arrived in ${dir} within ${timeoutMs} ms`);
}

browserTest("the playground in Chromium", async (t, browser) => {
  const server = await serveBuild(async (dir) => {
    const sizes = await buildPlayground(dir);
    const kb = (name: string) => `${name} ${(sizes[name] / 1024).toFixed(0)} KB`;
    console.log(`bundled ${kb("app.js")}, ${kb("worker.js")}, ${kb("chainrule.js")}`);
  });
  const files = await Deno.makeTempDir({ prefix: "chainrule-browser-files-" });
  try {
    const page = await browser.newPage();
    await page.setViewport(1280, 900);
    await page.goto(server.url);
    await page.waitFor(view("backend"), 15_000, "the worker's ready report");

    await t.step("is served cross-origin isolated (COOP, COEP), training on wasm", async () => {
      const response = await fetch(server.url);
      await response.body?.cancel();
      for (const [name, value] of Object.entries(RESPONSE_HEADERS)) {
        assert.equal(response.headers.get(name), value, name);
      }
      assert.equal(await page.evaluate("crossOriginIsolated"), true);
      assert.equal(await page.evaluate(view("backend")), "wasm");
    });

    await t.step("Tab reaches Start, with a visible focus ring", async () => {
      for (let presses = 0; presses < 5 && await focusedId(page) !== "start"; presses++) {
        await page.press("Tab");
      }
      assert.equal(await focusedId(page), "start", "Start is among the first stops of Tab");
      const ring = await page.evaluate<{ style: string; width: string }>(`(() => {
        const style = getComputedStyle(document.activeElement);
        return { style: style.outlineStyle, width: style.outlineWidth };
      })()`);
      assert.notEqual(ring.style, "none");
      assert.ok(parseFloat(ring.width) >= 2, `outline ${ring.width}`);
    });

    await t.step("trains the spiral to ≥ 0.9 accuracy within 30 s of pressing Start", async () => {
      assert.equal(await page.evaluate("document.getElementById('dataset').value"), "spiral");
      assert.equal(await page.evaluate("document.getElementById('classes').value"), "3");
      await page.press("Enter");
      const pressed = performance.now();
      await page.waitFor(view("trainAccuracy >= 0.9"), 30_000, "training accuracy ≥ 0.9");
      const seconds = (performance.now() - pressed) / 1000;
      const epoch = await page.evaluate<number>(view("epoch"));
      console.log(`spiral: training accuracy ≥ 0.9 at epoch ${epoch}, ${seconds.toFixed(2)} s`);
      // The counter on the page counts on.
      const counter = () => page.evaluate<string>("Number(document.getElementById('epoch').value)");
      const shown = await counter();
      await sleep(300);
      assert.ok(await counter() > shown, "the epoch counter moves while training");
    });

    await t.step("repaints at ≥ 30 frames per second while training", async () => {
      const measure = `({ frames: ${view("frames")}, time: performance.now() })`;
      const before = await page.evaluate<{ frames: number; time: number }>(measure);
      await sleep(2000);
      const after = await page.evaluate<{ frames: number; time: number }>(measure);
      const fps = (after.frames - before.frames) * 1000 / (after.time - before.time);
      const rate = await page.evaluate<number>(view("epochsPerSecond"));
      const accuracy = await page.evaluate<number>(view("trainAccuracy"));
      const val = await page.evaluate<number>(view("valAccuracy"));
      console.log(
        `${fps.toFixed(1)} frames/s, ${rate.toFixed(0)} epochs/s, ` +
          `accuracy ${accuracy.toFixed(3)}, validation ${val.toFixed(3)}`,
      );
      assert.ok(fps >= 30, `${fps.toFixed(1)} frames/s`);
      assert.ok(rate > 0, `${rate} epochs/s`);
      assert.notEqual(await page.evaluate("document.getElementById('rate').value"), "–");
    });

    await t.step("draws regions and points: the canvas is not blank", async () => {
      const pixels = await page.evaluate<{ colors: number; white: number; samples: number }>(
        `(() => {
        const canvas = document.getElementById("regions");
        const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
        const colors = new Set();
        let white = 0, samples = 0;
        for (let i = 0; i < data.length; i += 4 * 37) {
          samples++;
          colors.add(data[i] + "," + data[i + 1] + "," + data[i + 2]);
          if (data[i] > 250 && data[i + 1] > 250 && data[i + 2] > 250) white++;
        }
        return { colors: colors.size, white, samples };
      })()`,
      );
      assert.ok(pixels.samples > 1000, `${pixels.samples} pixels sampled`);
      assert.ok(pixels.colors >= 20, `${pixels.colors} distinct colours`);
      assert.ok(pixels.white < pixels.samples * 0.2, `${pixels.white}/${pixels.samples} white`);
    });

    await t.step("Pause, pressed with Space, stops the epoch counter within 100 ms", async () => {
      assert.equal(await focusedId(page), "pause", "focus moved from Start to Pause");
      await page.press(" ");
      await page.waitFor(`!${view("running")}`, 2000, "the worker's pause");
      const latency = await page.evaluate<number>(view("pauseLatencyMs"));
      console.log(`pause took effect after ${latency.toFixed(1)} ms`);
      assert.ok(latency < 100, `${latency} ms`);
      await sleep(100); // one more frame paints the final count
      const counter = () => page.evaluate<string>("document.getElementById('epoch').value");
      const stopped = await counter();
      const frames = await page.evaluate<number>(view("frames"));
      await sleep(700);
      assert.equal(await counter(), stopped);
      assert.equal(
        await page.evaluate(view("frames")),
        frames,
        "no repaints while nothing changes",
      );
      assert.equal(String(await page.evaluate(view("epoch"))), stopped);
      assert.equal(await focusedId(page), "start", "focus moved back to Start");
    });

    await t.step("Step runs exactly one epoch", async () => {
      const before = await page.evaluate<number>(view("epoch"));
      await click(page, "step");
      await page.waitFor(view(`epoch === ${before + 1}`), 5000, "one more epoch");
      await sleep(300);
      assert.equal(await page.evaluate(view("epoch")), before + 1);
      assert.equal(await page.evaluate(view("running")), false);
    });

    await t.step("Download model saves chainrule's safetensors; Load model reads it", async () => {
      const epoch = await page.evaluate<number>(view("epoch"));
      await click(page, "download");
      const path = await waitForDownload(browser.downloads, 10_000);
      const { model, optimizer, metadata } = modelFromBytes(await Deno.readFile(path));
      assert.equal(
        model.toString(),
        "Sequential(Dense(in=2, out=64) → ReLU() → Dense(in=64, out=3))",
      );
      assert.equal(optimizer?.kind, "Adam");
      assert.equal(metadata.epochs, String(epoch));
      assert.equal(JSON.parse(metadata["playground.settings"]).dataset, "spiral");

      await click(page, "reset");
      await page.waitFor(view("epoch === 0"), 5000, "the reset");
      await page.setInputFiles("#load-file", [path]);
      await page.waitFor(view(`epoch === ${epoch}`), 5000, "the loaded model's epoch count");
      // The worker announces the loaded model (its epoch) and then reports "loaded": two
      // messages, which the page handles in two tasks.
      await page.waitFor(
        "document.getElementById('status').textContent.startsWith('Loaded ')",
        5000,
        "the loaded report",
      );
      assert.match(
        await page.evaluate<string>("document.getElementById('status').textContent"),
        /^Loaded /,
      );
      await click(page, "step");
      await page.waitFor(view(`epoch === ${epoch + 1}`), 5000, "a step of the loaded model");
      const accuracy = await page.evaluate<number>(view("trainAccuracy"));
      assert.ok(accuracy >= 0.9, `the loaded weights classify ${accuracy} of the points`);
    });

    await t.step("Load model says what is wrong with a file that is not a model", async () => {
      const bad = `${files}/not-a-model.safetensors`;
      await Deno.writeFile(bad, new TextEncoder().encode("hello"));
      await page.setInputFiles("#load-file", [bad]);
      await page.waitFor(
        "document.getElementById('status').classList.contains('error')",
        5000,
        "an error in the status line",
      );
      assert.match(
        await page.evaluate<string>("document.getElementById('status').textContent"),
        /modelFromBytes/,
      );
    });

    await t.step("a new data set starts a new run, and XOR trains too", async () => {
      await choose(page, "dataset", "xor");
      await page.waitFor(view("epoch === 0"), 5000, "the new run");
      assert.equal(await page.evaluate("document.getElementById('classes').disabled"), true);
      await click(page, "start");
      await page.waitFor(view("trainAccuracy >= 0.9"), 30_000, "XOR accuracy ≥ 0.9");
      await click(page, "pause");
      await page.waitFor(`!${view("running")}`, 2000, "the pause");
    });

    await t.step("an invalid field is marked and explained, and changes nothing", async () => {
      const epoch = await page.evaluate<number>(view("epoch"));
      await choose(page, "hidden", "8, x");
      assert.equal(await page.evaluate("document.getElementById('hidden').ariaInvalid"), "true");
      const status = () => page.evaluate<string>("document.getElementById('status').textContent");
      assert.match(await status(), /^Hidden layers must be a list of at most 6 layer sizes/);
      await sleep(200);
      assert.equal(await page.evaluate(view("epoch")), epoch);
      await choose(page, "hidden", "8, 8");
      await page.waitFor(view("epoch === 0"), 5000, "the new network's run");
      assert.equal(await page.evaluate("document.getElementById('hidden').ariaInvalid"), null);
      assert.equal(await status(), "Ready: press Start.");
    });

    await t.step("is readable on a phone-sized viewport (390 × 844)", async () => {
      await page.setViewport(390, 844, { mobile: true, scale: 2 });
      // Repainted at the new size, though paused.
      await page.waitFor(
        `(() => {
          const canvas = document.getElementById("regions");
          return innerWidth === 390 && canvas.width === Math.round(canvas.clientWidth * 2);
        })()`,
        5000,
        "a repaint at the phone's size",
      );
      const layout = await page.evaluate<Record<string, number>>(`(() => {
        const canvas = document.getElementById("regions");
        const px = (el) => parseFloat(getComputedStyle(el).fontSize);
        return {
          viewport: innerWidth,
          scrollWidth: document.documentElement.scrollWidth,
          canvas: canvas.getBoundingClientRect().width,
          button: document.getElementById("start").getBoundingClientRect().height,
          smallestText: Math.min(...[...document.querySelectorAll("label, dd, p, figcaption")].map(px)),
        };
      })()`);
      assert.equal(layout.viewport, 390);
      assert.ok(layout.scrollWidth <= layout.viewport, `page is ${layout.scrollWidth}px wide`);
      assert.ok(layout.canvas >= 300 && layout.canvas <= 390, `canvas ${layout.canvas}px`);
      assert.ok(layout.button >= 44, `buttons ${layout.button}px high`);
      assert.ok(layout.smallestText >= 12, `text down to ${layout.smallestText}px`);
    });

    // The GPU steps come last: compiling WebGPU kernels on SwiftShader keeps Chromium's GPU
    // process, and so the page's repaints, busy for seconds. The worker reports what
    // webgpuStatus() found there; Chromium runs with --enable-unsafe-webgpu (_chromium.ts),
    // which gives SwiftShader's adapter.
    const gpu = await page.waitFor<{ available: boolean; detail: string }>(
      view("gpu"),
      15_000,
      "the worker's WebGPU report",
    );
    const gpuSwitch = () =>
      page.evaluate<{ disabled: boolean; checked: boolean; title: string; help: string }>(`(() => {
        const element = document.getElementById("gpu");
        const help = document.getElementById("gpu-help").textContent;
        return { disabled: element.disabled, checked: element.checked, title: element.title, help };
      })()`);
    console.log(`the worker's WebGPU: ${JSON.stringify(gpu)}`);

    await t.step(
      "the GPU switch is offered where the worker has WebGPU, else says why not",
      async () => {
        const shown = await gpuSwitch();
        assert.equal(shown.disabled, !gpu.available);
        assert.equal(shown.checked, false);
        assert.ok(gpu.detail.length > 0);
        assert.ok(shown.title.includes(gpu.detail), `title ${JSON.stringify(shown.title)}`);
        assert.ok(shown.help.includes(gpu.detail), `help ${JSON.stringify(shown.help)}`);
        if (!gpu.available) assert.match(shown.title, /^WebGPU is not available: /);
      },
    );

    const gpuSkip = gpu.available ? "" : ` (skipped: no WebGPU in the worker: ${gpu.detail})`;
    await t.step({
      name:
        `with the GPU switch on, trains with fitAsync on WebGPU, pauses, and the CPU goes on${gpuSkip}`,
      ignore: !gpu.available,
      fn: async () => {
        const status = () => page.evaluate<string>("document.getElementById('status').textContent");
        const start = await page.evaluate<number>(view("epoch"));
        await click(page, "gpu");
        assert.equal(await page.evaluate(view("device")), "webgpu");
        await click(page, "start");
        const pressed = performance.now();
        // The first epoch waits for the kernels to compile: tens of seconds on SwiftShader.
        await page.waitFor(
          `${
            view(`epoch > ${start}`)
          } || document.getElementById('status').classList.contains('error')`,
          120_000,
          "a first epoch on the GPU, or an error",
        );
        assert.equal(await status(), "Training on the GPU…", "the status line");
        const compiled = performance.now();
        const first = await page.evaluate<{ epoch: number; loss: number }>(
          `({ epoch: ${view("epoch")}, loss: ${view("trainLoss")} })`,
        );
        await page.waitFor(view(`epoch >= ${first.epoch + 20}`), 60_000, "20 more GPU epochs");
        const later = await page.evaluate<{ epoch: number; loss: number }>(
          `({ epoch: ${view("epoch")}, loss: ${view("trainLoss")} })`,
        );
        const perEpoch = (performance.now() - compiled) / (later.epoch - first.epoch);
        console.log(
          `GPU: first epoch after ${((compiled - pressed) / 1000).toFixed(1)} s, then ` +
            `${perEpoch.toFixed(1)} ms an epoch; loss ${first.loss.toFixed(4)} at epoch ` +
            `${first.epoch} → ${later.loss.toFixed(4)} at epoch ${later.epoch}`,
        );
        assert.ok(Number.isFinite(later.loss) && later.loss < first.loss, JSON.stringify(later));

        await click(page, "pause");
        await page.waitFor(`!${view("running")}`, 60_000, "the GPU run's pause");
        await sleep(300);
        const paused = await page.evaluate<number>(view("epoch"));
        assert.equal(await status(), `Paused at epoch ${paused}.`);
        await sleep(500);
        assert.equal(await page.evaluate(view("epoch")), paused, "no epoch after the pause");

        await click(page, "gpu"); // back to the CPU, from the GPU's weights
        assert.equal(await page.evaluate(view("device")), "cpu");
        await click(page, "step");
        await page.waitFor(view(`epoch === ${paused + 1}`), 5000, "a CPU step after the GPU");
        const loss = await page.evaluate<number>(view("trainLoss"));
        assert.ok(loss < first.loss, `the CPU's step: loss ${loss}, the GPU's first ${first.loss}`);
        assert.doesNotMatch(await status(), /fitAsync|WebGPU/);
      },
    });

    await t.step("printed no console errors, in the page or its worker", () => {
      assert.deepEqual(page.errors, [], describeErrors(page));
    });
  } finally {
    await server.close();
    await Deno.remove(files, { recursive: true });
  }
});
