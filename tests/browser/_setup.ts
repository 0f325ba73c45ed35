// What the browser tests share: finding Chromium (or saying loudly why they are skipped),
// and serving a build from a temporary directory.
import { type RunningServer, serveDirectory } from "../../playground/server.ts";
import { Browser, findChromium, type Page } from "./_chromium.ts";

// What `deno task test:browser` grants; without it (a plain `deno test`) the tests skip.
const NEEDED: Deno.PermissionDescriptor[] = [
  { name: "read" },
  { name: "write" },
  { name: "run" },
  { name: "net", host: "127.0.0.1" },
];
const missing = NEEDED.filter((permission) =>
  Deno.permissions.querySync(permission).state !== "granted"
).map(({ name }) => `--allow-${name}`);
const chromium = missing.length === 0 ? findChromium() : undefined;
const skipped = missing.length > 0
  ? `needs ${missing.join(" ")}: run deno task test:browser`
  : !chromium
  ? "chromium not found"
  : undefined;
if (skipped) {
  console.warn(
    `%cbrowser tests skipped: ${skipped}. They need Chromium (apt-get install chromium, or ` +
      "$CHROMIUM pointing at a Chrome or Chromium executable).",
    "color: orange; font-weight: bold",
  );
}

/**
 * A `Deno.test` that needs Chromium: without it, it is reported as ignored, its name saying
 * why, never as passed.
 */
export function browserTest(
  name: string,
  fn: (t: Deno.TestContext, browser: Browser) => Promise<void>,
): void {
  Deno.test({
    name: skipped ? `${name} (skipped: ${skipped})` : name,
    ignore: skipped !== undefined,
    async fn(t) {
      const browser = await Browser.launch(chromium!);
      try {
        await fn(t, browser);
      } finally {
        await browser.close();
      }
    },
  });
}

/** Builds into a fresh temporary directory with `build` and serves it until `close`. */
export async function serveBuild(build: (dir: string) => Promise<void>): Promise<RunningServer> {
  const dir = await Deno.makeTempDir({ prefix: "chainrule-browser-test-" });
  try {
    await build(dir);
    const server = serveDirectory(dir);
    return {
      url: server.url,
      async close() {
        await server.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

/** What the page printed as errors, one per line, for an assertion's message. */
export function describeErrors(page: Page): string {
  return page.errors.map(({ source, text }) => `${source}: ${text}`).join("\n");
}
