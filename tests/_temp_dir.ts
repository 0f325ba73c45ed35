// A temporary folder for a test's files, removed afterwards whatever the test did.

/** Runs `run` with a fresh temporary folder and removes the folder afterwards. */
export async function withTempDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
