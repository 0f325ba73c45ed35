/** A value that survives `JSON.stringify` and `JSON.parse` unchanged. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A JSON object, as plugins return from `config()`. */
export type JsonObject = { [key: string]: JsonValue };

/** What {@linkcode scanJson} found: how deep and how many values, up to where it stopped. */
export interface JsonScan {
  /** The deepest nesting of arrays and objects seen (1 for `[1, 2]`). */
  depth: number;
  /** Arrays and objects seen. */
  containers: number;
  /** Values seen (containers, strings, numbers, literals), counted by separators. */
  values: number;
  /** Values directly inside the outermost array or object (counted by commas, so 1 when empty). */
  entries: number;
  /** Where the scan stopped early because a limit was passed, or -1. */
  stoppedAt: number;
  /** Which limit was passed: `"depth"`, `"containers"` or `"values"`, or `""`. */
  limit: "" | "depth" | "containers" | "values" | "entries";
}

/** Limits for {@linkcode scanJson}; each defaults to no limit. */
export interface JsonLimits {
  /** The deepest nesting allowed. */
  maxDepth?: number;
  /** The most arrays and objects allowed. */
  maxContainers?: number;
  /** The most values allowed. */
  maxValues?: number;
  /** The most values allowed directly inside the outermost array or object. */
  maxEntries?: number;
}

/**
 * Measures JSON text before it is parsed, in one pass and constant memory: how deep it
 * nests and how many values it holds, stopping at the first limit passed. `JSON.parse`
 * costs memory in proportion to these (and a deep nesting can cost gigabytes), so untrusted
 * text is scanned first. Text that is not JSON is scanned as far as it goes; parse it to
 * learn what is wrong with it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scanJson } from "@chainrule/nn/plugin";
 *
 * assert.equal(scanJson('{"a": [1, [2, "]"]]}').depth, 3);
 * assert.equal(scanJson("[[[[[[1]]]]]]", { maxDepth: 4 }).limit, "depth");
 * ```
 */
export function scanJson(text: string, limits: JsonLimits = {}): JsonScan {
  const maxDepth = limits.maxDepth ?? Infinity;
  const maxContainers = limits.maxContainers ?? Infinity;
  const maxValues = limits.maxValues ?? Infinity;
  const maxEntries = limits.maxEntries ?? Infinity;
  const scan: JsonScan = {
    depth: 0,
    containers: 0,
    values: 0,
    entries: 1,
    stoppedAt: -1,
    limit: "",
  };
  let depth = 0;
  let values = text.trim() === "" ? 0 : 1;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // a string: skip to its closing quote, past escapes
      i++;
      while (i < n && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c ? 2 : 1;
    } else if (c === 0x7b || c === 0x5b) { // { [
      depth++;
      scan.containers++;
      if (depth > scan.depth) scan.depth = depth;
      if (depth > maxDepth) return { ...scan, values, stoppedAt: i, limit: "depth" };
      if (scan.containers > maxContainers) {
        return { ...scan, values, stoppedAt: i, limit: "containers" };
      }
    } else if (c === 0x7d || c === 0x5d) { // } ]
      depth--;
    } else if (c === 0x2c || c === 0x3a) { // , : (each starts one more value)
      values++;
      if (values > maxValues) return { ...scan, values, stoppedAt: i, limit: "values" };
      if (c === 0x2c && depth === 1) {
        scan.entries++;
        if (scan.entries > maxEntries) return { ...scan, values, stoppedAt: i, limit: "entries" };
      }
    }
  }
  return { ...scan, values };
}
