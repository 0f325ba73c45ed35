/// <reference lib="dom" />
// The page's entry, bundled by `deno task playground` into app.js next to worker.js.
import { startPage } from "./page.ts";

const view = startPage(document, new URL("./worker.js", import.meta.url));
// For the browser tests and the curious: `chainrulePlayground.epoch` in the console.
Object.defineProperty(globalThis, "chainrulePlayground", { value: view });
