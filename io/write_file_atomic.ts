// File access for saving and loading. Deno's file APIs are touched only when these functions
// are called, so importing the library needs no permission and works in a browser.

function denoApi(where: string): typeof Deno {
  if (typeof Deno === "undefined") {
    throw new Error(
      `${where}: needs Deno's file APIs; elsewhere (a browser) use the in-memory functions ` +
        "(encodeSafetensors, modelToBytes, model.toBytes())",
    );
  }
  return Deno;
}

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** How old (by modification time) a temporary file must be before a save or load removes it. */
export const STALE_TEMP_MS = 60_000;

// `<target>.chainrule-<pid>-<12 hex>.tmp`: the writer's process id, then a random suffix.
const TEMP_NAME = /^.+\.chainrule-(\d{1,10})-[0-9a-f]{12}\.tmp$/;
// What saves before this naming left: `<name>.safetensors.<12 hex>.tmp`.
const LEGACY_TEMP_NAME = /^.+\.safetensors\.[0-9a-f]{12}\.tmp$/;
// The temporary files this process is writing now (their paths), which no cleaning touches.
const writing = new Set<string>();

/** The temporary file name a save of `path` writes first (exported for tests). */
export function tempPathFor(path: string, pid: number = Deno.pid): string {
  return `${path}.chainrule-${pid}-${randomSuffix()}.tmp`;
}

function directoryOf(path: string): string {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return cut < 0 ? "." : cut === 0 ? path.slice(0, 1) : path.slice(0, cut);
}

function baseName(path: string): string {
  return path.slice(Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1);
}

// Whether process `pid` runs on this machine: true, false, or undefined where it cannot be
// told (not Linux, or /proc not readable).
function processAlive(deno: typeof Deno, pid: number): boolean | undefined {
  if (deno.build.os !== "linux") return undefined;
  try {
    deno.statSync(`/proc/${pid}`);
    return true;
  } catch (error) {
    return error instanceof deno.errors.NotFound ? false : undefined;
  }
}

/**
 * Removes the temporary files that killed saves left in the folder of `path`: files named
 * `<name>.chainrule-<pid>-<hex>.tmp` (or `<name>.safetensors.<hex>.tmp`, the older naming)
 * whose last change is over {@linkcode STALE_TEMP_MS} old and whose writer is not a live
 * process (this process's own saves in flight, and on Linux any process whose id is in
 * `/proc`, are left alone). Every save and load calls it; errors (no permission to list
 * or remove) are ignored. Gives back the paths removed.
 */
export async function removeStaleTemps(path: string, now: number = Date.now()): Promise<string[]> {
  const deno = denoApi("removeStaleTemps");
  const directory = directoryOf(path);
  const removed: string[] = [];
  try {
    for await (const entry of deno.readDir(directory)) {
      if (!entry.isFile) continue;
      const match = TEMP_NAME.exec(entry.name);
      if (!match && !LEGACY_TEMP_NAME.test(entry.name)) continue;
      const full = `${directory}/${entry.name}`;
      if (writing.has(full)) continue;
      try {
        const info = await deno.lstat(full);
        const changed = info.mtime?.getTime() ?? now;
        if (!(now - changed > STALE_TEMP_MS)) continue;
        if (match) {
          const pid = Number(match[1]);
          if (pid !== deno.pid && processAlive(deno, pid) === true) continue;
        }
        await deno.remove(full);
        removed.push(full);
      } catch {
        // Gone already, or not ours to remove: leave it.
      }
    }
  } catch {
    // The folder cannot be listed: nothing to clean.
  }
  return removed;
}

async function writeAll(file: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  for (let done = 0; done < chunk.length;) done += await file.write(chunk.subarray(done));
}

/**
 * Writes `chunks` (one array, or several written in order) to `path` so that `path` only ever holds the old file or the whole new
 * one: the chunks go to a temporary file beside `path` (same directory, hence the same file
 * system), which is flushed to disk and renamed over `path`. On any failure, including one
 * thrown while the chunks are produced, the temporary file is removed and `path` is left as
 * it was. The temporary file is named `<path>.chainrule-<pid>-<hex>.tmp`; one that a killed
 * save left behind is removed by the next save or load in that folder once it is a minute old
 * (see {@linkcode removeStaleTemps}). Needs `--allow-read --allow-write`.
 *
 * @throws {Error} naming `path`, with the underlying error as `cause`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomic } from "@chainrule/nn";
 *
 * const path = `${await Deno.makeTempDir()}/notes.txt`;
 * await writeFileAtomic(path, new TextEncoder().encode("hello"));
 * assert.equal(await Deno.readTextFile(path), "hello");
 * ```
 */
export async function writeFileAtomic(
  path: string,
  chunks: Uint8Array | Iterable<Uint8Array>,
): Promise<void> {
  const deno = denoApi("writeFileAtomic");
  if (typeof path !== "string" || path === "") {
    throw new TypeError(`writeFileAtomic: path must be a non-empty string, got ${path}`);
  }
  const pieces = chunks instanceof Uint8Array ? [chunks] : chunks;
  await removeStaleTemps(path);
  const temp = tempPathFor(path, deno.pid);
  const tracked = `${directoryOf(path)}/${baseName(temp)}`; // as removeStaleTemps spells it
  writing.add(tracked);
  let created = false;
  try {
    const file = await deno.open(temp, { write: true, createNew: true });
    created = true;
    try {
      for (const chunk of pieces) await writeAll(file, chunk);
      await file.syncData();
    } finally {
      file.close();
    }
    await deno.rename(temp, path);
  } catch (error) {
    if (created) await deno.remove(temp).catch(() => {});
    throw new Error(
      `writeFileAtomic: could not write "${path}" (any previous file there is untouched): ${
        (error as Error)?.message ?? error
      }`,
      { cause: error },
    );
  } finally {
    writing.delete(tracked);
  }
}

/** Reads a whole file; `where` names the caller in the error. Needs `--allow-read`. */
export async function readFileBytes(path: string, where: string): Promise<Uint8Array> {
  const deno = denoApi(where);
  try {
    return await deno.readFile(path);
  } catch (error) {
    throw new Error(`${where}: could not read the file: ${(error as Error)?.message ?? error}`, {
      cause: error,
    });
  }
}
