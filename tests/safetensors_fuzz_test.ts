// A seeded mutation loop over valid files: the reader must return a consistent result or
// throw a SafetensorsError, never anything else, and never allocate past the file's size.
import assert from "node:assert/strict";
import {
  decodeSafetensors,
  Dense,
  encodeSafetensors,
  modelFromBytes,
  RandomState,
  ReLU,
  SafetensorsError,
  Sequential,
  Tensor,
} from "../mod.ts";

const CASES = 12_000;
const BYTES_PER_ELEMENT: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

function withHeader(header: string, data: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

function seeds(): Uint8Array[] {
  const model = new Sequential([new Dense(2, 3, { seed: 1 }), new ReLU(), new Dense(3, 2)]);
  const mixed = `{"__metadata__":{"k":"v"},"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},` +
    `"i":{"dtype":"I64","shape":[1],"data_offsets":[4,12]},` +
    `"b":{"dtype":"BOOL","shape":[2,2],"data_offsets":[12,16]},` +
    `"z":{"dtype":"BF16","shape":[0],"data_offsets":[16,16]}}`;
  return [
    encodeSafetensors({
      w: Tensor.from([[1, 2], [3, 4]]),
      b: Tensor.from([5], { dtype: "float64" }),
    }),
    encodeSafetensors({}, { only: "metadata" }),
    withHeader(mixed, new Uint8Array(16).map((_, i) => i * 17)),
    model.toBytes(),
  ];
}

const INTERESTING = [
  -1,
  0,
  1,
  3,
  4,
  8,
  255,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 64,
  1.5,
  1e300,
  "2",
  null,
];
const DTYPES = [...Object.keys(BYTES_PER_ELEMENT), "F8_E4M3", "F33", "constructor", ""];

class Mutator {
  constructor(readonly rng: RandomState) {}

  int(n: number): number {
    return Math.floor(this.rng.random() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(file: Uint8Array): Uint8Array {
    const out = file.slice();
    switch (this.int(7)) {
      case 0: // flip bits
        for (let k = 0; k <= this.int(4); k++) out[this.int(out.length)] ^= 1 << this.int(8);
        return out;
      case 1: // overwrite bytes
        for (let k = 0; k <= this.int(4); k++) out[this.int(out.length)] = this.int(256);
        return out;
      case 2: // truncate
        return out.subarray(0, this.int(out.length));
      case 3: { // insert random bytes
        const at = this.int(out.length + 1);
        const extra = Uint8Array.from({ length: 1 + this.int(8) }, () => this.int(256));
        return new Uint8Array([...out.subarray(0, at), ...extra, ...out.subarray(at)]);
      }
      case 4: { // delete a range
        const at = this.int(out.length);
        return new Uint8Array([...out.subarray(0, at), ...out.subarray(at + 1 + this.int(8))]);
      }
      case 5: { // rewrite the header length
        if (out.length < 8) return out;
        const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
        const length = view.getBigUint64(0, true);
        const choices = [length + 1n, length - 1n, 0n, 100_000_001n, 2n ** 64n - 1n, 99_999_999n];
        view.setBigUint64(0, BigInt.asUintN(64, this.pick(choices)), true);
        return out;
      }
      default: // append bytes
        return new Uint8Array([...out, ...Array.from({ length: 1 + this.int(8) }, () => 7)]);
    }
  }

  // Changes the parsed header and writes it back with a correct length, to reach the checks
  // behind the JSON parse.
  header(file: Uint8Array): Uint8Array {
    const length = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + length)));
    let data = file.subarray(8 + length);
    const names = Object.keys(header).filter((name) => name !== "__metadata__");
    const name = names.length ? this.pick(names) : "x";
    const entry = header[name] ?? { dtype: "F32", shape: [1], data_offsets: [0, 4] };
    header[name] = entry;
    let text: string | undefined;
    switch (this.int(8)) {
      case 0:
        entry.dtype = this.pick(DTYPES);
        break;
      case 1:
        entry.shape = Array.isArray(entry.shape) && entry.shape.length && this.int(2)
          ? entry.shape.map((dim: number) => (this.int(3) ? dim : this.pick(INTERESTING)))
          : [this.pick(INTERESTING), this.pick(INTERESTING)];
        break;
      case 2:
        entry.data_offsets = [this.pick(INTERESTING), this.pick(INTERESTING)];
        break;
      case 3:
        entry.data_offsets = [
          entry.data_offsets?.[0] + this.pick([-4, -1, 1, 4]),
          entry.data_offsets?.[1],
        ];
        break;
      case 4:
        delete entry[this.pick(["dtype", "shape", "data_offsets"])];
        break;
      case 5:
        header.__metadata__ = this.pick([{ a: 1 }, [], "s", null, { a: "b" }]);
        break;
      case 6: { // repeat a name
        const json = JSON.stringify(header);
        text = `${json.slice(0, -1)},${JSON.stringify(name)}:${JSON.stringify(entry)}}`;
        break;
      }
      default:
        data = data.subarray(0, this.int(data.length + 1));
    }
    return withHeader(text ?? JSON.stringify(header), data);
  }
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

Deno.test(`decodeSafetensors survives ${CASES} mutated files`, () => {
  const rng = new RandomState(2024);
  const mutate = new Mutator(rng);
  const pool = seeds();
  const outcomes = new Map<string, number>();
  for (let i = 0; i < CASES; i++) {
    let bytes = mutate.pick(pool);
    // One to three mutations, some of them on the parsed header.
    for (let k = 0; k <= mutate.int(3); k++) {
      let parsed = false;
      if (mutate.int(2)) {
        try {
          bytes = mutate.header(bytes);
          parsed = true;
        } catch {
          // The header was already broken; fall back to a byte mutation.
        }
      }
      if (!parsed) bytes = mutate.bytes(bytes);
    }
    let outcome = "valid";
    try {
      const file = decodeSafetensors(bytes);
      let allocated = 0;
      for (const [name, entry] of file.tensors) {
        const count = product(entry.shape);
        assert.equal(entry.data.length, count, `case ${i}: tensor "${name}" length`);
        assert.ok(entry.dtype in BYTES_PER_ELEMENT, `case ${i}: dtype ${entry.dtype}`);
        allocated += entry.data.byteLength;
      }
      assert.ok(
        allocated <= 2 * bytes.length,
        `case ${i}: ${allocated} bytes from a ${bytes.length}-byte file`,
      );
      for (const value of Object.values(file.metadata)) assert.equal(typeof value, "string");
    } catch (error) {
      if (!(error instanceof SafetensorsError)) {
        throw new Error(`case ${i}: expected a SafetensorsError, got ${error}`, { cause: error });
      }
      assert.ok(error.message.startsWith("decodeSafetensors: "), error.message);
      outcome = error.code;
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  // The mutations must reach the checks behind the JSON parse, not just break the header.
  for (
    const code of [
      "valid",
      "header_not_json",
      "header_invalid",
      "invalid_offsets",
      "size_mismatch",
      "data_length",
      "duplicate_name",
      "unknown_dtype",
      "shape_overflow",
      "invalid_metadata",
      "header_out_of_bounds",
      "header_too_large",
      "header_not_utf8",
    ]
  ) {
    assert.ok(
      (outcomes.get(code) ?? 0) > 0,
      `no case ended in ${code}: ${JSON.stringify([...outcomes])}`,
    );
  }
});

Deno.test("modelFromBytes survives 2000 byte-mutated model files with clear errors", () => {
  const rng = new RandomState(7);
  const mutate = new Mutator(rng);
  const model = new Sequential([new Dense(2, 3, { seed: 1 }), new ReLU(), new Dense(3, 2)]);
  const bytes = model.toBytes();
  for (let i = 0; i < 2000; i++) {
    // Flips, overwrites, truncation and deletion only: numbers in the architecture can change
    // but not grow by more than a digit, so no case asks for a giant layer.
    const mutated = mutate.bytes(bytes);
    try {
      modelFromBytes(mutated);
    } catch (error) {
      const clear = error instanceof SafetensorsError || error instanceof TypeError ||
        error instanceof RangeError;
      if (!clear || !(error as Error).message.startsWith("modelFromBytes: ")) {
        throw new Error(`case ${i}: unexpected ${error}`, { cause: error });
      }
    }
  }
});
