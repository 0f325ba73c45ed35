import { describe, describeKind } from "../core/_describe.ts";
import { type DType, Tensor } from "../core/tensor.ts";

type Read = (view: DataView, offset: number) => number;

/** Element types of the IDX format, by their type byte: name, width, storage, reader. */
const TYPES = {
  0x08: { name: "uint8", bytes: 1, array: Uint8Array, read: null },
  0x09: { name: "int8", bytes: 1, array: Int8Array, read: null },
  0x0b: { name: "int16", bytes: 2, array: Int16Array, read: ((v, o) => v.getInt16(o)) as Read },
  0x0c: { name: "int32", bytes: 4, array: Int32Array, read: ((v, o) => v.getInt32(o)) as Read },
  0x0d: {
    name: "float32",
    bytes: 4,
    array: Float32Array,
    read: ((v, o) => v.getFloat32(o)) as Read,
  },
  0x0e: {
    name: "float64",
    bytes: 8,
    array: Float64Array,
    read: ((v, o) => v.getFloat64(o)) as Read,
  },
} as const;

/** The element type of an IDX array. */
export type IdxType = "uint8" | "int8" | "int16" | "int32" | "float32" | "float64";

/** The storage of an IDX array, in the platform's byte order. */
export type IdxData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Float32Array
  | Float64Array;

/** An n-dimensional array read from an IDX file (the MNIST format). */
export interface IdxArray {
  /** The element type named by the file. */
  type: IdxType;
  /** Sizes of the dimensions, outermost first (e.g. `[60000, 28, 28]`). */
  shape: number[];
  /** Row-major elements. */
  data: IdxData;
}

/** What went wrong in an IDX file. */
export type IdxErrorCode = "magic" | "type" | "truncated" | "trailing" | "gzip" | "mismatch";

/** A malformed IDX file or data set: `code` says which check failed, the message the numbers. */
export class IdxError extends Error {
  /** Which check failed. */
  readonly code: IdxErrorCode;

  /** Creates the error. */
  constructor(code: IdxErrorCode, message: string) {
    super(message);
    this.name = "IdxError";
    this.code = code;
  }
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => `0x${b.toString(16).padStart(2, "0")}`).join(" ");
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses an uncompressed IDX file from its bytes (no permissions needed): a big-endian
 * header `0x00 0x00 <type> <dims>`, one 32-bit size per dimension, then the elements.
 *
 * @param name names the file in error messages.
 * @throws {IdxError} for a wrong magic number or type byte, a file shorter than its header
 * promises (`truncated`) or longer (`trailing`), or gzip data (use {@linkcode decodeIdx}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIdx } from "@chainrule/nn";
 *
 * // Two 1×2 uint8 images.
 * const bytes = new Uint8Array([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 10, 20, 30, 40]);
 * const idx = parseIdx(bytes);
 * assert.deepEqual(idx.shape, [2, 1, 2]);
 * assert.deepEqual([...idx.data], [10, 20, 30, 40]);
 * ```
 */
export function parseIdx(bytes: Uint8Array, name = "IDX data"): IdxArray {
  const where = `parseIdx: ${name}`;
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`parseIdx: bytes must be a Uint8Array, got ${describeKind(bytes)}`);
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    const hint = isGzip(bytes) ? "; it is gzip-compressed: use decodeIdx" : "";
    throw new IdxError(
      "magic",
      `${where} does not start with an IDX magic number (0x00 0x00 <type> <dims>), got ${
        hex(bytes.subarray(0, 4)) || "an empty file"
      }${hint}`,
    );
  }
  const type = TYPES[bytes[2] as keyof typeof TYPES];
  if (!type) {
    throw new IdxError(
      "type",
      `${where} has type byte ${hex(bytes.subarray(2, 3))}, expected one of ${
        Object.keys(TYPES).map((t) => `0x${Number(t).toString(16).padStart(2, "0")}`).join(", ")
      }`,
    );
  }
  const dims = bytes[3];
  const header = 4 + 4 * dims;
  if (dims === 0) throw new IdxError("magic", `${where} declares 0 dimensions`);
  if (bytes.length < header) {
    throw new IdxError(
      "truncated",
      `${where} is truncated: ${dims} dimensions need a ${header}-byte header, the file has ${bytes.length} bytes`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: dims }, (_, d) => view.getUint32(4 + 4 * d));
  const count = shape.reduce((a, b) => a * b, 1);
  const needed = count * type.bytes;
  const available = bytes.length - header;
  if (available !== needed) {
    throw new IdxError(
      available < needed ? "truncated" : "trailing",
      `${where} ${available < needed ? "is truncated" : "has trailing bytes"}: shape [${
        shape.join(", ")
      }] of ${type.name} needs ${needed} data bytes, the file has ${available} after its ${header}-byte header`,
    );
  }
  return { type: type.name, shape, data: readElements(view, header, count, type) };
}

// IDX stores big-endian; typed arrays use the platform's order, so wider types are read one
// element at a time. Either way the result owns its memory.
function readElements(
  view: DataView,
  offset: number,
  count: number,
  type: typeof TYPES[keyof typeof TYPES],
): IdxData {
  if (!type.read) {
    const start = view.byteOffset + offset;
    return new type.array(new Uint8Array(view.buffer, start, count).slice().buffer);
  }
  const out = new type.array(count);
  for (let i = 0; i < count; i++) out[i] = type.read(view, offset + type.bytes * i);
  return out;
}

/**
 * Parses an IDX file from its bytes, gunzipping them first when they are gzip-compressed
 * (the `.gz` files MNIST and Fashion-MNIST ship as), with the built-in `DecompressionStream`.
 *
 * @throws {IdxError} as {@linkcode parseIdx} does, or with code `gzip` for corrupt or
 * truncated compressed data.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeIdx } from "@chainrule/nn";
 *
 * const plain = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]);
 * const gzipped = new Uint8Array(
 *   await new Response(new Blob([plain]).stream().pipeThrough(new CompressionStream("gzip")))
 *     .arrayBuffer(),
 * );
 * assert.deepEqual([...(await decodeIdx(gzipped)).data], [7, 8, 9]);
 * ```
 */
