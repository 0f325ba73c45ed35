import assert from "node:assert/strict";
import {
  Adam,
  decodeSafetensors,
  Dense,
  encodeSafetensors,
  type JsonObject,
  type Layer,
  loadModel,
  modelFromBytes,
  modelToBytes,
  type Optimizer,
  Param,
  paramNames,
  registerLayer,
  ReLU,
  SafetensorsError,
  type SafetensorsErrorCode,
  saveModel,
  Sequential,
  SGD,
  SoftmaxCrossEntropy,
  spiralData,
  Tensor,
  writeFileAtomic,
} from "../mod.ts";
import { withTempDir } from "./_temp_dir.ts";

type DType = "float32" | "float64";

function mlp(dtype: DType = "float32"): Sequential {
  return new Sequential([
    new Dense(2, 8, { seed: 1, dtype }),
    new ReLU(),
    new Dense(8, 3, { seed: 2, dtype, weightRegularizerL2: 1e-4 }),
  ]);
}

function paramBytes(model: Sequential): Uint8Array[] {
  return model.params().map((p) => new Uint8Array(p.value.data.buffer.slice(0)));
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

// Rewrites a saved model's tensors or metadata, keeping the rest.
function edit(
  bytes: Uint8Array,
  change: (tensors: Map<string, Tensor>, metadata: Record<string, string>) => void,
): Uint8Array {
  const file = decodeSafetensors(bytes);
  const tensors = new Map(
    [...file.tensors].map(([name, e]) => [name, new Tensor(e.data as Float32Array, e.shape)]),
  );
  change(tensors, file.metadata);
  return encodeSafetensors(tensors, file.metadata);
}

function expectCode(bytes: Uint8Array, code: SafetensorsErrorCode, ...fragments: string[]) {
  assert.throws(() => modelFromBytes(bytes), (error: unknown) => {
    assert.ok(error instanceof SafetensorsError, String(error));
    assert.equal(error.code, code, error.message);
    for (const fragment of fragments) assert.ok(error.message.includes(fragment), error.message);
    return true;
  });
}

Deno.test("save → load round-trips bit for bit", async (t) => {
  for (const dtype of ["float32", "float64"] as const) {
    await t.step(`${dtype}, in memory and through a file`, async () => {
      const model = mlp(dtype);
      const x = Tensor.from([[0.3, -1.2], [2, 0.5]], { dtype });
      const fromBytes = Sequential.fromBytes(model.toBytes());
      await withTempDir(async (dir) => {
        await model.save(`${dir}/m.safetensors`);
        const fromFile = await Sequential.load(`${dir}/m.safetensors`);
        for (const copy of [fromBytes, fromFile]) {
          assert.ok(copy instanceof Sequential);
          assert.equal(copy.toString(), model.toString());
          assert.deepEqual(copy.config(), model.config());
          assert.equal(copy.dtype, dtype);
          assert.deepEqual(paramBytes(copy), paramBytes(model));
          assert.deepEqual(copy.predict(x).data, model.predict(x).data);
        }
      });
    });
  }
});

Deno.test("a saved model names its tensors <index>.<kind>.<param> and its architecture", () => {
  const model = mlp();
  const file = decodeSafetensors(model.toBytes({ metadata: { author: "test" } }));
  assert.deepEqual([...file.tensors.keys()].sort(), [
    "0.Dense.biases",
    "0.Dense.weights",
    "2.Dense.biases",
    "2.Dense.weights",
  ]);
  assert.deepEqual(file.tensors.get("0.Dense.weights")!.shape, [2, 8]);
  assert.equal(file.tensors.get("2.Dense.weights")!.dtype, "F32");
  assert.deepEqual(JSON.parse(file.metadata["chainrule.model"]), {
    kind: "Sequential",
    config: model.config(),
  });
  assert.equal(file.metadata["chainrule.version"], "1");
  assert.equal(file.metadata.author, "test");
  assert.deepEqual(modelFromBytes(model.toBytes({ metadata: { author: "test" } })).metadata, {
    ...file.metadata,
  });
  // Deterministic: the same model gives the same bytes.
  assert.deepEqual(model.toBytes(), mlp().toBytes());
});

Deno.test("nested Sequential layers are named by their path and round-trip", () => {
  const inner = new Sequential([new Dense(4, 4, { seed: 3 }), new ReLU()]);
  const model = new Sequential([new Dense(2, 4, { seed: 4 }), inner, new Dense(4, 2, { seed: 5 })]);
  assert.deepEqual(paramNames(model), [
    "0.Dense.weights",
    "0.Dense.biases",
    "1.Sequential.0.Dense.weights",
    "1.Sequential.0.Dense.biases",
    "2.Dense.weights",
    "2.Dense.biases",
  ]);
  const copy = Sequential.fromBytes(model.toBytes());
  assert.equal(copy.toString(), model.toString());
  assert.deepEqual(paramBytes(copy), paramBytes(model));
});

// A third-party layer: multiplies by a learned per-feature scale.
class Scale implements Layer {
  readonly scale: Param;
  constructor(readonly features: number, readonly kind = "TestScale") {
    this.scale = new Param("scale", Tensor.filled([features], 1));
  }
  static fromConfig(config: JsonObject): Scale {
    return new Scale(config.features as number);
  }
  forward(inputs: Tensor): Tensor {
    const s = this.scale.value.data;
    return new Tensor(inputs.data.map((v, i) => v * s[i % this.features]), inputs.shape);
  }
  backward(dvalues: Tensor): Tensor {
    return dvalues;
  }
  params(): Param[] {
    return [this.scale];
  }
  config(): JsonObject {
    return { features: this.features };
  }
  toString(): string {
    return `TestScale(${this.features})`;
  }
}

Deno.test("a registered third-party layer loads like a built-in", () => {
  registerLayer("TestScale", Scale.fromConfig);
  const scale = new Scale(3);
  scale.scale.value.data.set([0.5, -2, 3.25]);
  const model = new Sequential([new Dense(2, 3, { seed: 6 }), scale]);
  assert.deepEqual(paramNames(model).at(-1), "1.TestScale.scale");
  const copy = Sequential.fromBytes(model.toBytes());
  assert.ok(copy.layers[1] instanceof Scale);
  assert.deepEqual([...(copy.layers[1] as Scale).scale.value.data], [0.5, -2, 3.25]);
  assert.deepEqual(copy.predict([[1, 2]]).data, model.predict([[1, 2]]).data);
});

Deno.test("an unknown layer kind is a clear error naming it and how to register it", () => {
  const bytes = new Sequential([new Scale(2, "NeverRegistered")]).toBytes();
  assert.throws(() => Sequential.fromBytes(bytes), {
    name: "RangeError",
    message:
      /^modelFromBytes: cannot rebuild the model stored in the file: .*unknown layer kind "NeverRegistered".*registerLayer\("NeverRegistered"/,
  });
  // Names that would find something on Object.prototype are unknown kinds too: loading
  // only ever calls registered factories.
  for (const kind of ["__proto__", "constructor", "toString"]) {
    const evil = edit(bytes, (_, metadata) => {
      metadata["chainrule.model"] = JSON.stringify({
        kind: "Sequential",
        config: { layers: [{ kind, config: {} }] },
      });
    });
    assert.throws(() => modelFromBytes(evil), {
      name: "RangeError",
      message: /unknown layer kind/,
    });
  }
});

Deno.test("a file that does not hold the model it describes is a SafetensorsError", async (t) => {
  const bytes = mlp().toBytes();
  await t.step("a missing tensor", () => {
    const missing = edit(bytes, (tensors) => tensors.delete("2.Dense.biases"));
    expectCode(missing, "missing_tensor", '"2.Dense.biases"', "[3]");
  });
  await t.step("an extra tensor", () => {
    const extra = edit(bytes, (tensors) => tensors.set("9.Dense.weights", Tensor.from([1])));
    expectCode(extra, "unexpected_tensor", "9.Dense.weights");
  });
  await t.step("a tensor of the wrong shape", () => {
    const wrong = edit(bytes, (tensors) => tensors.set("0.Dense.weights", Tensor.zeros([8, 2])));
    expectCode(wrong, "tensor_shape", '"0.Dense.weights" has shape [8, 2]', "needs [2, 8]");
  });
  await t.step("an integer tensor", () => {
    const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
    header["0.Dense.biases"].dtype = "I32"; // same byte length, so the file stays valid
    const text = new TextEncoder().encode(JSON.stringify(header));
    const data = bytes.subarray(8 + length);
    const out = new Uint8Array(8 + text.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
    out.set(text, 8);
    out.set(data, 8 + text.length);
    assert.equal(decodeSafetensors(out).tensors.get("0.Dense.biases")!.dtype, "I32");
    expectCode(out, "tensor_dtype", '"0.Dense.biases" is I32');
  });
  await t.step("weights without an architecture", () => {
    const weightsOnly = encodeSafetensors({ "0.weight": Tensor.from([[1]]) });
    expectCode(weightsOnly, "model_metadata", '"chainrule.model"', "loadTorchStateDict");
  });
  await t.step("an architecture that is not JSON, or from a newer layout", () => {
    const broken = edit(bytes, (_, m) => void (m["chainrule.model"] = "{"));
    expectCode(broken, "model_metadata", "not JSON");
    const shapeless = edit(bytes, (_, m) => void (m["chainrule.model"] = '{"kind":3}'));
    expectCode(shapeless, "model_metadata", '{"kind": string, "config": {…}}');
    const newer = edit(bytes, (_, m) => void (m["chainrule.version"] = "2"));
    expectCode(newer, "model_metadata", 'version "2"');
    const dense = edit(bytes, (_, m) => {
      m["chainrule.model"] = JSON.stringify({ kind: "Dense", config: {} });
    });
    expectCode(dense, "model_metadata", 'holds a "Dense", not a Sequential');
  });
  await t.step("a config a layer rejects", () => {
    const bad = edit(bytes, (_, m) => {
      m["chainrule.model"] = JSON.stringify({
        kind: "Sequential",
        config: { layers: [{ kind: "Dense", config: { inFeatures: -2, outFeatures: 3 } }] },
      });
    });
    assert.throws(() => modelFromBytes(bad), {
      name: "RangeError",
      message: /^modelFromBytes: cannot rebuild the model.*new Dense: inFeatures must be/,
    });
  });
});

Deno.test("saving rejects what it cannot save, naming it", () => {
  const model = mlp();
  assert.throws(() => modelToBytes(model, { metadata: { "chainrule.model": "x" } }), {
    name: "TypeError",
    message: /modelToBytes: metadata key "chainrule.model" is reserved/,
  });
  const stateless: Optimizer = {
    kind: "Plain",
    step() {},
    config: () => ({}),
    toString: () => "Plain()",
  };
  assert.throws(() => modelToBytes(model, { optimizer: stateless }), {
    name: "TypeError",
    message: /modelToBytes: optimizer Plain\(\) has no getState\(\)/,
  });
  class Twice extends Scale {
    readonly other = new Param("scale", Tensor.from([1]));
    override params(): Param[] {
      return [this.scale, this.other];
    }
  }
  assert.throws(() => paramNames(new Sequential([new Twice(1)])), {
    name: "TypeError",
    message: /two params are named "0.TestScale.scale"/,
  });
});

// Trains `epochs` epochs of mini-batches, shuffled per epoch, from `initialEpoch`.
function train(model: Sequential, optimizer: Optimizer, epochs: number, initialEpoch = 0) {
  const { x, y } = spiralData(40, 3, { seed: 11 });
  return model.fit(x, y, {
    loss: new SoftmaxCrossEntropy(),
    optimizer,
    epochs,
    initialEpoch,
    batchSize: 32,
    seed: 5,
  });
}

Deno.test("train 10, save with the optimizer, load, train 10 more = train 20 at once", async (t) => {
  for (const dtype of ["float32", "float64"] as const) {
    await t.step(dtype, async () => {
      const once = mlp(dtype);
      const onceHistory = train(once, new Adam({ learningRate: 0.02, decay: 1e-3 }), 20);

      const first = mlp(dtype);
      const adam = new Adam({ learningRate: 0.02, decay: 1e-3 });
      train(first, adam, 10);
      await withTempDir(async (dir) => {
        await saveModel(first, `${dir}/ckpt.safetensors`, { optimizer: adam });
        const { model, optimizer } = await loadModel(`${dir}/ckpt.safetensors`);
        assert.ok(optimizer instanceof Adam);
        assert.equal(optimizer.iterations, adam.iterations);
        const resumed = train(model, optimizer, 20, 10);
        assert.deepEqual(resumed.loss, onceHistory.loss.slice(10));
        assert.deepEqual(paramBytes(model), paramBytes(once));
      });

      // Without the optimizer's state the run diverges, so the state is what made it exact.
      const fresh = Sequential.fromBytes(first.toBytes());
      train(fresh, new Adam({ learningRate: 0.02, decay: 1e-3 }), 20, 10);
      assert.notDeepEqual(paramBytes(fresh), paramBytes(once));
    });
  }
});

Deno.test("an optimizer without state (SGD) is saved and restored by kind and config", () => {
  const model = mlp();
  const { optimizer } = modelFromBytes(
    model.toBytes({ optimizer: new SGD({ learningRate: 0.3 }) }),
  );
  assert.ok(optimizer instanceof SGD);
  assert.equal(optimizer.learningRate, 0.3);
  assert.equal(modelFromBytes(model.toBytes()).optimizer, undefined);
});

Deno.test("saving is atomic: a failed write leaves the previous file intact", async (t) => {
  await withTempDir(async (dir) => {
    const path = `${dir}/model.safetensors`;
    const old = mlp();
    await old.save(path);
    const before = await Deno.readFile(path);

    await t.step("a failure injected mid-write", async () => {
      const newer = new Sequential([new Dense(2, 64, { seed: 9 }), new ReLU(), new Dense(64, 3)]);
      const bytes = newer.toBytes();
      function* failing() {
        yield bytes.subarray(0, 100); // the length, part of the header: on disk in the temp file
        yield bytes.subarray(100, 700);
        throw new Error("injected failure");
      }
      await assert.rejects(() => writeFileAtomic(path, failing()), (error: Error) => {
        assert.match(error.message, /writeFileAtomic: could not write ".*model.safetensors"/);
        assert.equal((error.cause as Error).message, "injected failure");
        return true;
      });
      assert.deepEqual(await Deno.readFile(path), before);
      assert.deepEqual(await listDir(dir), ["model.safetensors"]); // no temp file left
      assert.deepEqual(paramBytes(await Sequential.load(path)), paramBytes(old));
    });

    await t.step("a failure at the rename (the target is a directory)", async () => {
      await Deno.mkdir(`${dir}/taken`);
      await assert.rejects(() => old.save(`${dir}/taken`), /could not write/);
      assert.deepEqual(await listDir(dir), ["model.safetensors", "taken"]);
      assert.deepEqual(await listDir(`${dir}/taken`), []);
    });

    await t.step("a failure before writing (an optimizer that cannot save)", async () => {
      const plain = { kind: "P", step() {}, config: () => ({}), toString: () => "P()" };
      await assert.rejects(() => mlp().save(path, { optimizer: plain }), TypeError);
      assert.deepEqual(await Deno.readFile(path), before);
    });

    await t.step("a successful save replaces the file whole", async () => {
      const newer = new Sequential([new Dense(2, 5, { seed: 12 })]);
      await newer.save(path);
      assert.deepEqual(await Deno.readFile(path), newer.toBytes());
      assert.deepEqual(await listDir(dir), ["model.safetensors", "taken"]);
    });
  });
});

Deno.test("loading a file that is not there names the path", async () => {
  await assert.rejects(() => Sequential.load("/nonexistent/model.safetensors"), {
    message: /^loadModel\("\/nonexistent\/model.safetensors"\): could not read the file/,
  });
});

// Sets a file's modification time `seconds` into the past.
async function age(path: string, seconds: number): Promise<void> {
  const then = new Date(Date.now() - seconds * 1000);
  await Deno.utime(path, then, then);
}

Deno.test("a killed save leaves nothing a later save or load does not clean", async (t) => {
  const writer = new URL("../io/write_file_atomic.ts", import.meta.url).href;
  // A save that writes its first chunk, then hangs (a sync generator spinning) until killed.
  const script = `import { writeFileAtomic } from "${writer}";
    function* chunks() { yield new Uint8Array(1 << 20); for (;;) {} }
    await writeFileAtomic(Deno.args[0], chunks());`;
  for (const signal of ["SIGKILL", "SIGTERM", "SIGINT"] as const) {
    await t.step(`${signal} mid-save, then a save and a load in that folder`, async () => {
      await withTempDir(async (dir) => {
        const path = `${dir}/model.safetensors`;
        await mlp().save(path);
        const child = new Deno.Command(Deno.execPath(), {
          args: ["eval", "--ext=ts", script, path],
          stdout: "null",
          stderr: "null",
        }).spawn();
        let temps: string[] = [];
        for (let i = 0; i < 3000 && temps.length === 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          temps = (await listDir(dir)).filter((name) => name.endsWith(".tmp"));
        }
        child.kill(signal);
        await child.status;
        assert.equal(temps.length, 1, "the child started writing");
        const name = (await listDir(dir)).find((entry) => entry.endsWith(".tmp"))!;
        assert.match(
          name,
          new RegExp(`^model\\.safetensors\\.chainrule-${child.pid}-[0-9a-f]{12}\\.tmp$`),
        );
        // Under a minute old: a save elsewhere in the folder leaves it (it may be a live save).
        await mlp().save(`${dir}/other.safetensors`);
        assert.ok((await listDir(dir)).includes(name));
        // Over a minute old, its process gone: the next save removes it…
        await age(`${dir}/${name}`, 61);
        await mlp().save(`${dir}/other.safetensors`);
        assert.deepEqual(await listDir(dir), ["model.safetensors", "other.safetensors"]);
        // …and so does the next load.
        await Deno.writeFile(`${dir}/${name}`, new Uint8Array(8));
        await age(`${dir}/${name}`, 61);
        await Sequential.load(path);
        assert.deepEqual(await listDir(dir), ["model.safetensors", "other.safetensors"]);
      });
    });
  }
  await t.step("what is cleaned and what is not", async () => {
    await withTempDir(async (dir) => {
      const live = new Deno.Command("sleep", { args: ["30"] }).spawn();
      try {
        const names = {
          stale: "a.safetensors.chainrule-99999999-0123456789ab.tmp",
          legacy: "b.safetensors.0123456789ab.tmp", // what saves before this naming left
          fresh: "c.safetensors.chainrule-99999999-0123456789ab.tmp",
          live: `d.safetensors.chainrule-${live.pid}-0123456789ab.tmp`,
          unrelated: "notes.0123456789ab.tmp",
          near: "e.safetensors.chainrule-1-0123456789a.tmp",
        };
        for (const name of Object.values(names)) {
          await Deno.writeFile(`${dir}/${name}`, new Uint8Array(1));
        }
        for (const key of ["stale", "legacy", "live", "unrelated", "near"] as const) {
          await age(`${dir}/${names[key]}`, 120);
        }
        await mlp().save(`${dir}/model.safetensors`);
        // A live writer is seen where /proc can be read (Deno allows it only with -A); where it
        // cannot, the age alone decides.
        let seesProcesses = true;
        try {
          await Deno.stat(`/proc/${Deno.pid}`);
        } catch {
          seesProcesses = false;
        }
        const kept = [names.fresh, "model.safetensors", names.near, names.unrelated];
        if (seesProcesses) kept.push(names.live);
        assert.deepEqual(await listDir(dir), kept.sort());
      } finally {
        live.kill("SIGKILL");
        await live.status;
      }
    });
  });
});
