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

async function writeAll(file: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  for (let done = 0; done < chunk.length;) done += await file.write(chunk.subarray(done));
}

/**
 * Writes `chunks` (one array, or several written in order) to `path` so that `path` only ever holds the old file or the whole new
 * one: the chunks go to a temporary file beside `path` (same directory, hence the same file
 * system), which is flushed to disk and renamed over `path`. On any failure, including one
 * thrown while the chunks are produced, the temporary file is removed and `path` is left as
 * it was. Needs `--allow-read --allow-write`.
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
  const temp = `${path}.${randomSuffix()}.tmp`;
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
