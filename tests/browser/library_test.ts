// The library inside Chromium: the book's numbers (tests/seed_test.ts) and the gradient
// checks (tests/gradients_test.ts), the same files, bundled and run in a page on the wasm
// backend. Run with `deno task test:browser`.
import assert from "node:assert/strict";
import { bundleModule } from "../../playground/server.ts";
import { browserTest, describeErrors, serveBuild } from "./_setup.ts";
import type { Outcome } from "./in_page/deno_test_shim.ts";

const IN_PAGE = new URL("./in_page/", import.meta.url);

async function buildInPage(dir: string): Promise<void> {
  await bundleModule(new URL("entry.ts", IN_PAGE), `${dir}/entry.js`, {
    importMap: new URL("import_map.json", IN_PAGE).pathname,
  });
  await Deno.copyFile(new URL("index.html", IN_PAGE), `${dir}/index.html`);
}

browserTest(
  "in Chromium: the book's numbers and the gradient checks pass on wasm",
  async (t, browser) => {
    const server = await serveBuild(buildInPage);
    try {
      const page = await browser.newPage();
      await page.goto(server.url);
      const { backend, wasm, tests } = await page.evaluate<
        { backend: string; wasm: string; tests: Outcome[] }
      >("runInPage()");

      await t.step("the wasm backend is active", () => {
        assert.equal(backend, "wasm", `getBackend().name in Chromium (wasmSupport: ${wasm})`);
      });
      assert.ok(tests.length >= 10, `only ${tests.length} tests ran in the page`);
      for (const test of tests) {
        await t.step(`in the page: ${test.name}`, () => {
          assert.ok(!test.ignored, "ignored in the page");
          const failed = [test, ...test.steps].filter((outcome) => !outcome.ok);
          assert.ok(test.ok, failed.map((o) => `${o.name}: ${o.error}`).join("\n"));
        });
      }
      await t.step(
        "no console errors",
        () => assert.deepEqual(page.errors, [], describeErrors(page)),
      );
    } finally {
      await server.close();
    }
  },
);
