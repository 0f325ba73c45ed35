// deno task playground [--port N]: builds the playground into a temporary directory and
// serves it on localhost until interrupted.
import { parseArgs } from "node:util";
import { buildPlayground, serveDirectory } from "./server.ts";

const HELP = `Serve the chainrule playground: a page that trains a network live in your browser.

Usage: deno task playground [--port N]

Options:
  --port N   port on 127.0.0.1 (default 8000; 0 picks a free one)
  --help     show this help

The page and its worker are bundled from the library's own modules with deno bundle into a
temporary directory, removed again on Ctrl-C.`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "8000" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(
    `playground: --port must be an integer in [0, 65535], got "${values.port}"\n\n${HELP}`,
  );
  Deno.exit(2);
}

const dir = await Deno.makeTempDir({ prefix: "chainrule-playground-" });
let server: ReturnType<typeof serveDirectory> | undefined;
const stop = async () => {
  await server?.close();
  await Deno.remove(dir, { recursive: true });
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop); // no SIGTERM there

try {
  const started = performance.now();
  const sizes = await buildPlayground(dir);
  const built = Object.entries(sizes)
    .filter(([name]) => name.endsWith(".js"))
    .map(([name, bytes]) => `${name} ${(bytes / 1024).toFixed(0)} KB`)
    .join(", ");
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  server = serveDirectory(dir, { port });
  console.log(`bundled ${built} in ${seconds} s`);
  console.log(`chainrule playground: ${server.url}  (Ctrl-C stops it)`);
} catch (error) {
  await Deno.remove(dir, { recursive: true });
  console.error(`playground: ${(error as Error).message}`);
  Deno.exit(1);
}
