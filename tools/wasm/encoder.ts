// A minimal WebAssembly binary encoder: just the module sections and the instructions that
// the matrix kernels use, so that the kernels are built from TypeScript source without any
// external tool. Opcodes follow the WebAssembly 2.0 core spec, the fixed-width SIMD proposal
// and the relaxed SIMD proposal.

/** Value types. */
export const i32 = 0x7f;
export const f32 = 0x7d;
export const f64 = 0x7c;
export const v128 = 0x7b;
/** A value type: i32, f32, f64 or v128. */
export type ValType = typeof i32 | typeof f32 | typeof f64 | typeof v128;

/** `value` as an unsigned LEB128: wasm's encoding of indices, sizes and opcode suffixes. */
export function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

function sleb(value: number): number[] {
  const out: number[] = [];
  while (true) {
    const byte = value & 0x7f;
    value >>= 7;
    const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...uleb(bytes.length), ...bytes];
}

function vector(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** A local variable or parameter, by index. */
export type Local = number;

/**
 * One function body under construction: a stack-machine instruction stream with helpers
 * named after the WebAssembly text format (`localGet` is `local.get`).
 */
export class FunctionBuilder {
  readonly params: ValType[];
  readonly locals: ValType[] = [];
  readonly code: number[] = [];

  constructor(params: ValType[]) {
    this.params = params;
  }

  /** Declares a new local and returns its index. */
  local(type: ValType): Local {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  #op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }

  #simd(opcode: number, ...rest: number[]): this {
    return this.#op(0xfd, ...uleb(opcode), ...rest);
  }

  // Bulk memory (memory 0): native copies, where a copyWithin or fill of a shared memory's
  // view goes byte by byte with relaxed atomics.
  /** memory.copy: [dst, src, bytes] → [] */
  memoryCopy(): this {
    return this.#op(0xfc, ...uleb(10), 0x00, 0x00);
  }
  /** memory.fill: [dst, byte, bytes] → [] */
  memoryFill(): this {
    return this.#op(0xfc, ...uleb(11), 0x00);
  }

  // Control flow. Every block is typed empty (0x40).
  block(): this {
    return this.#op(0x02, 0x40);
  }
  loop(): this {
    return this.#op(0x03, 0x40);
  }
  /** `if`, empty-typed unless a result type is given. */
  if(result = 0x40): this {
    return this.#op(0x04, result);
  }
  else(): this {
    return this.#op(0x05);
  }
  end(): this {
    return this.#op(0x0b);
  }
  br(depth: number): this {
    return this.#op(0x0c, ...uleb(depth));
  }
  brIf(depth: number): this {
    return this.#op(0x0d, ...uleb(depth));
  }
  call(index: number): this {
    return this.#op(0x10, ...uleb(index));
  }

  // Locals and constants.
  localGet(local: Local): this {
    return this.#op(0x20, ...uleb(local));
  }
  localSet(local: Local): this {
    return this.#op(0x21, ...uleb(local));
  }
  localTee(local: Local): this {
    return this.#op(0x22, ...uleb(local));
  }
  i32Const(value: number): this {
    return this.#op(0x41, ...sleb(value | 0));
  }

  // Scalar memory (align hint, byte offset).
  f32Load(offset = 0): this {
    return this.#op(0x2a, 2, ...uleb(offset));
  }
  f32Store(offset = 0): this {
    return this.#op(0x38, 2, ...uleb(offset));
  }
  f64Load(offset = 0): this {
    return this.#op(0x2b, 3, ...uleb(offset));
  }
  f64Store(offset = 0): this {
    return this.#op(0x39, 3, ...uleb(offset));
  }
  i32Store(offset = 0): this {
    return this.#op(0x36, 2, ...uleb(offset));
  }
  i32Load(offset = 0): this {
    return this.#op(0x28, 2, ...uleb(offset));
  }

  // i32 arithmetic and comparisons.
  i32Eqz(): this {
    return this.#op(0x45);
  }
  i32Eq(): this {
    return this.#op(0x46);
  }
  i32LtU(): this {
    return this.#op(0x49);
  }
  i32GtU(): this {
    return this.#op(0x4b);
  }
  i32GeU(): this {
    return this.#op(0x4f);
  }
  i32Add(): this {
    return this.#op(0x6a);
  }
  i32Sub(): this {
    return this.#op(0x6b);
  }
  i32Mul(): this {
    return this.#op(0x6c);
  }
  i32DivU(): this {
    return this.#op(0x6e);
  }
  i32RemU(): this {
    return this.#op(0x70);
  }
  i32And(): this {
    return this.#op(0x71);
  }
  i32Or(): this {
    return this.#op(0x72);
  }
  i32ShrU(): this {
    return this.#op(0x76);
  }
  f32Const0(): this {
    return this.#op(0x43, 0, 0, 0, 0);
  }
  select(): this {
    return this.#op(0x1b);
  }
  f32Gt(): this {
    return this.#op(0x5e);
  }
  f32Max(): this {
    return this.#op(0x97);
  }
  f32Add(): this {
    return this.#op(0x92);
  }
  f32Mul(): this {
    return this.#op(0x94);
  }
  f64Mul(): this {
    return this.#op(0xa2);
  }
  f64Const0(): this {
    return this.#op(0x44, 0, 0, 0, 0, 0, 0, 0, 0);
  }
  /** An f64 constant (its eight bytes, little-endian). */
  f64Const(value: number): this {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, value, true);
    return this.#op(0x44, ...bytes);
  }
  f64Gt(): this {
    return this.#op(0x64);
  }
  f64Lt(): this {
    return this.#op(0x63);
  }
  f64Ge(): this {
    return this.#op(0x66);
  }
  f64Max(): this {
    return this.#op(0xa5);
  }
  f64Add(): this {
    return this.#op(0xa0);
  }

  f32Div(): this {
    return this.#op(0x95);
  }
  f32Sqrt(): this {
    return this.#op(0x91);
  }
  f64Sub(): this {
    return this.#op(0xa1);
  }
  f64Div(): this {
    return this.#op(0xa3);
  }
  f64Sqrt(): this {
    return this.#op(0x9f);
  }
  f64PromoteF32(): this {
    return this.#op(0xbb);
  }
  f32DemoteF64(): this {
    return this.#op(0xb6);
  }
  /** Truncation toward zero; traps on NaN and outside i32's range. */
  i32TruncF64S(): this {
    return this.#op(0xaa);
  }
  f64ConvertI32S(): this {
    return this.#op(0xb7);
  }

  // SIMD (prefix 0xfd).
  /** Two float32 (8 bytes) into the low lanes, zeros above. */
  v128Load64Zero(offset = 0): this {
    return this.#simd(0x5d, 3, ...uleb(offset));
  }
  /** Stores lane `lane` of the i64x2 view (8 bytes). */
  v128Store64Lane(lane: number, offset = 0): this {
    return this.#simd(0x5b, 3, ...uleb(offset), lane);
  }
  f32x4DemoteF64x2Zero(): this {
    return this.#simd(0x5e);
  }
  f64x2PromoteLowF32x4(): this {
    return this.#simd(0x5f);
  }
  f32x4Splat(): this {
    return this.#simd(0x13);
  }
  f32x4Sqrt(): this {
    return this.#simd(0xe3);
  }
  f32x4Div(): this {
    return this.#simd(0xe7);
  }
  f64x2Splat(): this {
    return this.#simd(0x14);
  }
  f64x2Sqrt(): this {
    return this.#simd(0xef);
  }
  f64x2Sub(): this {
    return this.#simd(0xf1);
  }
  f64x2Div(): this {
    return this.#simd(0xf3);
  }
  v128Load(offset = 0): this {
    return this.#simd(0x00, 4, ...uleb(offset));
  }
  v128Load32Splat(offset = 0): this {
    return this.#simd(0x09, 2, ...uleb(offset));
  }
  v128Load64Splat(offset = 0): this {
    return this.#simd(0x0a, 3, ...uleb(offset));
  }
  v128Store(offset = 0): this {
    return this.#simd(0x0b, 4, ...uleb(offset));
  }
  v128Zero(): this {
    return this.#simd(0x0c, ...new Array(16).fill(0));
  }
  /** `i8x16.shuffle` with the lanes given as f32 lanes 0–7 (0–3 left operand, 4–7 right). */
  f32x4Shuffle(lanes: [number, number, number, number]): this {
    return this.#simd(0x0d, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
  }
  f32x4ExtractLane(lane: number): this {
    return this.#simd(0x1f, lane);
  }
  f64x2ExtractLane(lane: number): this {
    return this.#simd(0x21, lane);
  }
  f32x4Gt(): this {
    return this.#simd(0x44);
  }
  v128And(): this {
    return this.#simd(0x4e);
  }
  /** Pseudo-maximum `a < b ? b : a` (one `maxps`, unlike `f32x4.max`'s NaN and ±0 rules). */
  f32x4Pmax(): this {
    return this.#simd(0xeb);
  }
  /** Pseudo-maximum `a < b ? b : a` of two f64 lanes. */
  f64x2Pmax(): this {
    return this.#simd(0xf7);
  }
  f32x4Max(): this {
    return this.#simd(0xe9);
  }
  f32x4Add(): this {
    return this.#simd(0xe4);
  }
  f32x4Mul(): this {
    return this.#simd(0xe6);
  }
  /** Relaxed SIMD fused multiply-add: `a·b + c` for the stack `a b c`. */
  f32x4RelaxedMadd(): this {
    return this.#simd(0x105);
  }
  f64x2Gt(): this {
    return this.#simd(0x4a);
  }
  f64x2Lt(): this {
    return this.#simd(0x49);
  }
  f64x2Ge(): this {
    return this.#simd(0x4c);
  }
  /** 1 when both i64 lanes are nonzero, else 0. */
  i64x2AllTrue(): this {
    return this.#simd(0xc3);
  }
  i32x4ExtractLane(lane: number): this {
    return this.#simd(0x1b, lane);
  }
  /** Both f64 lanes truncated toward zero (saturating) into i32 lanes 0 and 1, zeros above. */
  i32x4TruncSatF64x2SZero(): this {
    return this.#simd(0xfc);
  }
  /** i32 lanes 0 and 1 as f64. */
  f64x2ConvertLowI32x4S(): this {
    return this.#simd(0xfe);
  }
  f64x2Max(): this {
    return this.#simd(0xf5);
  }
  f64x2Add(): this {
    return this.#simd(0xf0);
  }
  f64x2Mul(): this {
    return this.#simd(0xf2);
  }
  /** The float64 fused multiply-add of relaxed SIMD: `a·b + c` for the stack `a b c`. */
  f64x2RelaxedMadd(): this {
    return this.#simd(0x107);
  }

  /** The encoded body: local declarations, instructions, `end`. */
  encode(): number[] {
    const groups: number[][] = [];
    for (const type of this.locals) {
      const last = groups.at(-1);
      if (last && last[1] === type) last[0]++;
      else groups.push([1, type]);
    }
    const body = [...vector(groups.map(([n, t]) => [...uleb(n), t])), ...this.code, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

/** Where a module's memory comes from (see {@linkcode ModuleBuilder}). */
export interface MemoryOptions {
  /**
   * Import the memory as `env.memory`, shared, with this maximum in 64 KiB pages, instead of
   * defining and exporting its own: the build that worker threads instantiate on one
   * `WebAssembly.Memory({ shared: true })` (a shared memory must declare a maximum).
   */
  sharedMaximum?: number;
}

/**
 * A module of exported functions (no results) and one growable memory: its own, exported as
 * `memory`, or an imported shared one (`env.memory`, see {@linkcode MemoryOptions}).
 */
export class ModuleBuilder {
  readonly #functions: { name: string; fn: FunctionBuilder }[] = [];
  readonly #sharedMaximum: number | undefined;

  constructor(options: MemoryOptions = {}) {
    this.#sharedMaximum = options.sharedMaximum;
  }

  /** Adds an exported function and returns its builder; its index is the call order. */
  function(exportName: string, params: ValType[]): FunctionBuilder {
    const fn = new FunctionBuilder(params);
    this.#functions.push({ name: exportName, fn });
    return fn;
  }

  /** Index of the function exported as `exportName` (for `call`). */
  indexOf(exportName: string): number {
    const index = this.#functions.findIndex((f) => f.name === exportName);
    if (index < 0) throw new Error(`ModuleBuilder.indexOf: no function "${exportName}"`);
    return index;
  }

  /** The module's bytes. */
  encode(): Uint8Array {
    const types = this.#functions.map(({ fn }) => [0x60, ...vector(fn.params.map((t) => [t])), 0]);
    const shared = this.#sharedMaximum;
    // Limits: flags 0x00 (minimum only), 0x03 (minimum, maximum, shared); minimum 1 page.
    const memory = shared === undefined
      ? section(5, vector([[0x00, ...uleb(1)]]))
      : section(2, vector([[...name("env"), ...name("memory"), 0x02, 0x03, 1, ...uleb(shared)]]));
    const functionExports = this.#functions.map(({ name: n }, i) => [...name(n), 0x00, ...uleb(i)]);
    const bytes = [
      ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
      ...section(1, vector(types)),
      ...(shared === undefined ? [] : memory), // the import section comes before the functions
      ...section(3, vector(this.#functions.map((_, i) => uleb(i)))),
      ...(shared === undefined ? memory : []),
      ...section(
        7,
        vector(
          shared === undefined
            ? [[...name("memory"), 0x02, 0], ...functionExports]
            : functionExports,
        ),
      ),
      ...section(10, vector(this.#functions.map(({ fn }) => fn.encode()))),
    ];
    return new Uint8Array(bytes);
  }
}

/** `for (i = start; i < end; i += step) body()`, with `end` a local. */
export function forRange(
  f: FunctionBuilder,
  i: Local,
  start: () => void,
  end: Local,
  step: number,
  body: () => void,
): void {
  start();
  f.localSet(i);
  f.block().loop();
  f.localGet(i).localGet(end).i32GeU().brIf(1);
  body();
  f.localGet(i).i32Const(step).i32Add().localSet(i);
  f.br(0).end().end();
}
