// How error messages show a value they refuse: as it is, in one short line. Shared by every
// check in the library (and exported to plugin authors from the plugin entry).

// At most this many items of an array, keys of an object, levels of nesting and characters
// of a string are shown; the rest is abbreviated with "…".
const MAX_ITEMS = 6;
const MAX_DEPTH = 2;
const MAX_STRING = 40;
const MAX_TEXT = 120;

/**
 * A value as an error message shows it, as it is: `NaN`, `-Infinity`, `"2"` (strings in
 * quotes, so that `"2"` is not mistaken for `2`), `null`, `undefined`, `[1, 2, 3, … (10
 * items)]`, `{ kind: "Dense", config: {…} }`, `Float32Array(4) [0, 1, 2, 3]`, a class
 * instance by its `toString()` (a layer, a tensor) or its class name. Long arrays,
 * strings and objects are abbreviated, and nesting is cut at two levels, so that the text
 * stays short whatever the value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describe } from "@chainrule/nn/plugin";
 *
 * assert.equal(describe(NaN), "NaN");
 * assert.equal(describe("2"), '"2"');
 * assert.equal(describe([1, 2, 3, 4, 5, 6, 7, 8, 9]), "[1, 2, 3, 4, 5, 6, … (9 items)]");
 * assert.equal(describe({ padding: null }), "{ padding: null }");
 * ```
 */
export function describe(value: unknown): string {
  const text = show(value, 0);
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text;
}

/**
 * What a value is, in words, for messages that expect another kind: `a string ("hello")`,
 * `the number NaN`, `an array of 3`, `a Float32Array`, `an object`, `null`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeKind } from "@chainrule/nn/plugin";
 *
 * assert.equal(describeKind("72"), 'a string ("72")');
 * assert.equal(describeKind(Infinity), "the number Infinity");
 * ```
 */
export function describeKind(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "string") return `a string (${show(value, 0)})`;
  if (typeof value === "number") return `the number ${show(value, 0)}`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "object") {
    const name = className(value);
    return name ? `${article(name)} ${name}` : "an object";
  }
  return `${article(typeof value)} ${typeof value}`;
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? "an" : "a";
}

// The class of an instance, or undefined for a plain object (or one whose class cannot be read).
function className(value: object): string | undefined {
  try {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === "string" && name !== "" && name !== "Object" ? name : undefined;
  } catch {
    return undefined;
  }
}

function show(value: unknown, depth: number): string {
  switch (typeof value) {
    case "undefined":
      return "undefined";
    case "number":
      return Object.is(value, -0) ? "-0" : String(value); // NaN, Infinity, -Infinity as such
    case "bigint":
      return `${value}n`;
    case "boolean":
      return String(value);
    case "string": {
      const cut = value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
      return JSON.stringify(cut);
    }
    case "symbol":
      return value.toString();
    case "function":
      return value.name ? `function ${value.name}` : "a function";
  }
  if (value === null) return "null";
  try {
    return showObject(value as object, depth);
  } catch {
    return className(value as object) ?? "an object"; // a getter or proxy that throws
  }
}

function showObject(value: object, depth: number): string {
  if (Array.isArray(value)) {
    if (depth >= MAX_DEPTH) return value.length === 0 ? "[]" : "[…]";
    return `[${items(value, value.length, depth)}]`;
  }
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const array = value as unknown as ArrayLike<unknown>;
    const head = `${className(value)}(${array.length})`;
    return depth >= MAX_DEPTH ? head : `${head} [${items(array, array.length, depth)}]`;
  }
  if (value instanceof Map || value instanceof Set) return `${className(value)}(${value.size})`;
  if (value instanceof Date) return `Date(${value.toISOString?.() ?? "invalid"})`;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  const name = className(value);
  if (name) {
    // A class with its own summary (a Tensor, a layer) shows it; others their name.
    const own = (value as { toString?: unknown }).toString;
    if (typeof own === "function" && own !== Object.prototype.toString) {
      const text = String(value);
      return text.length > MAX_STRING ? `${text.slice(0, MAX_STRING)}…` : text;
    }
    return name;
  }
  if (depth >= MAX_DEPTH) return "{…}";
  const keys = Object.keys(value);
  if (keys.length === 0) return "{}";
  const shown = keys.slice(0, MAX_ITEMS).map((key) => {
    const label = /^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key);
    return `${label}: ${show((value as Record<string, unknown>)[key], depth + 1)}`;
  });
  if (keys.length > MAX_ITEMS) shown.push(`… (${keys.length} keys)`);
  return `{ ${shown.join(", ")} }`;
}

function items(array: ArrayLike<unknown>, length: number, depth: number): string {
  const shown: string[] = [];
  for (let i = 0; i < Math.min(length, MAX_ITEMS); i++) shown.push(show(array[i], depth + 1));
  if (length > MAX_ITEMS) shown.push(`… (${length} items)`);
  return shown.join(", ");
}
