// Run with `deno task test:blas`: the blas backend follows setThreads (OpenBLAS's own thread
// count, read back with openblas_get_num_threads). Ignored without the library or --allow-ffi.
import assert from "node:assert/strict";
import { blasBackend } from "../blas.ts";
import { setThreads } from "../mod.ts";

const blas = blasBackend();

// The process's OpenBLAS (dlopen of the same library gives the same instance).
function openblasThreads(): number {
  const names = ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"];
  for (const name of names) {
    try {
      const library = Deno.dlopen(name, {
        openblas_get_num_threads: { parameters: [], result: "i32" },
      });
      try {
        return library.symbols.openblas_get_num_threads();
      } finally {
        library.close();
      }
    } catch { /* the next name */ }
  }
  throw new Error("openblasThreads: OpenBLAS not found");
}

Deno.test({
  name: "the blas backend runs OpenBLAS on as many threads as setThreads asks",
  ignore: !blas,
  fn() {
    const cores = navigator.hardwareConcurrency;
    try {
      assert.equal(openblasThreads(), Math.min(cores, 8)); // the default, set when it loaded
      setThreads(1);
      assert.equal(openblasThreads(), 1);
      setThreads(3);
      assert.equal(openblasThreads(), 3);
    } finally {
      setThreads(Math.min(cores, 8));
    }
  },
});
