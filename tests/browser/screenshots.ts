// Screenshots of the playground for the docs, taken in headless Chromium over CDP:
//   deno run --allow-read --allow-write --allow-run --allow-net=127.0.0.1 --allow-env=CHROMIUM \
//     tests/browser/screenshots.ts docs/
// writes playground_training.png (during training) and playground.png (after it), whole
// pages 1280 px wide, and playground_phone.png (the screen of a 390 × 844 phone) into the
// directory given.
import { buildPlayground } from "../../playground/server.ts";
import { Browser, findChromium, type Page } from "./_chromium.ts";
import { serveBuild } from "./_setup.ts";

const [outDir] = Deno.args;
if (!outDir || Deno.args.length !== 1) {
  console.error("usage: deno run -A tests/browser/screenshots.ts OUTPUT_DIRECTORY");
  Deno.exit(2);
}
const chromium = findChromium();
if (!chromium) {
  console.error("screenshots: Chromium not found (apt-get install chromium, or set $CHROMIUM)");
  Deno.exit(1);
}

async function save(page: Page, name: string, fullPage: boolean): Promise<void> {
  const path = `${outDir}/${name}`;
  const png = await page.screenshot({ fullPage });
  await Deno.writeFile(path, png);
  const state = await page.evaluate<string>(
    "`epoch ${chainrulePlayground.epoch}, accuracy ${chainrulePlayground.trainAccuracy.toFixed(3)}`",
  );
  console.log(`${path}: ${(png.length / 1024).toFixed(0)} KB (${state})`);
}

const server = await serveBuild(async (dir) => void await buildPlayground(dir));
const browser = await Browser.launch(chromium);
try {
  const page = await browser.newPage();
  await page.setViewport(1280, 880);
  await page.goto(server.url);
  await page.waitFor("globalThis.chainrulePlayground?.backend", 15_000);
  await page.evaluate("document.getElementById('start').click()");
  await page.waitFor(
    "chainrulePlayground.epoch >= 1500 && chainrulePlayground.epochsPerSecond > 0",
    30_000,
  );
  await save(page, "playground_training.png", true);
  await page.waitFor("chainrulePlayground.epoch >= 10000", 60_000);
  await page.evaluate("document.getElementById('pause').click()");
  await page.waitFor("!chainrulePlayground.running", 5_000);
  await new Promise((resolve) => setTimeout(resolve, 200)); // the last frame
  await save(page, "playground.png", true);
  await page.setViewport(390, 844, { mobile: true, scale: 2 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await save(page, "playground_phone.png", false);
  if (page.errors.length > 0) {
    throw new Error(`the page logged errors: ${JSON.stringify(page.errors)}`);
  }
} finally {
  await browser.close();
  await server.close();
}
