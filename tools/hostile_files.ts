// The hostile-file corpus of issue 18: model files built to cost far more memory than their
// size, each with the error a load must now end in. tests/hostile_files_test.ts loads a
// scaled-down corpus under a memory ceiling; this script makes the full-size one and measures it.
//
//   deno run -A tools/hostile_files.ts [scale=1] [folder]   write the corpus, load each file in
//                                                           its own process, print a table
//   deno run -A tools/hostile_files.ts load <file>          load one file, print JSON: the
//                                                           error's code and message, peak RSS
import {
  Conv2D,
  decodeSafetensors,
  Dense,
  encodeSafetensors,
  SafetensorsError,
  Sequential,
  Tensor,
} from "../mod.ts";

/** One file of the corpus and what loading it must give. */
export interface HostileFile {
  /** File name, without the folder. */
  name: string;
  /** What the file does, as the issue tells it. */
  what: string;
  /** The file's bytes. */
  bytes: Uint8Array;
  /** The `SafetensorsError` code a load ends in, or `"valid"`. */
  code: string;
  /** A part of the message. */
  message: RegExp;
  /** At most how many tensors the header names (each costs about 1 KB of bookkeeping). */
  tensors: number;
}

function withHeader(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const head = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

// A model file whose architecture is `model`'s with its JSON passed through `edit`.
function edited(model: Sequential, edit: (json: string) => string): Uint8Array {
  const file = decodeSafetensors(model.toBytes());
  const tensors: Record<string, Tensor> = {};
  for (const [name, entry] of file.tensors) {
    tensors[name] = new Tensor(entry.data as Float32Array, entry.shape);
  }
  const metadata = { ...file.metadata };
  metadata["chainrule.model"] = edit(metadata["chainrule.model"]);
  return encodeSafetensors(tensors, metadata);
}

// A header with only an architecture (no tensors).
function architectureOnly(modelJson: string): Uint8Array {
  const metadata = { "chainrule.model": modelJson, "chainrule.version": "1" };
  return withHeader(JSON.stringify({ __metadata__: metadata }));
}

/**
 * The corpus. `scale` shrinks the large files (1 gives the issue's sizes, about 100 MB each;
 * the test uses 0.1); the small ones do not change.
 */
export function hostileFiles(scale = 1): HostileFile[] {
  const files: HostileFile[] = [];
  const conv = (out: number, kernel: number) =>
    edited(
      new Sequential([new Conv2D(1, 2, 3, { seed: 1 })]),
      (json) =>
        json.replace('"outChannels":2', `"outChannels":${out}`).replace(
          '"kernelSize":3',
          `"kernelSize":${kernel}`,
        ),
    );
  files.push({
    name: "conv2d_1300x1x1000x1000.safetensors",
    what: "a small file declaring a Conv2D with 1300×1×1000×1000 weights",
    bytes: conv(1300, 1000),
    code: "model_too_large",
    message:
      /declare more parameters than the file holds: refusing to allocate Conv2D's weights \[1300, 1, 1000, 1000\]/,
    tensors: 2,
  });
  files.push({
    name: "conv2d_250x1x1000x1000.safetensors",
    what: "the same with 250 output channels",
    bytes: conv(250, 1000),
    code: "model_too_large",
    message:
      /refusing to allocate Conv2D's weights \[250, 1, 1000, 1000\], biases \[250\] .*\(2000002000 bytes\)/,
    tensors: 2,
  });
  files.push({
    name: "dense_100000x100000.safetensors",
    what: "a small file declaring a Dense(100000, 100000)",
    bytes: edited(
      new Sequential([new Dense(2, 3, { seed: 1 })]),
      (json) =>
        json.replace('"inFeatures":2', '"inFeatures":100000').replace(
          '"outFeatures":3',
          '"outFeatures":100000',
        ),
    ),
    code: "model_too_large",
    message: /refusing to allocate Dense's weights \[100000, 100000\]/,
    tensors: 2,
  });
  const deep = Math.floor(49_999_990 * scale);
  files.push({
    name: "header_nested_deep.safetensors",
    what: `a header of arrays nested ${deep} deep`,
    bytes: withHeader(`{"__metadata__":${"[".repeat(deep)}${"]".repeat(deep)}}`),
    code: "header_invalid",
    message: /the header nests deeper than 3 levels/,
    tensors: 2,
  });
  const relus = Math.floor(2_500_000 * scale);
  files.push({
    name: "relu_layers.safetensors",
    what: `${relus} ReLU layers`,
    bytes: architectureOnly(
      `{"kind":"Sequential","config":{"layers":[${
        Array(relus).fill('{"kind":"ReLU","config":{}}').join(",")
      }]}}`,
    ),
    code: "model_too_large",
    message:
      /__metadata__ "chainrule.model" holds more than \d+ arrays and objects .*at most 10000 layers \(maxLayers\)/,
    tensors: 2,
  });
  // Past MAX_TENSORS at any scale.
  const empties = Math.max(Math.floor(1_600_000 * scale), 100_001);
  const entries = Array.from(
    { length: empties },
    (_, i) => `"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`,
  );
  files.push({
    name: "empty_tensors.safetensors",
    what: `${empties} empty tensors`,
    bytes: withHeader(`{${entries.join(",")}}`),
    code: "limit_exceeded",
    message: /more than MAX_TENSORS = 100000/,
    tensors: empties,
  });
  const dims = Math.floor(49_000_000 * scale);
  files.push({
    name: "long_shape.safetensors",
    what: `a tensor of rank ${dims}`,
    bytes: withHeader(
      `{"w":{"dtype":"F32","shape":[${"1,".repeat(dims)}1],"data_offsets":[0,4]}}`,
      new Uint8Array(4),
    ),
    code: "limit_exceeded",
    message: /more than MAX_HEADER_VALUES = 2000000 values/,
    tensors: 2,
  });
  // Past MAX_HEADER_VALUES (a key and a value each) at any scale, within MAX_HEADER_BYTES.
  const keys = Math.max(Math.floor(7_000_000 * scale), 1_000_001); // 7M: 91 MB of header
  files.push({
    name: "metadata_keys.safetensors",
    what: `${keys} metadata entries`,
    bytes: withHeader(
      `{"__metadata__":{${Array.from({ length: keys }, (_, i) => `"${i}":""`).join(",")}}}`,
    ),
    code: "limit_exceeded",
    message: /more than MAX_HEADER_VALUES/,
    tensors: 2,
  });
  const nesting = 20_000;
  files.push({
    name: "model_nested_20000.safetensors",
    what: `a model nested ${nesting} deep`,
    bytes: architectureOnly(
      `${'{"kind":"Sequential","config":{"layers":['.repeat(nesting)}${"]}}".repeat(nesting)}`,
    ),
    code: "model_too_large",
    message: /nests deeper than 104 levels .*layers nest at most 32 deep \(maxDepth\)/,
    tensors: 2,
  });
  const nan = new Sequential([new Dense(2, 2, { seed: 1 })]);
  nan.params()[0].value.data[1] = NaN;
  files.push({
    name: "nan_weights.safetensors",
    what: "a Dense whose weights hold NaN",
    bytes: nan.toBytes(),
    code: "non_finite",
    message: /tensor "0.Dense.weights" holds NaN at element 1 .*allowNonFinite/,
    tensors: 2,
  });
  const big = new Sequential([new Dense(1000, Math.max(1, Math.floor(10_000 * scale)))]);
  files.push({
    name: "valid_dense.safetensors",
    what: "a valid model of the same order of size",
    bytes: big.toBytes(),
    code: "valid",
    message: /Dense\(in=1000/,
    tensors: 2,
  });
  return files;
}

/** Peak resident memory of this process in bytes (Linux's VmHWM), or NaN elsewhere. */
export function peakRss(): number {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kib ? Number(kib) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** What loading one file gave, as `load` mode prints it. */
export interface LoadOutcome {
  /** `"valid"`, a `SafetensorsError` code, or the other error's name. */
  code: string;
  /** The error's message, or the model's summary. */
  message: string;
  /** Peak resident memory of the loading process, in bytes. */
  peak: number;
  /** Milliseconds the load took. */
  ms: number;
}

async function loadOne(path: string): Promise<LoadOutcome> {
  const start = performance.now();
  let code = "valid";
  let message = "";
  try {
    message = (await Sequential.load(path)).toString();
  } catch (error) {
    code = error instanceof SafetensorsError ? error.code : (error as Error).name;
    message = (error as Error).message;
  }
  return { code, message, peak: peakRss(), ms: performance.now() - start };
}

if (import.meta.main) {
  if (Deno.args[0] === "load") {
    console.log(JSON.stringify(await loadOne(Deno.args[1])));
  } else {
    const scale = Number(Deno.args[0] ?? 1);
    const folder = Deno.args[1] ?? await Deno.makeTempDir({ prefix: "hostile_" });
    const tiny = `${folder}/tiny.safetensors`;
    await Deno.writeFile(tiny, new Sequential([new Dense(2, 2, { seed: 1 })]).toBytes());
    const rows = [{ name: "tiny.safetensors", size: 0, code: "valid", expected: "valid" }];
    const written = hostileFiles(scale).map(({ name, bytes, code }) => {
      Deno.writeFileSync(`${folder}/${name}`, bytes);
      return { name, size: bytes.length, code: "", expected: code };
    });
    rows.push(...written);
    console.log(`| file | size (MB) | ends in | peak RSS (MB) | time (s) |`);
    console.log(`| --- | ---: | --- | ---: | ---: |`);
    for (const row of rows) {
      const child = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL(import.meta.url).pathname, "load", `${folder}/${row.name}`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(child.stdout).trim();
      let shown = `crashed (exit ${child.code}): ${
        new TextDecoder().decode(child.stderr).slice(-200)
      }`;
      let peak = "";
      let time = "";
      if (child.success) {
        const outcome: LoadOutcome = JSON.parse(out);
        shown = outcome.code === row.expected
          ? outcome.code
          : `${outcome.code} (expected ${row.expected})`;
        peak = (outcome.peak / 1e6).toFixed(0);
        time = (outcome.ms / 1000).toFixed(2);
      }
      console.log(
        `| ${row.name} | ${(row.size / 1e6).toFixed(3)} | ${shown} | ${peak} | ${time} |`,
      );
    }
    if (Deno.args[1] === undefined) await Deno.remove(folder, { recursive: true });
  }
}
