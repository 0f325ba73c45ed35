// The safetensors format (https://github.com/huggingface/safetensors), read and written
// without dependencies:
//   8 bytes   N, the header length, an unsigned little-endian 64-bit integer
//   N bytes   UTF-8 JSON: { "<name>": { "dtype", "shape", "data_offsets": [begin, end] }, …,
//             "__metadata__": { "<key>": "<string>" } }, possibly padded with spaces
//   the rest  the tensors' bytes, little-endian, row-major; offsets count from here
// The reader trusts nothing in the file: every number is checked against the file before it
// is used, and nothing is allocated before the checks pass.
import { scanJson } from "../core/json.ts";
import { formatShape } from "../core/tensor.ts";
import { readFileBytes, removeStaleTemps } from "./write_file_atomic.ts";

/** The largest header the reader accepts, in bytes (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * The most tensors a file may name. Each costs about a kilobyte of bookkeeping however small
 * it is, so the count is bounded apart from the bytes.
 */
export const MAX_TENSORS = 100_000;

/**
 * The most values (numbers, strings, arrays, objects) a header may hold: enough for
 * {@linkcode MAX_TENSORS} tensors of rank 8 and as many metadata entries. Checked by a scan
 * of the text before `JSON.parse`, whose memory grows with it.
 */
export const MAX_HEADER_VALUES = 2_000_000;

// A header nests three deep: the header object, a tensor's entry, its shape or offsets.
const MAX_HEADER_DEPTH = 3;

/**
 * The element types the reader understands. `F64` and `F32` are read and written as they
 * are; `F16` and `BF16` are read into `Float32Array` (exactly: every half value is a float32
 * value); the integer types are read into the matching integer array (`BigInt64Array` for
 * 64-bit) and `BOOL` into `Uint8Array` (0 or 1 as stored).
 */
export type SafetensorsDType =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

/** What a tensor read from a file holds, by dtype (see {@linkcode SafetensorsDType}). */
export type SafetensorsData =
  | Float64Array
  | Float32Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/** One tensor read from a safetensors file. */
export interface SafetensorsEntry {
  /** The dtype stored in the file. */
  readonly dtype: SafetensorsDType;
  /** Sizes of the dimensions, outermost first (`[]` for a scalar). */
  readonly shape: readonly number[];
  /** The elements, row-major, in their own buffer. */
  readonly data: SafetensorsData;
}

/** A named tensor as a file or a user gives it: a `Tensor` or a {@linkcode SafetensorsEntry}. */
export interface TensorSource {
  /** Sizes of the dimensions. */
  readonly shape: readonly number[];
  /** Row-major elements. */
  readonly data: ArrayLike<number | bigint>;
  /** Element type, for messages. */
  readonly dtype?: string;
}

/** The contents of a safetensors file. */
export interface SafetensorsFile {
  /** The tensors by name, in the order of their data in the file. */
  tensors: Map<string, SafetensorsEntry>;
  /** The `__metadata__` strings (empty when the file has none). */
  metadata: Record<string, string>;
}

/** What a {@linkcode SafetensorsError} is about; one code per rule of the format. */
export type SafetensorsErrorCode =
  | "header_too_small"
  | "header_too_large"
  | "header_out_of_bounds"
  | "header_not_utf8"
  | "header_not_json"
  | "header_invalid"
  | "duplicate_name"
  | "unknown_dtype"
  | "unsupported_dtype"
  | "invalid_offsets"
  | "shape_overflow"
  | "size_mismatch"
  | "data_length"
  | "invalid_metadata"
  | "model_metadata"
  | "missing_tensor"
  | "unexpected_tensor"
  | "tensor_shape"
  | "tensor_dtype"
  | "limit_exceeded"
  | "model_too_large"
  | "non_finite";

/**
 * A file that breaks the safetensors format (or, for the model loader, does not hold the
 * model its metadata describes). `code` says which rule; the message names the tensor and
 * the numbers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, SafetensorsError } from "@chainrule/nn";
 *
 * assert.throws(
 *   () => decodeSafetensors(new Uint8Array(5)),
 *   (error) => error instanceof SafetensorsError && error.code === "header_too_small",
 * );
 * ```
 */
