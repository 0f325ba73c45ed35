// Takes the tensors a model needs out of a map of named tensors (a file's, or a state dict
// a user built), checking each one's shape and dtype and that none is left over.
import { type JsonLimits, type JsonObject, scanJson } from "../core/json.ts";
import { formatShape } from "../core/tensor.ts";
import { SafetensorsError, type SafetensorsErrorCode, type TensorSource } from "./safetensors.ts";

/** Reads named tensors for a loader whose name (`where`) starts every message. */
export class TensorReader {
  readonly used: Set<string> = new Set();

  constructor(
    readonly tensors: ReadonlyMap<string, TensorSource>,
    readonly metadata: Readonly<Record<string, string>>,
    readonly where: string,
  ) {}

  fail(code: SafetensorsErrorCode, message: string): never {
    throw new SafetensorsError(code, `${this.where}: ${message}`);
  }

  // A `{ kind, config, … }` object stored as JSON in the metadata under `key`, measured
  // against `limits` before it is parsed (`what` names them in the error).
  spec(
    key: string,
    limits: JsonLimits = {},
    what: Partial<Record<"depth" | "containers" | "values" | "entries", string>> = {},
  ): { kind: string; config: JsonObject } & JsonObject {
    const text = this.metadata[key];
    const scan = scanJson(text, limits);
    if (scan.limit !== "") {
      const passed = scan.limit === "depth"
        ? `nests deeper than ${limits.maxDepth} levels`
        : scan.limit === "containers"
        ? `holds more than ${limits.maxContainers} arrays and objects`
        : scan.limit === "values"
        ? `holds more than ${limits.maxValues} values`
        : `holds more than ${limits.maxEntries} entries`;
      const detail = what[scan.limit] ? ` (${what[scan.limit]})` : "";
      this.fail(
        "model_too_large",
        `__metadata__ "${key}" ${passed} by character ${scan.stoppedAt}${detail}; ` +
          "it is refused before being parsed",
      );
    }
    let spec: unknown;
    try {
      spec = JSON.parse(text);
    } catch {
      this.fail("model_metadata", `__metadata__ "${key}" is not JSON`);
    }
    const { kind, config } = (spec ?? {}) as { kind?: unknown; config?: unknown };
    if (
      typeof kind !== "string" || typeof config !== "object" || !config || Array.isArray(config)
    ) {
      this.fail("model_metadata", `__metadata__ "${key}" must be {"kind": string, "config": {…}}`);
    }
    return spec as { kind: string; config: JsonObject } & JsonObject;
  }

  // The tensor `name`, which must have `shape` and a float dtype.
  take(name: string, shape: readonly number[], anyDtype = false): Float32Array | Float64Array {
    const entry = this.tensors.get(name);
    if (!entry) {
      const has = [...this.tensors.keys()].slice(0, 8).join(", ") || "no tensors";
      this.fail(
        "missing_tensor",
        `the model needs tensor "${name}" (shape ${
          formatShape(shape)
        }); there is none among: ${has}`,
      );
    }
    this.used.add(name);
    if (entry.shape.length !== shape.length || entry.shape.some((dim, i) => dim !== shape[i])) {
      this.fail(
        "tensor_shape",
        `tensor "${name}" has shape ${formatShape(entry.shape)}, the model needs ${
          formatShape(shape)
        }`,
      );
    }
    if (
      !anyDtype && !(entry.data instanceof Float32Array) && !(entry.data instanceof Float64Array)
    ) {
      this.fail(
        "tensor_dtype",
        `tensor "${name}" is ${
          entry.dtype ?? entry.data.constructor.name
        }; parameters need a float dtype (F64, F32, F16, BF16)`,
      );
    }
    return entry.data as Float32Array | Float64Array; // or integers, when anyDtype
  }

  // The tensor `name`, which must have `shape` and a numeric dtype (integers included: a
  // counter such as PyTorch's int64 num_batches_tracked), as numbers.
  takeNumbers(name: string, shape: readonly number[]): ArrayLike<number> {
    const entry = this.tensors.get(name);
    const data = entry?.data;
    if (!data || data instanceof Float32Array || data instanceof Float64Array) {
      return this.take(name, shape);
    }
    this.take(name, shape, true);
    return Float64Array.from(data as ArrayLike<number | bigint>, (v) => Number(v));
  }

  // Refuses a tensor holding NaN or ±Infinity, or values that overflow `dtype` (float32);
  // with `allow`, notes it in `warnings` instead (for one warning at the end of the load).
  checkFinite(
    name: string,
    source: ArrayLike<number>,
    dtype: "float32" | "float64",
    allow: boolean,
    warnings: string[],
  ): void {
    const float32 = dtype === "float32";
    for (let i = 0; i < source.length; i++) {
      const v = source[i];
      if (float32 ? Number.isFinite(Math.fround(v)) : Number.isFinite(v)) continue;
      let count = 0;
      for (let j = i; j < source.length; j++) {
        const w = source[j];
        if (!(float32 ? Number.isFinite(Math.fround(w)) : Number.isFinite(w))) count++;
      }
      const what = Number.isFinite(v)
        ? `${v} at element ${i}, which overflows the layer's float32`
        : `${v} at element ${i}`;
      const message = `tensor "${name}" holds ${what} (${count} of its ${source.length} ` +
        "values are not finite)";
      if (allow) {
        warnings.push(message);
        return;
      }
      this.fail(
        "non_finite",
        `${message}; a model with such weights predicts NaN. ` +
          "Pass { allowNonFinite: true } to load it anyway",
      );
    }
  }

  // Every tensor must have been taken: a leftover means the model and the file disagree.
  checkAllUsed(): void {
    const extra = [...this.tensors.keys()].filter((name) => !this.used.has(name));
    if (extra.length > 0) {
      this.fail(
        "unexpected_tensor",
        `there are tensors the model does not use: ${extra.slice(0, 8).join(", ")}`,
      );
    }
  }
}
