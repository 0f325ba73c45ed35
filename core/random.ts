import { describe } from "./_describe.ts";
const N = 624;
const M = 397;
const UPPER = 0x80000000;
const LOWER = 0x7fffffff;
const MATRIX_A = 0x9908b0df;

/** A snapshot of a {@linkcode RandomState}, plain JSON, for saving and resuming. */
export interface RandomStateSnapshot {
  /** The 624 words of the Mersenne Twister state. */
  key: number[];
  /** Position in `key` of the next word. */
  pos: number;
  /** Whether a second normal deviate is cached. */
  hasGauss: boolean;
  /** The cached normal deviate. */
  gauss: number;
}

/**
 * Seeded random numbers: the Mersenne Twister MT19937, exactly as NumPy's legacy
 * `numpy.random.RandomState(seed)` draws them.
 *
 * `random()` is NumPy's `random_sample()` (53-bit doubles in [0, 1)) and `randn()` its
 * legacy polar Box–Muller `randn()`, so the book's `np.random.seed(0)` data and weights
 * come out bit for bit. The same seed always gives the same sequence.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RandomState } from "@chainrule/nn";
 *
 * // numpy.random.RandomState(0).random_sample() == 0.5488135039273248
 * assert.equal(new RandomState(0).random(), 0.5488135039273248);
 * assert.equal(new RandomState(7).randn(), new RandomState(7).randn());
 * ```
 */
export class RandomState {
  #mt = new Uint32Array(N);
  #pos = N;
  #hasGauss = false;
  #gauss = 0;

  /**
   * Seeds the generator (NumPy's `init_genrand`).
   *
   * @throws {RangeError} when the seed is not an integer in [0, 2³²).
   */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(
        `new RandomState: seed must be an integer in [0, 2^32), got ${describe(seed)}`,
      );
    }
    const mt = this.#mt;
    mt[0] = seed;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = Math.imul(1812433253, prev) + i;
    }
  }

  /** The next raw 32-bit word. */
  nextUint32(): number {
    if (this.#pos >= N) this.#twist();
    let y = this.#mt[this.#pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A uniform double in [0, 1) with 53 random bits (NumPy's `random_sample`). */
  random(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** A standard normal deviate (NumPy's legacy `randn`). */
  randn(): number {
    if (this.#hasGauss) {
      this.#hasGauss = false;
      return this.#gauss;
    }
    let x1: number, x2: number, r2: number;
    do {
      x1 = 2 * this.random() - 1;
      x2 = 2 * this.random() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt(-2 * Math.log(r2) / r2);
    this.#gauss = f * x1;
    this.#hasGauss = true;
    return f * x2;
  }

  /** A uniform integer in [0, n), as `floor(random() · n)`. */
  randint(n: number): number {
    return Math.floor(this.random() * n);
  }

  /** A random permutation of 0 … n−1 (Fisher–Yates from the top, one `random()` per swap). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i >= 1; i--) {
      const j = Math.floor(this.random() * (i + 1));
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** The whole state as plain JSON, so that training can resume exactly. */
  snapshot(): RandomStateSnapshot {
    return {
      key: Array.from(this.#mt),
      pos: this.#pos,
      hasGauss: this.#hasGauss,
      gauss: this.#gauss,
    };
  }

  /** Restores a state taken with {@linkcode RandomState.snapshot}. */
  restore(state: RandomStateSnapshot): void {
    if (!Array.isArray(state.key) || state.key.length !== N) {
      throw new TypeError(
        `RandomState.restore: key must hold ${N} words, got ${
          Array.isArray(state.key) ? state.key.length : describe(state.key)
        }`,
      );
    }
    if (!Number.isInteger(state.pos) || state.pos < 0 || state.pos > N) {
      throw new RangeError(
        `RandomState.restore: pos must be in [0, ${N}], got ${describe(state.pos)}`,
      );
    }
    this.#mt.set(state.key);
    this.#pos = state.pos;
    this.#hasGauss = Boolean(state.hasGauss);
    this.#gauss = Number(state.gauss);
  }

  #twist(): void {
    const mt = this.#mt;
    for (let i = 0; i < N; i++) {
      const y = (mt[i] & UPPER) | (mt[(i + 1) % N] & LOWER);
      mt[i] = mt[(i + M) % N] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.#pos = 0;
  }
}

/** Where a plugin gets its random numbers: a seed, or a generator shared with other code. */
export interface RandomOptions {
  /** Seed for a private generator. */
  seed?: number;
  /** A generator to draw from (takes precedence over `seed`). */
  random?: RandomState;
}

let fallback: RandomState | undefined;

/**
 * Seeds the generator that plugins draw from when given neither a `seed` nor a `random`.
 *
 * Until called, that generator starts from seed 0, so programs are reproducible by default.
 */
export function setGlobalSeed(seed: number): void {
  fallback = new RandomState(seed);
}

/** The generator that `options` asks for: its own, a fresh seeded one, or the global one. */
export function resolveRandom(options: RandomOptions = {}): RandomState {
  if (options.random) return options.random;
  if (options.seed !== undefined) return new RandomState(options.seed);
  fallback ??= new RandomState(0);
  return fallback;
}
