import assert from "node:assert/strict";
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  SafetensorsError,
  type SafetensorsErrorCode,
  Tensor,
  writeSafetensors,
} from "../mod.ts";

const encoder = new TextEncoder();

// A file built byte by byte: the 8-byte length (the header's own unless given), the header,
// then the data.
function fileOf(header: string | Uint8Array, data: ArrayLike<number> = [], length?: bigint) {
  const head = typeof header === "string" ? encoder.encode(header) : header;
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function expectError(bytes: Uint8Array, code: SafetensorsErrorCode, ...fragments: string[]) {
  assert.throws(
    () => decodeSafetensors(bytes),
    (error: unknown) => {
      assert.ok(error instanceof SafetensorsError, `expected a SafetensorsError, got ${error}`);
      assert.equal(error.code, code, error.message);
      assert.ok(error.message.startsWith("decodeSafetensors: "), error.message);
      for (const fragment of fragments) {
        assert.ok(error.message.includes(fragment), `"${fragment}" not in: ${error.message}`);
      }
      return true;
    },
  );
}

const entry = (dtype: string, shape: unknown, offsets: unknown) =>
  JSON.stringify({ dtype, shape, data_offsets: offsets });

Deno.test("encodeSafetensors writes the reference layout byte for byte", async (t) => {
  await t.step("one F32 tensor whose header is already a multiple of 8 (64 bytes)", () => {
    const bytes = encodeSafetensors({ "attn.0": Tensor.from([[[0, 1, 2], [3, 4, 5]]]) });
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    assert.equal(header.length, 64);
    assert.deepEqual(bytes, fileOf(header, f32Bytes([0, 1, 2, 3, 4, 5])));
  });

  await t.step("a 65-byte header is padded with 7 spaces to 72", () => {
    const bytes = encodeSafetensors({ attn0: Tensor.from([[[[0, 1, 2], [3, 4, 5]]]]) });
    const header = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    assert.equal(header.length, 65);
    assert.deepEqual(bytes, fileOf(header + " ".repeat(7), f32Bytes([0, 1, 2, 3, 4, 5])));
  });

  await t.step("no tensors: {} and 6 spaces; metadata comes first", () => {
    assert.deepEqual(
      [...encodeSafetensors({})],
      [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32],
    );
    const bytes = encodeSafetensors({}, { framework: "pt" });
    assert.deepEqual(bytes, fileOf('{"__metadata__":{"framework":"pt"}}     '));
    assert.equal(bytes[0], 40);
  });

  await t.step("float64 is F64, little-endian", () => {
    const bytes = encodeSafetensors({ x: Tensor.from([1.5], { dtype: "float64" }) });
    const header = '{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}';
    const data = new Uint8Array(new Float64Array([1.5]).buffer);
    assert.deepEqual(bytes, fileOf(header + " ".repeat(8 - header.length % 8), data));
  });
});

Deno.test("encodeSafetensors is deterministic: tensors by name, metadata keys sorted", () => {
  const a = Tensor.from([1, 2]);
  const b = Tensor.from([[3]], { dtype: "float64" });
  const first = encodeSafetensors(new Map([["b", b], ["10", a], ["2", a]]), { z: "1", a: "2" });
  const second = encodeSafetensors(new Map([["2", a], ["b", b], ["10", a]]), { a: "2", z: "1" });
  assert.deepEqual(first, second);
  const length = Number(new DataView(first.buffer).getBigUint64(0, true));
  assert.equal(length % 8, 0);
  const header = new TextDecoder().decode(first.subarray(8, 8 + length));
  assert.match(header, /^\{"__metadata__":\{"a":"2","z":"1"\},"10":.*,"2":.*,"b":/);
  assert.deepEqual([...decodeSafetensors(first).tensors.keys()], ["10", "2", "b"]);
});

Deno.test("encodeSafetensors rejects what it cannot write", () => {
  assert.throws(() => encodeSafetensors({ x: [1, 2] as unknown as Tensor }), {
    name: "TypeError",
    message: /encodeSafetensors: tensor "x" must be a Tensor, got an array/,
  });
  assert.throws(() => encodeSafetensors({ __metadata__: Tensor.from([1]) }), {
    name: "TypeError",
    message: /"__metadata__" is reserved/,
  });
  assert.throws(() => encodeSafetensors({}, { n: 1 as unknown as string }), {
    name: "TypeError",
    message: /metadata "n" must be a string, got number 1/,
  });
});

Deno.test("decodeSafetensors round-trips float32 and float64 bit for bit", () => {
  const specials = [0, -0, 1.5, -2.25, NaN, Infinity, -Infinity, 1e-40, 3.4e38, 1 / 3];
  const f32 = new Tensor(new Float32Array(specials), [2, 5]);
  const f64 = new Tensor(new Float64Array([...specials, 5e-324, Math.PI]), [12]);
  const scalar = new Tensor(new Float64Array([7]), []);
  const empty = Tensor.zeros([0, 3]);
  const file = decodeSafetensors(encodeSafetensors({ f32, f64, scalar, empty }));
  for (const [name, tensor] of Object.entries({ f32, f64, scalar, empty })) {
    const got = file.tensors.get(name)!;
    assert.deepEqual(got.shape, tensor.shape);
    assert.equal(got.dtype, tensor.dtype === "float32" ? "F32" : "F64");
    assert.deepEqual(
      new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength),
      new Uint8Array(tensor.data.buffer),
      name,
    );
  }
});

Deno.test("decodeSafetensors reads F16 and BF16 into float32, exactly", () => {
  const halves = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x8000, 0x3555, 0x7e00];
  const brains = [0x3f80, 0xc0a0, 0x4049, 0x0000];
  const data = new Uint8Array(new Uint16Array([...halves, ...brains]).buffer);
  const header = `{"h":${entry("F16", [10], [0, 20])},"b":${entry("BF16", [2, 2], [20, 28])}}`;
  const file = decodeSafetensors(fileOf(header, data));
  const h = file.tensors.get("h")!;
  assert.ok(h.data instanceof Float32Array);
  assert.deepEqual([...h.data].slice(0, 9), [
    1,
    -2,
    65504,
    2 ** -24,
    1023 * 2 ** -24,
    Infinity,
    -Infinity,
    -0,
    0.333251953125,
  ]);
  assert.ok(Number.isNaN(h.data[9]));
  const b = file.tensors.get("b")!;
  assert.ok(b.data instanceof Float32Array);
  assert.deepEqual([...b.data], [1, -5, 3.140625, 0]);
});

