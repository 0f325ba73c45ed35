// Fails when the import graph has a cycle or an import that points up the layers, naming
// the files: the layering in docs/architecture.md, checked on every `deno task ok`.
//
//   deno run --allow-read --allow-run tools/check_imports.ts
//
// It reads `deno info --json` for every entry point (the package's exports, the examples,
// the benchmarks, the tools, the tests and the playground), type-only imports included.

/** The layers, bottom first; a file's layer is that of its top folder (or root file). */
export const LAYERS: readonly (readonly string[])[] = [
  ["core"],
  ["backends"],
  ["initializers", "layers", "activations", "losses", "optimizers", "schedules", "data"],
  ["catalog"],
  ["training"],
  ["io", "plot"],
  ["models"],
  ["mod.ts", "plugin.ts", "blas.ts"],
  ["examples", "bench", "tools", "tests", "playground"],
];

/** Imports by file: repo-relative path → the repo-relative paths it imports. */
export type ImportGraph = Map<string, Set<string>>;

/** The layer index of a repo-relative path, or undefined for a path outside the layers. */
export function layerOf(path: string): number | undefined {
  const top = path.split("/")[0];
  const index = LAYERS.findIndex((names) => names.includes(top));
  return index < 0 ? undefined : index;
}

/**
 * Every import cycle of `graph`, each as a closed path of files (`[a, b, a]`), one per
 * strongly connected component (Tarjan's algorithm), sorted for stable output.
 */
export function findCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || graph.get(node)?.has(node)) components.push(component);
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return components.map((component) => cycleThrough(graph, new Set(component)));
}

// One closed path inside a strongly connected component, from its first file in sort order.
function cycleThrough(graph: ImportGraph, members: Set<string>): string[] {
  const start = [...members].sort()[0];
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of [...(graph.get(node) ?? [])].sort()) {
      if (!members.has(next)) continue;
      if (next === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0])!);
        return [...path, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}

/** Every import of `graph` from a lower layer to a higher one, as `from → to` lines. */
export function upwardImports(graph: ImportGraph): string[] {
  const found: string[] = [];
  for (const [from, targets] of graph) {
    const fromLayer = layerOf(from);
    for (const to of targets) {
      const toLayer = layerOf(to);
      if (fromLayer === undefined || toLayer === undefined) {
        found.push(`${from} → ${to}: outside the layers (add its folder to LAYERS)`);
      } else if (toLayer > fromLayer) {
        found.push(
          `${from} (${LAYERS[fromLayer].join(", ")}) → ${to} (${LAYERS[toLayer].join(", ")})`,
        );
      }
    }
  }
  return found.sort();
}

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

// The local part of `deno info --json entry`'s graph, added to `graph`.
async function addEntry(root: string, entry: string, graph: ImportGraph): Promise<void> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: root,
  }).output();
  if (code !== 0) throw new Error(`deno info ${entry} failed: ${new TextDecoder().decode(stderr)}`);
  const info = JSON.parse(new TextDecoder().decode(stdout)) as { modules: InfoModule[] };
  const prefix = new URL(`file://${root}/`).href;
  const local = (specifier: string) =>
    specifier.startsWith(prefix) ? specifier.slice(prefix.length) : undefined;
  for (const module of info.modules) {
    const from = local(module.specifier);
    if (!from) continue;
    const targets = graph.get(from) ?? new Set<string>();
    graph.set(from, targets);
    for (const dependency of module.dependencies ?? []) {
      for (const resolved of [dependency.code, dependency.type]) {
        const to = resolved && local(resolved.specifier);
        if (to) targets.add(to);
      }
    }
  }
}

// The package's exports, then every .ts file in the folders that use the library.
async function entryPoints(root: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${root}/deno.json`));
  const entries: string[] = Object.values(config.exports as Record<string, string>);
  const walk = async (folder: string): Promise<void> => {
    for await (const file of Deno.readDir(`${root}/${folder}`)) {
      if (file.isDirectory) await walk(`${folder}/${file.name}`);
      else if (file.isFile && file.name.endsWith(".ts")) entries.push(`./${folder}/${file.name}`);
    }
  };
  for (const folder of ["examples", "bench", "tools", "tests", "playground"]) {
    try {
      await walk(folder);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return entries.sort();
}

async function main(): Promise<number> {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const entries = await entryPoints(root);
  const graph: ImportGraph = new Map();
  // Sequential: `deno info` runs are cheap, and the machine has two cores.
  for (const entry of entries) await addEntry(root, entry, graph);
  const cycles = findCycles(graph);
  const upward = upwardImports(graph);
  for (const cycle of cycles) console.error(`import cycle: ${cycle.join(" → ")}`);
  for (const line of upward) console.error(`import points up: ${line}`);
  if (cycles.length > 0 || upward.length > 0) {
    console.error(
      `check_imports: ${cycles.length} cycle(s), ${upward.length} upward import(s); ` +
        "see docs/architecture.md for the layers",
    );
    return 1;
  }
  const edges = [...graph.values()].reduce((sum, targets) => sum + targets.size, 0);
  console.log(
    `check_imports: ${graph.size} files, ${edges} imports from ${entries.length} entry points: ` +
      "no cycles, every import points down",
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