export class SafetensorsError extends Error {
  /** Which rule the file breaks. */
  readonly code: SafetensorsErrorCode;

  /** Creates the error; `message` should name the function, the tensor and the numbers. */
  constructor(code: SafetensorsErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SafetensorsError";
    this.code = code;
  }
}

interface DTypeInfo {
  bytes: number; // per element
  // Turns `count` elements held little-endian in `raw` (an own, aligned copy) into an array.
  decode(raw: Uint8Array, count: number): SafetensorsData;
}

type ArrayType = new (buffer: ArrayBuffer, offset: number, length: number) => SafetensorsData;
const view = (Type: ArrayType) => (raw: Uint8Array, count: number): SafetensorsData =>
  new Type(raw.buffer as ArrayBuffer, 0, count);

// A Map, not an object: a dtype named "constructor" must not find Object.prototype.
const DTYPES = new Map<string, DTypeInfo>([
  ["F64", { bytes: 8, decode: view(Float64Array) }],
  ["F32", { bytes: 4, decode: view(Float32Array) }],
  ["F16", { bytes: 2, decode: decodeF16 }],
  ["BF16", { bytes: 2, decode: decodeBF16 }],
  ["I64", { bytes: 8, decode: view(BigInt64Array) }],
  ["I32", { bytes: 4, decode: view(Int32Array) }],
  ["I16", { bytes: 2, decode: view(Int16Array) }],
  ["I8", { bytes: 1, decode: view(Int8Array) }],
  ["U64", { bytes: 8, decode: view(BigUint64Array) }],
  ["U32", { bytes: 4, decode: view(Uint32Array) }],
  ["U16", { bytes: 2, decode: view(Uint16Array) }],
  ["U8", { bytes: 1, decode: view(Uint8Array) }],
  ["BOOL", { bytes: 1, decode: view(Uint8Array) }],
]);

// In the specification, but not read here: their values have no JavaScript array to go into.
const UNSUPPORTED = new Set(["F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"]);

/** Whether this machine stores numbers little-endian, as the format does. */
export const LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// Half precision: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits.
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

function decodeF16(raw: Uint8Array, count: number): Float32Array {
  const halves = new Uint16Array(raw.buffer as ArrayBuffer, 0, count);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = halfToNumber(halves[i]);
  return out;
}

// bfloat16 is the upper half of a float32's bits.
function decodeBF16(raw: Uint8Array, count: number): Float32Array {
  const halves = new Uint16Array(raw.buffer as ArrayBuffer, 0, count);
  const bits = new Uint32Array(count);
  for (let i = 0; i < count; i++) bits[i] = halves[i] << 16;
  return new Float32Array(bits.buffer);
}

/** Reverses each `size`-byte element in place; only a big-endian machine needs it. */
export function swapBytes(bytes: Uint8Array, size: number): void {
  for (let start = 0; start < bytes.length; start += size) {
    bytes.subarray(start, start + size).reverse();
  }
}

