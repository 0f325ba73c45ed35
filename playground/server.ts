// Builds the playground with `deno bundle` and serves it with Deno.serve. Used by
// `deno task playground` (main.ts) and by the browser tests.

/** The bundles of the playground: output file → entry module. */
export const BUNDLES: Readonly<Record<string, URL>> = Object.freeze({
  "app.js": new URL("./app.ts", import.meta.url),
  "worker.js": new URL("./worker.ts", import.meta.url),
  // The library alone, as a page would import it (README: "In the browser").
  "chainrule.js": new URL("../mod.ts", import.meta.url),
});
/** Files served as they are. */
export const STATIC_FILES: readonly string[] = ["index.html", "style.css"];

/** Options of {@linkcode bundleModule}. */
export interface BundleOptions {
  /** An import map file, e.g. to stand in for a `node:` module that browsers lack. */
  importMap?: string;
}

/**
 * Bundles `entry` and everything it imports into one browser module at `output`, with
 * `deno bundle --platform browser` (the Deno running this; needs --allow-run).
 *
 * @throws {Error} with deno bundle's own output when it fails.
 */
export async function bundleModule(
  entry: URL,
  output: string,
  options: BundleOptions = {},
): Promise<void> {
  const args = ["bundle", "--quiet", "--platform", "browser", "--output", output];
  if (options.importMap) args.push("--import-map", options.importMap);
  const { success, stderr, stdout } = await new Deno.Command(Deno.execPath(), {
    args: [...args, entry.href],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!success) {
    const text = new TextDecoder().decode(stderr) || new TextDecoder().decode(stdout);
    throw new Error(`bundleModule: deno bundle ${entry.pathname} failed:\n${text}`);
  }
}

/**
 * Builds the playground into `outDir`: the bundles of {@linkcode BUNDLES} and the
 * {@linkcode STATIC_FILES}. Returns each file's size in bytes.
 */
export async function buildPlayground(outDir: string): Promise<Record<string, number>> {
  await Promise.all(
    Object.entries(BUNDLES).map(([name, entry]) => bundleModule(entry, `${outDir}/${name}`)),
  );
  for (const name of STATIC_FILES) {
    await Deno.copyFile(new URL(name, import.meta.url), `${outDir}/${name}`);
  }
  const sizes: Record<string, number> = {};
  for (const name of [...Object.keys(BUNDLES), ...STATIC_FILES]) {
    sizes[name] = (await Deno.stat(`${outDir}/${name}`)).size;
  }
  return sizes;
}

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  png: "image/png",
  json: "application/json",
};

/**
 * The headers of every response: cross-origin isolation (COOP and COEP), so that the page
 * may use SharedArrayBuffer and threads, and no caching, so that a rebuild shows at once.
 */
export const RESPONSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
});

/** Answers GET requests with the files of `dir` (`/` is index.html), nothing else. */
export function directoryHandler(dir: string): (request: Request) => Promise<Response> {
  return async (request) => {
    const headers = new Headers(RESPONSE_HEADERS);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers });
    }
    const path = decodeURIComponent(new URL(request.url).pathname);
    const name = path === "/" ? "index.html" : path.slice(1);
    // Flat names only: no way out of the directory.
    if (!/^[\w.-]+$/.test(name) || name.startsWith(".")) {
      return new Response("not found\n", { status: 404, headers });
    }
    try {
      const body = await Deno.readFile(`${dir}/${name}`);
      headers.set(
        "content-type",
        CONTENT_TYPES[name.split(".").pop()!] ?? "application/octet-stream",
      );
      return new Response(request.method === "HEAD" ? null : body, { headers });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      return new Response("not found\n", { status: 404, headers });
    }
  };
}

/** Options of {@linkcode serveDirectory}. */
export interface ServeOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
}

/** A running server and its address. */
export interface RunningServer {
  /** `http://127.0.0.1:<port>/` */
  url: string;
  /** Stops listening and waits for open requests to finish. */
  close(): Promise<void>;
}

/** Serves `dir` on 127.0.0.1 (see {@linkcode directoryHandler}). Needs --allow-net and --allow-read. */
export function serveDirectory(dir: string, options: ServeOptions = {}): RunningServer {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen() {} },
    directoryHandler(dir),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    close: () => server.shutdown(),
  };
}