Deno.test("decodeSafetensors reads integer and bool tensors into integer arrays", () => {
  const parts: [string, string, ArrayBufferView, unknown[]][] = [
    ["a", "I8", new Int8Array([-128, 127]), [-128, 127]],
    ["b", "U8", new Uint8Array([0, 255]), [0, 255]],
    ["c", "I16", new Int16Array([-32768, 7]), [-32768, 7]],
    ["d", "U16", new Uint16Array([65535, 1]), [65535, 1]],
    ["e", "I32", new Int32Array([-5, 2 ** 31 - 1]), [-5, 2 ** 31 - 1]],
    ["f", "U32", new Uint32Array([2 ** 32 - 1, 0]), [2 ** 32 - 1, 0]],
    ["g", "I64", new BigInt64Array([-(2n ** 63n), 3n]), [-(2n ** 63n), 3n]],
    ["h", "U64", new BigUint64Array([2n ** 64n - 1n, 0n]), [2n ** 64n - 1n, 0n]],
    ["i", "BOOL", new Uint8Array([1, 0]), [1, 0]],
  ];
  let offset = 0;
  const fields: string[] = [];
  const chunks: number[] = [];
  for (const [name, dtype, array] of parts) {
    const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    fields.push(`"${name}":${entry(dtype, [2], [offset, offset + bytes.length])}`);
    chunks.push(...bytes);
    offset += bytes.length;
  }
  const file = decodeSafetensors(fileOf(`{${fields.join(",")}}`, chunks));
  for (const [name, dtype, array, values] of parts) {
    const got = file.tensors.get(name)!;
    assert.equal(got.dtype, dtype);
    assert.equal(got.data.constructor, array.constructor, name);
    assert.deepEqual([...got.data], values, name);
  }
});

