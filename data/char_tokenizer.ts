// Characters to ids and back, for character-level language models.
import { describe, describeKind } from "../core/_describe.ts";

/** The JSON form of a {@linkcode CharTokenizer}: its vocabulary in id order. */
export interface CharTokenizerJson {
  /** Always `"CharTokenizer"`. */
  kind: "CharTokenizer";
  /** The characters, one code point each; a character's id is its index. */
  chars: string[];
}

// Compares two one-code-point strings by code point (UTF-16 order would put U+1F600 before
// U+FF01, since its first unit is a surrogate 0xD83D).
function byCodePoint(a: string, b: string): number {
  return a.codePointAt(0)! - b.codePointAt(0)!;
}

/**
 * A character-level tokenizer: each distinct character (Unicode code point, so an emoji
 * written as a surrogate pair is one character) gets an id, its index in the vocabulary.
 *
 * {@linkcode CharTokenizer.fromText} builds the vocabulary of a text, sorted by code point;
 * `new CharTokenizer(chars)` takes one in the order given. `encode` returns an `Int32Array`
 * (4 bytes a character, compact for a whole corpus); `decode` takes any array of ids.
 * `toJSON()` gives JSON text that fits a model file's metadata, so the tokenizer travels with
 * the model: `model.save(path, { metadata: { tokenizer: tok.toJSON() } })`, then
 * `CharTokenizer.fromJSON((await loadModel(path)).metadata.tokenizer)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CharTokenizer } from "@chainrule/nn";
 *
 * const tok = CharTokenizer.fromText("hello world");
 * assert.equal(tok.size, 8);
 * assert.deepEqual(tok.chars, [" ", "d", "e", "h", "l", "o", "r", "w"]);
 * const ids = tok.encode("hold");
 * assert.deepEqual([...ids], [3, 5, 4, 1]);
 * assert.equal(tok.decode(ids), "hold");
 * assert.deepEqual(CharTokenizer.fromJSON(tok.toJSON()).chars, tok.chars);
 * ```
 */
export class CharTokenizer {
  /** The vocabulary: `chars[id]` is the character of `id`. */
  readonly chars: readonly string[];
  // Character → id.
  #ids: Map<string, number>;

  /**
   * A tokenizer over `chars` in the order given (a string is read character by character).
   *
   * @throws {TypeError} when `chars` is not a string or an array of strings, or an element
   * is not exactly one character.
   * @throws {RangeError} when the vocabulary is empty or holds a character twice.
   */
  constructor(chars: string | readonly string[]) {
    const where = "new CharTokenizer";
    if (typeof chars !== "string" && !Array.isArray(chars)) {
      throw new TypeError(
        `${where}: chars must be a string or an array of one-character strings, got ${
          describeKind(chars)
        }`,
      );
    }
    const list = typeof chars === "string" ? [...chars] : [...chars];
    if (list.length === 0) {
      throw new RangeError(`${where}: the vocabulary is empty; give at least one character`);
    }
    const ids = new Map<string, number>();
    list.forEach((char, i) => {
      if (typeof char !== "string" || [...char].length !== 1) {
        throw new TypeError(
          `${where}: chars[${i}] must be one character (one code point), got ${describe(char)}`,
        );
      }
      const first = ids.get(char);
      if (first !== undefined) {
        throw new RangeError(
          `${where}: character ${JSON.stringify(char)} appears twice, at ${first} and ${i}`,
        );
      }
      ids.set(char, i);
    });
    this.chars = Object.freeze(list);
    this.#ids = ids;
  }

  /**
   * A tokenizer over the distinct characters of `text`, sorted by code point.
   *
   * @throws {TypeError} when `text` is not a string.
   * @throws {RangeError} when `text` is empty.
   */
  static fromText(text: string): CharTokenizer {
    const where = "CharTokenizer.fromText";
    if (typeof text !== "string") {
      throw new TypeError(`${where}: text must be a string, got ${describeKind(text)}`);
    }
    if (text.length === 0) {
      throw new RangeError(`${where}: text is empty; it needs at least one character`);
    }
    return new CharTokenizer([...new Set(text)].sort(byCodePoint));
  }

  /**
   * Rebuilds a tokenizer from {@linkcode CharTokenizer.toJSON}'s text.
   *
   * @throws {TypeError} when `text` is not JSON of a `CharTokenizer`.
   */
  static fromJSON(text: string): CharTokenizer {
    const where = "CharTokenizer.fromJSON";
    if (typeof text !== "string") {
      throw new TypeError(`${where}: text must be a JSON string, got ${describeKind(text)}`);
    }
    let json: Partial<CharTokenizerJson>;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new TypeError(`${where}: text is not JSON (${(error as Error).message})`);
    }
    if (json?.kind !== "CharTokenizer" || !Array.isArray(json.chars)) {
      const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
      throw new TypeError(
        `${where}: expected {"kind":"CharTokenizer","chars":[…]}, got ${shown}`,
      );
    }
    return new CharTokenizer(json.chars);
  }

  /** Number of characters in the vocabulary (the ids run from 0 to `size − 1`). */
  get size(): number {
    return this.chars.length;
  }

  /**
   * The id of each character of `text`, in order.
   *
   * @throws {TypeError} when `text` is not a string.
   * @throws {RangeError} for a character not in the vocabulary, naming it (JSON-escaped) and
   * its position (in characters, from 0).
   */
  encode(text: string): Int32Array {
    if (typeof text !== "string") {
      throw new TypeError(`CharTokenizer.encode: text must be a string, got ${describeKind(text)}`);
    }
    const ids = this.#ids;
    const out: number[] = [];
    for (const char of text) {
      const id = ids.get(char);
      if (id === undefined) {
        throw new RangeError(
          `CharTokenizer.encode: character ${
            JSON.stringify(char)
          } at position ${out.length} is not in the vocabulary of ${this.size} characters`,
        );
      }
      out.push(id);
    }
    return Int32Array.from(out);
  }

  /**
   * The text of `ids`.
   *
   * @throws {TypeError} when `ids` is not an array (or typed array) of numbers.
   * @throws {RangeError} for an id that is not an integer in [0, size), naming it and its
   * position.
   */
  decode(ids: ArrayLike<number>): string {
    const where = "CharTokenizer.decode";
    if (!Array.isArray(ids) && !(ArrayBuffer.isView(ids) && !(ids instanceof DataView))) {
      throw new TypeError(`${where}: ids must be an array of integers, got ${describeKind(ids)}`);
    }
    const chars = this.chars;
    const size = chars.length;
    let text = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (typeof id !== "number") {
        throw new TypeError(`${where}: ids[${i}] must be a number, got ${describeKind(id)}`);
      }
      if (!Number.isInteger(id) || id < 0 || id >= size) {
        throw new RangeError(
          `${where}: id ${id} at position ${i} is out of range for a vocabulary of ${size} ` +
            `characters (ids 0 to ${size - 1})`,
        );
      }
      text += chars[id];
    }
    return text;
  }

  /** The vocabulary as JSON text (see {@linkcode CharTokenizerJson}), for a model file's metadata. */
  toJSON(): string {
    const json: CharTokenizerJson = { kind: "CharTokenizer", chars: [...this.chars] };
    return JSON.stringify(json);
  }

  /** `CharTokenizer(size=27)` */
  toString(): string {
    return `CharTokenizer(size=${this.size})`;
  }
}
