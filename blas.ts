/**
 * The optional OpenBLAS backend of chainrule, a separate entry point so that the default
 * one never touches FFI: `import { blasBackend } from "@chainrule/nn/blas"`, run with
 * `--allow-ffi`, after `apt-get install libopenblas0`.
 *
 * @example
 * ```ts ignore
 * import { setBackend } from "@chainrule/nn";
 * import { blasBackend } from "@chainrule/nn/blas";
 *
 * const blas = blasBackend();
 * if (blas) setBackend(blas);
 * ```
 *
 * @module
 */
export * from "./backends/blas.ts";