Deno.test("decodeSafetensors accepts what the format allows", async (t) => {
  await t.step("a header padded with spaces, tensors listed out of offset order", () => {
    const header = `{"second":${entry("F32", [1], [4, 8])},"first":${entry("F32", [1], [0, 4])}}`;
    const file = decodeSafetensors(fileOf(header + "   ", f32Bytes([1, 2])));
    assert.deepEqual([...file.tensors.keys()], ["first", "second"]);
    assert.deepEqual([...file.tensors.get("second")!.data], [2]);
  });
  await t.step("zero-size tensors anywhere, and a null __metadata__", () => {
    const header = `{"__metadata__":null,"z":${entry("F64", [0, 4], [4, 4])},"a":${
      entry("F32", [], [0, 4])
    }}`;
    const file = decodeSafetensors(fileOf(header, f32Bytes([9])));
    assert.deepEqual(file.metadata, {});
    assert.deepEqual(file.tensors.get("z")!.shape, [0, 4]);
    assert.deepEqual([...file.tensors.get("a")!.data], [9]);
  });
  await t.step("a view into a larger buffer", () => {
    const bytes = encodeSafetensors({ w: Tensor.from([1, 2]) });
    const bigger = new Uint8Array(bytes.length + 3);
    bigger.set(bytes, 3);
    const file = decodeSafetensors(bigger.subarray(3));
    assert.deepEqual([...file.tensors.get("w")!.data], [1, 2]);
  });
});