export async function decodeIdx(bytes: Uint8Array, name = "IDX data"): Promise<IdxArray> {
  if (!isGzip(bytes)) return parseIdx(bytes, name);
  let plain: Uint8Array;
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new DecompressionStream("gzip"));
    plain = new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (error) {
    throw new IdxError(
      "gzip",
      `decodeIdx: ${name} is gzip data that does not decompress (${
        (error as Error).message
      }); the file is corrupt or truncated`,
    );
  }
  return parseIdx(plain, `${name} (gunzipped)`);
}

/**
 * Reads and parses an IDX file, plain or `.gz` (needs `--allow-read`).
 *
 * @throws {Deno.errors.NotFound} when the file does not exist; {@linkcode IdxError} when it
 * is malformed.
 */
export async function readIdx(path: string | URL): Promise<IdxArray> {
  return decodeIdx(await Deno.readFile(path), String(path));
}

/** Options of {@linkcode idxDataset}. */
export interface IdxDatasetOptions {
  /** Element type of the inputs; `"float32"` when omitted. */
  dtype?: DType;
  /**
   * `"rows"` (the default): each image flattened into a row `[samples, rows·cols]`, for a
   * `Dense` model. `"nchw"`: images for a `Conv2D`, `[samples, 1, rows, cols]` (a file that
   * already holds `[samples, channels, rows, cols]` keeps its shape).
   */
  layout?: "rows" | "nchw";
}

/** Images as model inputs, with their labels. */
export interface IdxDataset {
  /**
   * The images, raw values (0–255 for MNIST): one flattened image per row
   * `[samples, rows·cols]`, or `[samples, 1, rows, cols]` with `layout: "nchw"`.
   */
  x: Tensor;
  /** The label of each image `[samples]`. */
  y: Int32Array;
}

/**
 * Pairs an images array `[samples, …]` with a labels array `[samples]` (as read by
 * {@linkcode parseIdx}) into model inputs: each image flattened into a row, or with
 * `{ layout: "nchw" }` kept as an image with one channel, `[samples, 1, rows, cols]`.
 *
 * @throws {IdxError} with code `mismatch` when the sample counts differ or the labels are
 * not one-dimensional.
 * @throws {RangeError} for an unknown `layout`, or `"nchw"` for images that are not 2-D or
 * 3-D per sample.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type IdxArray, idxDataset } from "@chainrule/nn";
 *
 * const images: IdxArray = { type: "uint8", shape: [2, 1, 2], data: new Uint8Array([0, 255, 255, 0]) };
 * const labels: IdxArray = { type: "uint8", shape: [2], data: new Uint8Array([3, 7]) };
 * const { x, y } = idxDataset(images, labels);
 * assert.deepEqual(x.toArray(), [[0, 255], [255, 0]]);
 * assert.deepEqual([...y], [3, 7]);
 * assert.deepEqual(idxDataset(images, labels, { layout: "nchw" }).x.shape, [2, 1, 1, 2]);
 * ```
 */
export function idxDataset(
  images: IdxArray,
  labels: IdxArray,
  options: IdxDatasetOptions = {},
): IdxDataset {
  if (labels.shape.length !== 1) {
    throw new IdxError(
      "mismatch",
      `idxDataset: labels must be one-dimensional [samples], got shape [${
        labels.shape.join(", ")
      }]`,
    );
  }
  const samples = images.shape[0];
  if (samples !== labels.shape[0]) {
    throw new IdxError(
      "mismatch",
      `idxDataset: the images hold ${samples} samples, the labels ${
        labels.shape[0]
      }; they must match`,
    );
  }
  const layout = options.layout ?? "rows";
  let shape: number[];
  if (layout === "rows") shape = [samples, samples === 0 ? 0 : images.data.length / samples];
  else if (layout === "nchw" && images.shape.length === 3) {
    shape = [samples, 1, ...images.shape.slice(1)];
  } else if (layout === "nchw" && images.shape.length === 4) shape = [...images.shape];
  else if (layout === "nchw") {
    throw new RangeError(
      `idxDataset: layout "nchw" needs images [samples, rows, cols] or [samples, channels, rows, cols], got shape [${
        images.shape.join(", ")
      }]`,
    );
  } else {
    throw new RangeError(
      `idxDataset: layout must be "rows" or "nchw", got ${describe(layout)}`,
    );
  }
  const x = Tensor.zeros(shape, { dtype: options.dtype ?? "float32" });
  x.data.set(images.data);
  return { x, y: Int32Array.from(labels.data) };
}
