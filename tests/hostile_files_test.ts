// Issue 18's hostile files: each is loaded in its own process, must end in its error, and
// must stay under a memory ceiling derived from its size. Plus the limits' options, and the
// loaders' refusal of NaN and ±Infinity weights.
import assert from "node:assert/strict";
import {
  Dense,
  encodeSafetensors,
  loadModel,
  loadTorchStateDict,
  MAX_LAYERS,
  modelFromBytes,
  ReLU,
  SafetensorsError,
  Sequential,
  Tensor,
} from "../mod.ts";
import { scanJson } from "../core/json.ts";
import { hostileFiles, type LoadOutcome } from "../tools/hostile_files.ts";

const TOOL = new URL("../tools/hostile_files.ts", import.meta.url).pathname;
// The corpus at a twentieth of the issue's sizes (files of 1 to 10 MB; the ones that
// count tensors or values keep their counts past the limits); the small ones whole.
const SCALE = 0.05;
// A load may take this many bytes per byte of the file, beyond a process that loads a tiny
// model: the file read whole, its header decoded to a string, and the parser's working set.
const BYTES_PER_FILE_BYTE = 5;
// And this much per tensor the header names (at most MAX_TENSORS), however small the tensor.
const BYTES_PER_TENSOR = 1200;
const SLACK = 16e6;

async function loadInChild(path: string): Promise<LoadOutcome> {
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TOOL, "load", path], // -A: Deno reads /proc/self only with all permissions
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(child.stderr);
  assert.ok(child.success, `loading ${path} crashed: ${stderr.slice(-500)}`);
  return JSON.parse(new TextDecoder().decode(child.stdout));
}

