// The page of the library test (tests/browser/library_test.ts): the book's numbers and the
// gradient checks, the very test files `deno test` runs, bundled for the browser.
import { removeDenoGlobal, runTests } from "./deno_test_shim.ts"; // first: lends Deno.test
import "../../seed_test.ts";
import "../../gradients_test.ts";
import { getBackend, wasmSupport } from "../../../mod.ts";

removeDenoGlobal();

/** What the page reports: the backend the tests ran on and how each went. */
async function runInPage() {
  const backend = getBackend().name;
  return { backend, wasm: wasmSupport(), tests: await runTests() };
}

Object.defineProperty(globalThis, "runInPage", { value: runInPage });
