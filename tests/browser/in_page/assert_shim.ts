// `node:assert/strict` for test files bundled into a page (in_page/import_map.json maps it here):
// the functions the test files use, with Node's strict semantics.

/** A failed assertion, as Node's. */
export class AssertionError extends Error {
  override name = "AssertionError";
}

function fail(message: string | Error | undefined, fallback: string): never {
  if (message instanceof Error) throw message;
  throw new AssertionError(message ?? fallback);
}

const show = (value: unknown): string => {
  try {
    return typeof value === "string" ? JSON.stringify(value) : String(
      ArrayBuffer.isView(value) || Array.isArray(value)
        ? `[${Array.from(value as ArrayLike<unknown>).join(", ")}]`
        : typeof value === "object" && value !== null
        ? JSON.stringify(value)
        : value,
    );
  } catch {
    return String(value);
  }
};

/** Node's `isDeepStrictEqual` for what tests compare: primitives, arrays, typed arrays, objects. */
export function isDeepStrictEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (a instanceof RegExp) return String(a) === String(b);
  if (a instanceof Map || a instanceof Set) {
    return isDeepStrictEqual([...a.entries()], [...(b as Map<unknown, unknown>).entries()]);
  }
  if (ArrayBuffer.isView(a)) {
    const x = a as unknown as ArrayLike<unknown>;
    const y = b as unknown as ArrayLike<unknown>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
    return true;
  }
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  return keysA.every((key) =>
    Object.hasOwn(b, key) &&
    isDeepStrictEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])
  );
}

type Expected =
  | (new (...args: never[]) => unknown)
  | RegExp
  | ((error: unknown) => boolean)
  | Record<string, unknown>;

function matches(error: unknown, expected: Expected | undefined): boolean {
  if (expected === undefined) return true;
  if (expected instanceof RegExp) return expected.test(String(error));
  if (typeof expected === "function") {
    if (expected.prototype !== undefined && error instanceof expected) return true;
    if (expected === Error || expected.prototype instanceof Error) return false; // an error class
    return (expected as (error: unknown) => boolean)(error) === true;
  }
  return Object.entries(expected).every(([key, want]) => {
    const got = (error as Record<string, unknown>)?.[key];
    return want instanceof RegExp && typeof got === "string"
      ? want.test(got)
      : isDeepStrictEqual(got, want);
  });
}

/** Throws unless `value` is truthy. */
function ok(value: unknown, message?: string | Error): asserts value {
  if (!value) fail(message, `expected a truthy value, got ${show(value)}`);
}

/** `node:assert/strict`'s default export, as far as the bundled tests use it. */
const assert = Object.assign(ok, {
  ok,
  AssertionError,
  equal(actual: unknown, expected: unknown, message?: string | Error): void {
    if (!Object.is(actual, expected)) {
      fail(message, `expected ${show(actual)} to equal ${show(expected)}`);
    }
  },
  notEqual(actual: unknown, expected: unknown, message?: string | Error): void {
    if (Object.is(actual, expected)) fail(message, `expected ${show(actual)} to differ`);
  },
  deepEqual(actual: unknown, expected: unknown, message?: string | Error): void {
    if (!isDeepStrictEqual(actual, expected)) {
      fail(message, `expected ${show(actual)} to deep-equal ${show(expected)}`);
    }
  },
  notDeepEqual(actual: unknown, expected: unknown, message?: string | Error): void {
    if (isDeepStrictEqual(actual, expected)) fail(message, `expected ${show(actual)} to differ`);
  },
  match(text: string, pattern: RegExp, message?: string | Error): void {
    if (!pattern.test(text)) fail(message, `expected ${show(text)} to match ${pattern}`);
  },
  doesNotMatch(text: string, pattern: RegExp, message?: string | Error): void {
    if (pattern.test(text)) fail(message, `expected ${show(text)} not to match ${pattern}`);
  },
  throws(fn: () => unknown, expected?: Expected | string, message?: string | Error): void {
    if (typeof expected === "string") [message, expected] = [expected, undefined];
    try {
      fn();
    } catch (error) {
      if (!matches(error, expected)) {
        fail(message, `the error thrown does not match: ${(error as Error)?.stack ?? error}`);
      }
      return;
    }
    fail(message, "expected the function to throw");
  },
  async rejects(
    fn: (() => Promise<unknown>) | Promise<unknown>,
    expected?: Expected,
    message?: string | Error,
  ): Promise<void> {
    try {
      await (typeof fn === "function" ? fn() : fn);
    } catch (error) {
      if (!matches(error, expected)) fail(message, `the rejection does not match: ${error}`);
      return;
    }
    fail(message, "expected a rejection");
  },
  fail(message?: string | Error): never {
    fail(message, "failed");
  },
});

export default assert;
