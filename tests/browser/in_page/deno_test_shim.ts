// `Deno.test` for test files bundled into a page: registering collects the tests, and
// `runTests` runs them as `deno test` would, steps included. Imported before the test files,
// it lends them a `Deno` global holding only `test`; `removeDenoGlobal` takes it back before
// anything runs, so that the library sees a browser.

type TestFn = (t: TestContext) => void | Promise<void>;

/** What a test function gets: its name and `step`. */
export interface TestContext {
  /** The test's or the step's name. */
  name: string;
  /** Runs a named step and reports whether it passed. */
  step(name: string, fn: TestFn): Promise<boolean>;
}

interface Registered {
  name: string;
  fn: TestFn;
  ignore: boolean;
}

/** How one test or step went. */
export interface Outcome {
  /** Its name. */
  name: string;
  /** Whether it passed (false when ignored). */
  ok: boolean;
  /** Whether it was registered with `ignore: true`. */
  ignored: boolean;
  /** The error's stack, when it failed. */
  error?: string;
  /** Its steps, in order. */
  steps: Outcome[];
}

const registered: Registered[] = [];

type TestDefinition = { name: string; fn: TestFn; ignore?: boolean };

function test(
  first: string | TestDefinition,
  second?: TestFn | Partial<TestDefinition>,
  third?: TestFn,
): void {
  if (typeof first === "string") {
    const fn = typeof second === "function" ? second : third!;
    const options = typeof second === "object" ? second : {};
    registered.push({ name: first, fn, ignore: options.ignore ?? false });
  } else {
    registered.push({ name: first.name, fn: first.fn, ignore: first.ignore ?? false });
  }
}

(globalThis as { Deno?: unknown }).Deno = { test };

/** Takes the lent `Deno` global back. */
export function removeDenoGlobal(): void {
  delete (globalThis as { Deno?: unknown }).Deno;
}

async function run(name: string, fn: TestFn): Promise<Outcome> {
  const outcome: Outcome = { name, ok: true, ignored: false, steps: [] };
  const context: TestContext = {
    name,
    async step(stepName, stepFn) {
      const step = await run(stepName, stepFn);
      outcome.steps.push(step);
      return step.ok;
    },
  };
  try {
    await fn(context);
  } catch (error) {
    outcome.ok = false;
    outcome.error = (error as Error)?.stack ?? String(error);
  }
  if (outcome.steps.some((step) => !step.ok)) outcome.ok = false;
  return outcome;
}

/** Runs every registered test in order. */
export async function runTests(): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (const { name, fn, ignore } of registered) {
    outcomes.push(ignore ? { name, ok: false, ignored: true, steps: [] } : await run(name, fn));
  }
  return outcomes;
}