// A file can hold megabyte-long names and arrays; messages show their start.
function brief(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// The start of an array, without serializing all of it (it may be nested a million deep).
function preview(value: unknown): string {
  if (!Array.isArray(value)) return describe(value);
  const shown = value.slice(0, 6).map((item) =>
    typeof item === "number" ? String(item) : describe(item)
  );
  return `[${shown.join(", ")}${value.length > 6 ? ", …" : ""}]`;
}

function quote(name: string): string {
  return `"${brief(name)}"`;
}

/** Names a JSON value's kind for an error message: `an array`, `number 1`. */
export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${brief(JSON.stringify(value))}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function own(object: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

// The end of the JSON string that opens at `start` (the index of its closing quote).
function endOfString(text: string, start: number): number {
  let i = start + 1;
  while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
  return i;
}

// JSON.parse keeps the last of repeated keys without a word; the format allows each name
// once, so the (already parsed, hence valid) text is scanned for repeats.
function findRepeatedKey(text: string): { key: string; topLevel: boolean } | undefined {
  const open: (Set<string> | null)[] = []; // keys seen per open object; null for arrays
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{") {
      open.push(new Set());
      expectKey = true;
    } else if (c === "[") {
      open.push(null);
      expectKey = false;
    } else if (c === "}" || c === "]") {
      open.pop();
      expectKey = false;
    } else if (c === ",") {
      expectKey = open.at(-1) instanceof Set;
    } else if (c === '"') {
      const end = endOfString(text, i);
      if (expectKey) {
        const key: string = JSON.parse(text.slice(i, end + 1));
        const keys = open.at(-1) as Set<string>;
        if (keys.has(key)) return { key, topLevel: open.length === 1 };
        keys.add(key);
        expectKey = false;
      }
      i = end;
    }
  }
  return undefined;
}

interface HeaderEntry {
  name: string;
  dtype: SafetensorsDType;
  info: DTypeInfo;
  shape: number[];
  count: number; // elements
  begin: number; // byte offsets into the data area
  end: number;
}

class Reader {
  constructor(readonly where: string) {}

  fail(code: SafetensorsErrorCode, message: string, cause?: unknown): never {
    throw new SafetensorsError(code, `${this.where}: ${message}`, { cause });
  }

  // Returns the header text and where the data area starts.
  header(bytes: Uint8Array): { text: string; dataStart: number } {
    if (bytes.length < 8) {
      this.fail(
        "header_too_small",
        `the file has ${bytes.length} bytes, fewer than the 8 that give the header length`,
      );
    }
    const length = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
    if (length > BigInt(MAX_HEADER_BYTES)) {
      this.fail(
        "header_too_large",
        `header length ${length} is over the limit of ${MAX_HEADER_BYTES} bytes`,
      );
    }
    const n = Number(length);
    if (8 + n > bytes.length) {
      this.fail(
        "header_out_of_bounds",
        `header length ${n} runs past the end of the file (${
          bytes.length - 8
        } bytes follow the length)`,
      );
    }
    let text: string;
    try {
      // ignoreBOM keeps a byte-order mark in the text, where JSON.parse rejects it.
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
        bytes.subarray(8, 8 + n),
      );
    } catch (error) {
      this.fail("header_not_utf8", `the ${n}-byte header is not valid UTF-8`, error);
    }
    return { text, dataStart: 8 + n };
  }

  json(text: string): Record<string, unknown> {
    const scan = scanJson(text, {
      maxDepth: MAX_HEADER_DEPTH,
      maxValues: MAX_HEADER_VALUES,
      maxEntries: MAX_TENSORS + 1, // and __metadata__
    });
    if (scan.limit === "entries") {
      this.fail(
        "limit_exceeded",
        `the header names more than MAX_TENSORS = ${MAX_TENSORS} tensors (at character ${scan.stoppedAt})`,
      );
    }
    if (scan.limit === "depth") {
      this.fail(
        "header_invalid",
        `the header nests deeper than ${MAX_HEADER_DEPTH} levels (at character ${scan.stoppedAt}); ` +
          "a safetensors header is an object of tensor entries whose shapes and offsets are flat arrays",
      );
    }
    if (scan.limit === "values") {
      this.fail(
        "limit_exceeded",
        `the header holds more than MAX_HEADER_VALUES = ${MAX_HEADER_VALUES} values (at character ${scan.stoppedAt})`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      this.fail("header_not_json", `the header is not JSON (${(error as Error).message})`, error);
    }
    if (!isObject(parsed)) {
      this.fail("header_invalid", `the header must be a JSON object, got ${describe(parsed)}`);
    }
    const repeated = findRepeatedKey(text);
    if (repeated?.topLevel) {
      const what = repeated.key === "__metadata__" ? "" : "tensor ";
      this.fail("duplicate_name", `the header names ${what}${quote(repeated.key)} more than once`);
    }
    if (repeated) {
      this.fail(
        "header_invalid",
        `the header repeats the key ${quote(repeated.key)} inside an entry`,
      );
    }
    return parsed;
  }

  metadata(value: unknown): Record<string, string> {
    if (value === undefined || value === null) return {};
    if (!isObject(value)) {
      this.fail(
        "invalid_metadata",
        `__metadata__ must be an object of strings, got ${describe(value)}`,
      );
    }
    for (const [key, item] of Object.entries(value)) {
      if (typeof item !== "string") {
        this.fail(
          "invalid_metadata",
          `__metadata__ value ${quote(key)} must be a string, got ${describe(item)}`,
        );
      }
    }
    return Object.fromEntries(Object.entries(value)) as Record<string, string>;
  }

  entry(name: string, value: unknown): HeaderEntry {
    if (!isObject(value)) {
      this.fail(
        "header_invalid",
        `tensor ${quote(name)} must be an object { dtype, shape, data_offsets }, got ${
          describe(value)
        }`,
      );
    }
    const dtype = own(value, "dtype");
    if (typeof dtype !== "string") {
      this.fail(
        "header_invalid",
        `tensor ${quote(name)} has dtype ${describe(dtype)}, not a string`,
      );
    }
    const info = DTYPES.get(dtype);
    if (!info) {
      const known = [...DTYPES.keys()].join(", ");
      if (UNSUPPORTED.has(dtype)) {
        this.fail(
          "unsupported_dtype",
          `tensor ${quote(name)} has dtype ${
            quote(dtype)
          }, which this reader does not read (it reads ${known})`,
        );
      }
      this.fail(
        "unknown_dtype",
        `tensor ${quote(name)} has unknown dtype ${quote(dtype)} (known: ${known})`,
      );
    }
    const shape = this.shape(name, own(value, "shape"));
    const [begin, end] = this.offsets(name, own(value, "data_offsets"));
    let count = 1;
    for (const dim of shape) {
      count *= dim;
      if (!Number.isSafeInteger(count)) {
        this.fail(
          "shape_overflow",
          `tensor ${quote(name)} has shape ${
            brief(formatShape(shape))
          }, whose element count overflows`,
        );
      }
    }
    if (!Number.isSafeInteger(count * info.bytes)) {
      this.fail(
        "shape_overflow",
        `tensor ${quote(name)} (${dtype}, shape ${
          brief(formatShape(shape))
        }) has a byte length that overflows`,
      );
    }
    return { name, dtype: dtype as SafetensorsDType, info, shape, count, begin, end };
  }

  shape(name: string, shape: unknown): number[] {
    if (!Array.isArray(shape)) {
      this.fail(
        "header_invalid",
        `tensor ${quote(name)} has shape ${describe(shape)}, not an array`,
      );
    }
    for (const dim of shape) {
      if (!Number.isInteger(dim) || dim < 0) {
        this.fail(
          "header_invalid",
          `tensor ${quote(name)} has shape ${
            brief(JSON.stringify(shape))
          }; dimensions must be integers ≥ 0`,
        );
      }
      if (!Number.isSafeInteger(dim)) {
        this.fail(
          "shape_overflow",
          `tensor ${quote(name)} has dimension ${dim}, too large to count`,
        );
      }
    }
    return shape as number[];
  }

  offsets(name: string, offsets: unknown): [number, number] {
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0)
    ) {
      this.fail(
        "header_invalid",
        `tensor ${quote(name)} has data_offsets ${
          preview(offsets)
        }; expected [begin, end], integers ≥ 0`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end)) {
      this.fail(
        "invalid_offsets",
        `tensor ${quote(name)} has data_offsets [${begin}, ${end}], too large to be in any file`,
      );
    }
    if (begin > end) {
      this.fail(
        "invalid_offsets",
        `tensor ${quote(name)} has data_offsets [${begin}, ${end}]: begin is after end`,
      );
    }
    return [begin, end];
  }

  // The tensors must tile the data area exactly: sorted by offset, each begins where the
  // previous ended, the first at 0, the last at the end of the file.
  layout(entries: HeaderEntry[], dataBytes: number): void {
    entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
    let expected = 0;
    let previous: HeaderEntry | undefined;
    for (const entry of entries) {
      const { name, begin, end } = entry;
      if (begin !== expected) {
        const after = previous
          ? `tensor ${quote(previous.name)} ends at byte ${expected}`
          : "the first tensor must begin at byte 0";
        const what = begin > expected ? `leaves a gap of ${begin - expected} bytes` : "overlaps";
        this.fail(
          "invalid_offsets",
          `tensor ${quote(name)} begins at data byte ${begin} and ${what}: ${after}`,
        );
      }
      const needed = entry.count * entry.info.bytes;
      if (end - begin !== needed) {
        this.fail(
          "size_mismatch",
          `tensor ${quote(name)} (${entry.dtype}, shape ${
            brief(formatShape(entry.shape))
          }) needs ${needed} bytes, its data_offsets [${begin}, ${end}] hold ${end - begin}`,
        );
      }
      expected = end;
      previous = entry;
    }
    if (expected > dataBytes) {
      this.fail(
        "data_length",
        `tensor ${
          quote(previous!.name)
        } needs data up to byte ${expected}, the file has ${dataBytes} bytes of data (truncated)`,
      );
    }
    if (expected < dataBytes) {
      this.fail(
        "data_length",
        `the file has ${
          dataBytes - expected
        } bytes after the last tensor's data (which ends at data byte ${expected})`,
      );
    }
  }
}