Deno.test("decodeSafetensors rejects each malformed file with its own code", async (t) => {
  const one = `{"w":${entry("F32", [2], [0, 8])}}`;
  const data = f32Bytes([1, 2]);
  assert.deepEqual([...decodeSafetensors(fileOf(one, data)).tensors.get("w")!.data], [1, 2]);

  await t.step("header shorter than 8 bytes", () => {
    expectError(new Uint8Array(0), "header_too_small", "0 bytes");
    expectError(new Uint8Array(7), "header_too_small", "7 bytes");
  });
  await t.step("header length over 100,000,000", () => {
    expectError(fileOf("{}", [], 100_000_001n), "header_too_large", "100000001", "100000000");
    expectError(fileOf("{}", [], 2n ** 64n - 1n), "header_too_large", "18446744073709551615");
  });
  await t.step("header length past the end of the file", () => {
    expectError(
      fileOf(one, data, 100n),
      "header_out_of_bounds",
      "100",
      `${one.length + 8} bytes follow`,
    );
    expectError(fileOf("", [], 1n), "header_out_of_bounds", "header length 1");
  });
  await t.step("header that is not UTF-8", () => {
    expectError(fileOf(new Uint8Array([0x7b, 0xff, 0x7d])), "header_not_utf8", "3-byte");
    expectError(fileOf(new Uint8Array([0x7b, 0xc3, 0x7d])), "header_not_utf8");
  });
  await t.step("header that is not JSON", () => {
    expectError(fileOf('{"w":'), "header_not_json");
    expectError(fileOf("{} x"), "header_not_json");
    expectError(fileOf(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])), "header_not_json");
  });
  await t.step("header that is not a JSON object", () => {
    expectError(fileOf("[]"), "header_invalid", "got an array");
    expectError(fileOf("42"), "header_invalid", "got number 42");
    expectError(fileOf("null"), "header_invalid", "got null");
  });
  await t.step("entries of the wrong structure", () => {
    expectError(fileOf('{"w":[1]}'), "header_invalid", 'tensor "w" must be an object');
    expectError(fileOf(`{"w":${entry(7 as never, [2], [0, 8])}}`), "header_invalid", "dtype");
    expectError(fileOf('{"w":{"shape":[1],"data_offsets":[0,4]}}'), "header_invalid", "dtype");
    expectError(fileOf(`{"w":${entry("F32", "2", [0, 8])}}`), "header_invalid", '"w" has shape');
    expectError(fileOf(`{"w":${entry("F32", [-1], [0, 8])}}`), "header_invalid", "[-1]");
    expectError(fileOf(`{"w":${entry("F32", [1.5], [0, 8])}}`), "header_invalid", "[1.5]");
    expectError(fileOf(`{"w":${entry("F32", [2], [0])}}`), "header_invalid", "data_offsets [0]");
    expectError(fileOf(`{"w":${entry("F32", [2], [-4, 4])}}`), "header_invalid", "[-4, 4]");
    expectError(
      fileOf(`{"w":${entry("F32", [2], undefined)}}`),
      "header_invalid",
      "data_offsets nothing",
    );
    const repeated = '{"w":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}}';
    expectError(fileOf(repeated, data), "header_invalid", 'repeats the key "dtype"');
  });
  await t.step("unknown dtype", () => {
    expectError(fileOf(`{"w":${entry("F33", [2], [0, 8])}}`, data), "unknown_dtype", '"F33"');
    const proto = `{"w":${entry("constructor", [2], [0, 8])}}`;
    expectError(fileOf(proto, data), "unknown_dtype", '"constructor"');
    const f8 = `{"w":${entry("F8_E4M3", [8], [0, 8])}}`;
    expectError(fileOf(f8, data), "unsupported_dtype", '"w"', "F8_E4M3");
  });
  await t.step("duplicate tensor names", () => {
    const twice = `{"w":${entry("F32", [1], [0, 4])},"w":${entry("F32", [1], [4, 8])}}`;
    expectError(fileOf(twice, data), "duplicate_name", 'tensor "w" more than once');
    const escaped = `{"w":${entry("F32", [1], [0, 4])},"\\u0077":${entry("F32", [1], [4, 8])}}`;
    expectError(fileOf(escaped, data), "duplicate_name", '"w"');
  });
  await t.step("offsets that do not tile the data", () => {
    const gap = `{"a":${entry("F32", [1], [0, 4])},"b":${entry("F32", [1], [8, 12])}}`;
    expectError(fileOf(gap, f32Bytes([1, 2, 3])), "invalid_offsets", '"b"', "gap of 4", "4");
    const overlap = `{"a":${entry("F32", [2], [0, 8])},"b":${entry("F32", [1], [4, 8])}}`;
    expectError(fileOf(overlap, data), "invalid_offsets", '"b" begins at data byte 4', "overlaps");
    const backwards = `{"a":${entry("F32", [0], [8, 4])}}`;
    expectError(fileOf(backwards, data), "invalid_offsets", "[8, 4]", "begin is after end");
    const late = `{"a":${entry("F32", [1], [4, 8])}}`;
    expectError(fileOf(late, data), "invalid_offsets", '"a" begins at data byte 4', "at byte 0");
    const huge = `{"a":${entry("F32", [1], [0, 2 ** 60])}}`;
    expectError(fileOf(huge, data), "invalid_offsets", '"a"', "too large");
  });
  await t.step("a shape whose element count overflows", () => {
    const big = `{"a":${entry("F32", [2 ** 31, 2 ** 31, 2 ** 31], [0, 8])}}`;
    expectError(fileOf(big, data), "shape_overflow", '"a"', "[2147483648, 2147483648, 2147483648]");
    const dim = `{"a":{"dtype":"F32","shape":[100000000000000000000],"data_offsets":[0,8]}}`;
    expectError(fileOf(dim, data), "shape_overflow", '"a"', "100000000000000000000");
    const bytes = `{"a":${entry("F64", [2 ** 52], [0, 8])}}`;
    expectError(fileOf(bytes, data), "shape_overflow", "byte length");
  });
  await t.step("a shape that does not match the byte length", () => {
    const short = `{"w":${entry("F32", [2, 2], [0, 12])}}`;
    expectError(fileOf(short, f32Bytes([1, 2, 3])), "size_mismatch", '"w"', "16 bytes", "12");
    const wrongType = `{"w":${entry("F64", [2], [0, 8])}}`;
    expectError(fileOf(wrongType, data), "size_mismatch", "F64", "needs 16 bytes");
  });
  await t.step("data that does not end at the end of the file", () => {
    const truncated = fileOf(one, data).subarray(0, 8 + one.length + 5);
    expectError(truncated, "data_length", '"w"', "byte 8", "5 bytes", "truncated");
    const trailing = fileOf(one, [...data, 0, 0, 0]);
    expectError(trailing, "data_length", "3 bytes after", "byte 8");
    expectError(fileOf("{}", [1]), "data_length", "1 bytes after");
  });
  await t.step("__metadata__ values that are not strings", () => {
    expectError(fileOf('{"__metadata__":{"a":"x","n":1}}'), "invalid_metadata", '"n"', "number 1");
    expectError(fileOf('{"__metadata__":{"o":{}}}'), "invalid_metadata", '"o"', "an object");
    expectError(fileOf('{"__metadata__":["a"]}'), "invalid_metadata", "an array");
    expectError(fileOf('{"__metadata__":"a"}'), "invalid_metadata", 'string "a"');
  });
  await t.step("a header nested 100,000 deep, or names a megabyte long", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    for (const field of ["dtype", "shape", "data_offsets"]) {
      const value = (name: string, fallback: string) => (field === name ? deep : fallback);
      const header = `{"w":{"dtype":${value("dtype", '"F32"')},"shape":${
        value("shape", "[1]")
      },"data_offsets":${value("data_offsets", "[0,4]")}}}`;
      assert.throws(() => decodeSafetensors(fileOf(header, f32Bytes([1]))), (error: unknown) => {
        assert.ok(error instanceof SafetensorsError && error.code === "header_invalid");
        assert.ok(error.message.length < 200, `a ${error.message.length}-character message`);
        return true;
      });
    }
    const name = "n".repeat(1_000_000);
    expectError(fileOf(`{"${name}":${entry("F33", [1], [0, 4])}}`), "unknown_dtype", "nnnn…");
  });
  await t.step("not bytes at all", () => {
    assert.throws(() => decodeSafetensors("abc" as unknown as Uint8Array), {
      name: "TypeError",
      message: /decodeSafetensors: bytes must be a Uint8Array, got string "abc"/,
    });
  });
});

Deno.test("readSafetensors and writeSafetensors go through a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/t.safetensors`;
    const w = Tensor.from([[1, 2], [3, 4]], { dtype: "float64" });
    await writeSafetensors(path, { w }, { who: "test" });
    assert.deepEqual(await Deno.readFile(path), encodeSafetensors({ w }, { who: "test" }));
    const file = await readSafetensors(path);
    assert.deepEqual(file.metadata, { who: "test" });
    assert.deepEqual([...file.tensors.get("w")!.data], [1, 2, 3, 4]);
    await Deno.writeFile(path, new Uint8Array(3));
    await assert.rejects(() => readSafetensors(path), {
      name: "SafetensorsError",
      message:
        `readSafetensors("${path}"): the file has 3 bytes, fewer than the 8 that give the header length`,
    });
    await assert.rejects(() => readSafetensors(`${dir}/missing`), {
      message: /readSafetensors\(".*missing"\): could not read the file/,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