function expectCode(code: string, pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof SafetensorsError, `not a SafetensorsError: ${error}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  };
}

Deno.test("hostile files end in their errors under a memory ceiling", async (t) => {
  const folder = await Deno.makeTempDir();
  try {
    const tiny = `${folder}/tiny.safetensors`;
    await Deno.writeFile(tiny, new Sequential([new Dense(2, 2, { seed: 1 })]).toBytes());
    const baseline = (await loadInChild(tiny)).peak;
    assert.ok(baseline > 0, "peak RSS is measured (Linux /proc/self/status)");
    for (const file of hostileFiles(SCALE)) {
      await t.step(`${file.name}: ${file.what}`, async () => {
        const path = `${folder}/${file.name}`;
        await Deno.writeFile(path, file.bytes);
        const outcome = await loadInChild(path);
        assert.equal(outcome.code, file.code, outcome.message);
        assert.match(outcome.message, file.message);
        const ceiling = baseline + BYTES_PER_FILE_BYTE * file.bytes.length +
          BYTES_PER_TENSOR * file.tensors + SLACK;
        assert.ok(
          outcome.peak <= ceiling,
          `peak ${outcome.peak} bytes for a ${file.bytes.length}-byte file, over ${ceiling}`,
        );
        await Deno.remove(path);
      });
    }
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("model files: limits on layers and nesting, with options to raise them", async (t) => {
  const layers = (count: number) => new Sequential(Array.from({ length: count }, () => new ReLU()));
  const nested = (depth: number) => {
    let model = new Sequential([new Dense(2, 2, { seed: 1 })]);
    for (let i = 1; i < depth; i++) model = new Sequential([model]);
    return model;
  };
  await t.step("maxLayers", () => {
    const bytes = layers(30).toBytes();
    assert.throws(
      () => modelFromBytes(bytes, { maxLayers: 20 }),
      expectCode(
        "model_too_large",
        /^modelFromBytes: the model holds more than 20 layers \(maxLayers\); pass \{ maxLayers \}/,
      ),
    );
    assert.equal(modelFromBytes(bytes, { maxLayers: 31 }).model.layers.length, 30);
    assert.equal(MAX_LAYERS, 10_000);
  });
  await t.step("maxDepth", () => {
    const bytes = nested(5).toBytes();
    assert.throws(
      () => modelFromBytes(bytes, { maxDepth: 1 }),
      expectCode(
        "model_too_large",
        /^modelFromBytes: __metadata__ "chainrule.model" nests deeper than 11 levels by character \d+ \(layers nest at most 1 deep \(maxDepth\)\); it is refused before being parsed$/,
      ),
    );
    assert.throws(
      () => modelFromBytes(bytes, { maxDepth: 5 }),
      expectCode("model_too_large", /nests layers more than 5 deep \(maxDepth\)/),
    );
    assert.equal(modelFromBytes(bytes, { maxDepth: 6 }).model.params().length, 2);
    assert.equal(modelFromBytes(nested(31).toBytes()).model.params().length, 2);
  });
  await t.step("the options are checked", () => {
    assert.throws(() => modelFromBytes(layers(1).toBytes(), { maxLayers: 0 }), {
      name: "RangeError",
      message: "modelFromBytes: maxLayers must be a whole number ≥ 1, got 0",
    });
    assert.throws(
      () => modelFromBytes(layers(1).toBytes(), { maxDepth: "3" as unknown as number }),
      {
        name: "RangeError",
        message: 'modelFromBytes: maxDepth must be a whole number ≥ 1, got "3"',
      },
    );
  });
});

Deno.test("loaders refuse NaN and ±Infinity weights unless allowNonFinite", async (t) => {
  const model = new Sequential([new Dense(2, 2, { seed: 1 }), new ReLU(), new Dense(2, 1)]);
  await t.step("NaN in a file", async () => {
    const broken = new Sequential([new Dense(2, 2, { seed: 1 }), new ReLU(), new Dense(2, 1)]);
    broken.params()[2].value.data[1] = NaN;
    broken.params()[2].value.data[0] = Infinity;
    const bytes = broken.toBytes();
    assert.throws(
      () => Sequential.fromBytes(bytes),
      expectCode(
        "non_finite",
        /^modelFromBytes: tensor "2.Dense.weights" holds Infinity at element 0 \(2 of its 2 values are not finite\); a model with such weights predicts NaN. Pass \{ allowNonFinite: true \} to load it anyway$/,
      ),
    );
    const path = `${await Deno.makeTempDir()}/nan.safetensors`;
    await Deno.writeFile(path, bytes);
    await assert.rejects(() => loadModel(path), expectCode("non_finite", /^loadModel\(/));
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (message: string) => warnings.push(message);
    try {
      const loaded = await loadModel(path, { allowNonFinite: true });
      assert.ok(Number.isNaN(loaded.model.params()[2].value.data[1]));
    } finally {
      console.warn = warn;
      await Deno.remove(path);
    }
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0],
      /loaded 1 tensors with values that are not finite \(allowNonFinite\)/,
    );
  });
  await t.step("float64 values that overflow a float32 layer", () => {
    const bytes = model.toBytes();
    const file = modelFromBytes(bytes);
    const tensors: Record<string, Tensor> = {};
    for (const [i, param] of file.model.params().entries()) {
      const wide = Tensor.zeros(param.value.shape, { dtype: "float64" });
      wide.data.set(param.value.data);
      if (i === 0) wide.data[3] = 1e300;
      tensors[["0.Dense.weights", "0.Dense.biases", "2.Dense.weights", "2.Dense.biases"][i]] = wide;
    }
    const metadata = { ...file.metadata };
    assert.throws(
      () => modelFromBytes(encodeSafetensors(tensors, metadata)),
      expectCode(
        "non_finite",
        /"0.Dense.weights" holds 1e\+300 at element 3, which overflows the layer's float32/,
      ),
    );
  });
  await t.step("loadTorchStateDict", () => {
    const target = new Sequential([new Dense(2, 1, { seed: 1 })]);
    const before = [...target.params()[0].value.data];
    const state = new Map([
      ["0.weight", Tensor.from([[3, NaN]])],
      ["0.bias", Tensor.from([0.5])],
    ]);
    assert.throws(
      () => loadTorchStateDict(target, state),
      expectCode("non_finite", /^loadTorchStateDict: tensor "0.weight" holds NaN at element 1/),
    );
    assert.deepEqual([...target.params()[0].value.data], before, "nothing changed");
    const warn = console.warn;
    console.warn = () => {};
    try {
      loadTorchStateDict(target, state, { allowNonFinite: true });
    } finally {
      console.warn = warn;
    }
    assert.ok(Number.isNaN(target.params()[0].value.data[1]));
  });
});

Deno.test("scanJson measures depth, containers, values and entries before a parse", () => {
  assert.deepEqual(scanJson('{"a":[1,{"b":"]}[,:"}],"c":2}'), {
    depth: 3,
    containers: 3,
    values: 6,
    entries: 2,
    stoppedAt: -1,
    limit: "",
  });
  const deep = "[".repeat(1000) + "]".repeat(1000);
  assert.equal(scanJson(deep, { maxDepth: 10 }).stoppedAt, 10);
  assert.equal(scanJson("[1,2,3,4]", { maxValues: 3 }).limit, "values");
  assert.equal(scanJson("[[1,2],[3,4]]", { maxEntries: 1 }).limit, "entries");
  assert.equal(scanJson("[[], {}, []]", { maxContainers: 3 }).limit, "containers");
  assert.equal(scanJson('"unterminated [[[').limit, "", "not JSON: scanned as far as it goes");
});