/**
 * Reads safetensors bytes; `where` starts every error message.
 *
 * Validation happens before any tensor is allocated; the tensors hold copies, so their size
 * is bounded by the file's (twice it for F16/BF16, which widen to float32).
 */
export function parseSafetensors(bytes: Uint8Array, where: string): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`${where}: bytes must be a Uint8Array, got ${describe(bytes)}`);
  }
  const reader = new Reader(where);
  const { text, dataStart } = reader.header(bytes);
  const header = reader.json(text);
  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  const names = Object.keys(header);
  if (names.length - (Object.hasOwn(header, "__metadata__") ? 1 : 0) > MAX_TENSORS) {
    reader.fail(
      "limit_exceeded",
      `the header names ${names.length} tensors, more than MAX_TENSORS = ${MAX_TENSORS}`,
    );
  }
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") metadata = reader.metadata(value);
    else entries.push(reader.entry(name, value));
  }
  reader.layout(entries, bytes.length - dataStart);
  const tensors = new Map<string, SafetensorsEntry>();
  for (const { name, dtype, info, shape, count, begin, end } of entries) {
    const raw = bytes.slice(dataStart + begin, dataStart + end); // an own, aligned buffer
    if (!LITTLE_ENDIAN && info.bytes > 1) swapBytes(raw, info.bytes);
    tensors.set(name, { dtype, shape, data: info.decode(raw, count) });
  }
  return { tensors, metadata };
}

/**
 * Reads a safetensors file held in memory, validating everything the reference
 * implementation validates.
 *
 * @throws {SafetensorsError} naming the broken rule (`code`), the tensor and the numbers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors, Tensor } from "@chainrule/nn";
 *
 * const bytes = encodeSafetensors({ w: Tensor.from([[1, 2], [3, 4]]) }, { note: "hi" });
 * const file = decodeSafetensors(bytes);
 * assert.deepEqual(file.tensors.get("w")?.shape, [2, 2]);
 * assert.deepEqual([...file.tensors.get("w")!.data], [1, 2, 3, 4]);
 * assert.equal(file.metadata.note, "hi");
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsFile {
  return parseSafetensors(bytes, "decodeSafetensors");
}

/**
 * Reads and validates a safetensors file. Needs `--allow-read`.
 *
 * @throws {SafetensorsError} for a malformed file (see {@linkcode decodeSafetensors}).
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  const where = `readSafetensors("${path}")`;
  const bytes = await readFileBytes(path, where);
  await removeStaleTemps(path);
  return parseSafetensors(bytes, where);
}
