// docs/book.md maps the book's chapters to commands and quotes what they print: this runs each
// command and finds each quote in its output, so the map cannot drift from the code.
import assert from "node:assert/strict";

const root = new URL("..", import.meta.url);

interface Entry {
  chapter: string;
  command: string;
  needs: string[];
  quotes: string[];
}

// The bullets "- **run:** `…`", "- **needs:** `…`" and "- **prints:** `…` · `…`", each possibly
// continued on indented lines; a prints or needs bullet belongs to the run before it.
function parseMap(text: string): Entry[] {
  const bullets: { chapter: string; kind: string; body: string }[] = [];
  let chapter = "";
  for (const line of text.split("\n")) {
    if (line.startsWith("## ")) chapter = line.slice(3);
    const bullet = line.match(/^- \*\*(run|needs|prints):\*\*(.*)$/);
    if (bullet) bullets.push({ chapter, kind: bullet[1], body: bullet[2] });
    else if (line.startsWith("  ") && bullets.length > 0) bullets.at(-1)!.body += line;
    else if (line.trim() === "" || line.startsWith("## ")) {
      bullets.push({ chapter, kind: "", body: "" });
    }
  }
  const entries: Entry[] = [];
  let needs: string[] = [];
  for (const { chapter, kind, body } of bullets) {
    const quoted = [...body.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    if (kind === "needs") needs = quoted;
    if (kind === "run") entries.push({ chapter, command: quoted[0], needs, quotes: [] });
    if (kind === "prints") {
      assert.ok(entries.at(-1)?.chapter === chapter, `"prints" without a "run" in ${chapter}`);
      entries.at(-1)!.quotes.push(...quoted);
    }
    if (kind === "") needs = [];
  }
  return entries;
}

const outputs = new Map<string, Promise<string>>();

// Runs `deno run …` with the examples resolved from the repository, in a fresh folder, so that
// a command that saves a file writes nothing into the working tree; a saved file is kept
// there for the next command of the map that loads it.
function run(command: string, cwd: string): Promise<string> {
  const cached = outputs.get(command);
  if (cached) return cached;
  const [deno, verb, ...args] = command.split(" ");
  assert.equal(`${deno} ${verb}`, "deno run", `the map's commands are deno run: ${command}`);
  const resolved = args.map((arg) =>
    arg.startsWith("examples/") ? new URL(arg, root).pathname : arg
  );
  const output = new Deno.Command(Deno.execPath(), {
    args: ["run", ...resolved],
    cwd,
    env: { NO_COLOR: "1" },
  }).output().then(({ code, stdout, stderr }) => {
    const text = new TextDecoder().decode(stdout);
    assert.equal(code, 0, `${command} exited with ${code}:\n${new TextDecoder().decode(stderr)}`);
    return text;
  });
  outputs.set(command, output);
  return output;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("docs/book.md: every command prints what the map quotes", async (t) => {
  const map = await Deno.readTextFile(new URL("docs/book.md", root));
  const entries = parseMap(map);
  const chapters = [...map.matchAll(/^## (\d+)\./gm)].map((m) => Number(m[1]));
  const mentioned = new Set(chapters);
  for (const m of map.matchAll(/^## .* and (\d+)\./gm)) mentioned.add(Number(m[1]));
  for (const m of map.matchAll(/, (\d+)\. /g)) mentioned.add(Number(m[1]));
  for (let chapter = 1; chapter <= 22; chapter++) {
    assert.ok(mentioned.has(chapter), `docs/book.md has no section for chapter ${chapter}`);
  }
  assert.ok(entries.length >= 15, `only ${entries.length} commands in the map`);
  const cwd = await Deno.makeTempDir({ prefix: "chainrule-book-" });
  try {
    for (const entry of entries) {
      const missing = entry.needs.filter((path) => !exists(path));
      const name = `${entry.chapter}: ${entry.command}`;
      await t.step({
        name: missing.length > 0
          ? `${name} (skipped: ${missing.join(", ")} is not installed)`
          : name,
        ignore: missing.length > 0,
        fn: async () => {
          assert.ok(entry.quotes.length > 0, `${name} quotes nothing`);
          const output = await run(entry.command, cwd);
          for (const quote of entry.quotes) {
            assert.ok(
              output.includes(quote),
              `${name} did not print "${quote}"; it printed:\n${output}`,
            );
          }
        },
      });
    }
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
