// The workloads' fingerprint, shared with the benchmarks.
export { sha16 } from "../bench/_sha16.ts";
