// Run with `deno task test:blas`: the blas backend follows setThreads (OpenBLAS's own thread
// count, read back by blasInfo with openblas_get_num_threads). Ignored without the library or
// --allow-ffi.
import assert from "node:assert/strict";
import { blasBackend, blasInfo } from "../blas.ts";
import { setThreads } from "../mod.ts";

const blas = blasBackend();

Deno.test({
  name: "the blas backend runs OpenBLAS on as many threads as setThreads asks",
  ignore: !blas,
  fn() {
    const cores = navigator.hardwareConcurrency;
    const openblasThreads = () => blasInfo(blas)?.threads;
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
