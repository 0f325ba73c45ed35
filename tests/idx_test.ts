import assert from "node:assert/strict";
import { decodeIdx, idxDataset, IdxError, parseIdx, readIdx } from "../mod.ts";

// An IDX file built by hand: magic, big-endian dimension sizes, big-endian elements.
function idx(
  type: number,
  shape: number[],
  write: (view: DataView, offset: number) => void,
  size: number,
) {
  const header = 4 + 4 * shape.length;
  const bytes = new Uint8Array(header + size);
  const view = new DataView(bytes.buffer);
  bytes.set([0, 0, type, shape.length]);
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  write(view, header);
  return bytes;
}

function uint8Idx(shape: number[], values: number[]): Uint8Array {
  return idx(
    0x08,
    shape,
    (view, o) => values.forEach((v, i) => view.setUint8(o + i, v)),
    values.length,
  );
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function assertIdxError(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof IdxError, String(error));
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("parseIdx reads every element type, big-endian", async (t) => {
  await t.step("uint8 images", () => {
    const parsed = parseIdx(uint8Idx([2, 2, 3], [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]));
    assert.equal(parsed.type, "uint8");
    assert.deepEqual(parsed.shape, [2, 2, 3]);
    assert.ok(parsed.data instanceof Uint8Array);
    assert.deepEqual([...parsed.data], [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
  });
  await t.step("int8, int16, int32, float32, float64", () => {
    const cases = [
      [0x09, "int8", 1, (v: DataView, o: number, x: number) => v.setInt8(o, x), [-128, 127, -1]],
      [0x0b, "int16", 2, (v: DataView, o: number, x: number) => v.setInt16(o, x), [-2, 300, 32767]],
      [0x0c, "int32", 4, (v: DataView, o: number, x: number) => v.setInt32(o, x), [
        -70000,
        1,
        2 ** 31 - 1,
      ]],
      [0x0d, "float32", 4, (v: DataView, o: number, x: number) => v.setFloat32(o, x), [
        1.5,
        -0.25,
        1e6,
      ]],
      [0x0e, "float64", 8, (v: DataView, o: number, x: number) => v.setFloat64(o, x), [
        Math.PI,
        -1e-300,
        2,
      ]],
    ] as const;
    for (const [code, type, width, set, values] of cases) {
      const bytes = idx(
        code,
        [3],
        (view, o) => values.forEach((x, i) => set(view, o + width * i, x)),
        3 * width,
      );
      const parsed = parseIdx(bytes);
      assert.equal(parsed.type, type);
      assert.deepEqual([...parsed.data], [...values], type);
    }
  });
  await t.step("the result does not share memory with the input", () => {
    const bytes = uint8Idx([1], [7]);
    const parsed = parseIdx(bytes);
    bytes[8] = 9;
    assert.equal(parsed.data[0], 7);
  });
});

Deno.test("parseIdx rejects malformed files with a clear IdxError", async (t) => {
  const good = uint8Idx([2, 3], [1, 2, 3, 4, 5, 6]);
  await t.step("wrong magic number", () => {
    assertIdxError(
      () => parseIdx(new Uint8Array([1, 2, 8, 1, 0, 0, 0, 0]), "x.idx"),
      "magic",
      /parseIdx: x\.idx does not start with an IDX magic number .*got 0x01 0x02 0x08 0x01/,
    );
    assertIdxError(() => parseIdx(new Uint8Array()), "magic", /got an empty file/);
  });
  await t.step("gzip bytes get a hint", async () => {
    const packed = await gzip(good);
    assertIdxError(() => parseIdx(packed), "magic", /it is gzip-compressed: use decodeIdx/);
  });
  await t.step("unknown type byte", () => {
    assertIdxError(
      () => parseIdx(new Uint8Array([0, 0, 0x0a, 1, 0, 0, 0, 0])),
      "type",
      /type byte 0x0a, expected one of 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e/,
    );
  });
  await t.step("truncated header", () => {
    assertIdxError(
      () => parseIdx(good.subarray(0, 9)),
      "truncated",
      /is truncated: 2 dimensions need a 12-byte header, the file has 9 bytes/,
    );
  });
  await t.step("truncated data", () => {
    assertIdxError(
      () => parseIdx(good.subarray(0, good.length - 1)),
      "truncated",
      /is truncated: shape \[2, 3\] of uint8 needs 6 data bytes, the file has 5 after its 12-byte header/,
    );
  });
  await t.step("trailing bytes", () => {
    const longer = new Uint8Array(good.length + 2);
    longer.set(good);
    assertIdxError(
      () => parseIdx(longer),
      "trailing",
      /has trailing bytes: .* needs 6 data bytes, the file has 8/,
    );
  });
  await t.step("a huge declared shape fails on size, without allocating it", () => {
    const bytes = new Uint8Array([0, 0, 0x0e, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assertIdxError(() => parseIdx(bytes), "truncated", /needs \d+ data bytes, the file has 0/);
  });
});

Deno.test("decodeIdx gunzips, and rejects corrupt gzip data", async () => {
  const plain = uint8Idx([2, 2], [9, 8, 7, 6]);
  const packed = await gzip(plain);
  assert.deepEqual([...(await decodeIdx(packed)).data], [9, 8, 7, 6]);
  assert.deepEqual([...(await decodeIdx(plain)).data], [9, 8, 7, 6]);
  await assert.rejects(
    () => decodeIdx(packed.subarray(0, packed.length - 6), "t.gz"),
    (error: unknown) =>
      error instanceof IdxError && error.code === "gzip" &&
      /t\.gz is gzip data/.test(error.message),
  );
  // A valid gzip stream of a truncated IDX file is reported as truncated, naming it.
  await assert.rejects(
    async () => decodeIdx(await gzip(plain.subarray(0, plain.length - 1)), "u.gz"),
    /parseIdx: u\.gz \(gunzipped\) is truncated/,
  );
});

Deno.test("idxDataset pairs images with labels and checks the counts", () => {
  const images = parseIdx(uint8Idx([3, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]));
  const labels = parseIdx(uint8Idx([3], [4, 0, 9]));
  const { x, y } = idxDataset(images, labels);
  assert.deepEqual(x.shape, [3, 4]);
  assert.equal(x.dtype, "float32");
  assert.deepEqual(x.toArray(), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 255]]);
  assert.deepEqual([...y], [4, 0, 9]);
  assert.equal(idxDataset(images, labels, { dtype: "float64" }).x.dtype, "float64");
  assertIdxError(
    () => idxDataset(images, parseIdx(uint8Idx([2], [1, 2]))),
    "mismatch",
    /idxDataset: the images hold 3 samples, the labels 2; they must match/,
  );
  assertIdxError(
    () => idxDataset(images, images),
    "mismatch",
    /labels must be one-dimensional \[samples\], got shape \[3, 2, 2\]/,
  );
});

Deno.test("readIdx reads plain and .gz files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const plain = uint8Idx([3], [1, 2, 3]);
    await Deno.writeFile(`${dir}/a-idx1-ubyte`, plain);
    await Deno.writeFile(`${dir}/a-idx1-ubyte.gz`, await gzip(plain));
    assert.deepEqual([...(await readIdx(`${dir}/a-idx1-ubyte`)).data], [1, 2, 3]);
    assert.deepEqual([...(await readIdx(`${dir}/a-idx1-ubyte.gz`)).data], [1, 2, 3]);
    await assert.rejects(() => readIdx(`${dir}/missing`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
