// The LSTM's float32 cells as wasm kernels (float32 builds only): the arithmetic of the
// JavaScript cell functions lstmForwardRows32 and lstmBackwardRows (backends/_recurrent_tasks.ts)
// with the float32 gate functions sigmoid32 and tanh32 (core/_fast_math.ts), operation for
// operation in float64 and rounded to float32 where those store into a Float32Array, so the
// bits. Two hidden units at a time in f64x2 lanes, each lane doing the scalar sequence (no
// fused multiply-add); the last unit of an odd H by the same code in scalar f64.
//
// e^v = 2^(k/64)·e^r as in core/_fast_math.ts, for v clamped to [−708, 709]: k = round(64v/ln 2)
// by adding ROUND = 1.5·2^52 (then subtracting it for kf), so |k| ≤ 65465 and the sum's low
// 32 mantissa bits are k in two's complement, the int32 that `kf | 0` gives (for NaN the
// index is anything in range and the result NaN, as there). 2^(k/64) = EXP_FRACTIONS[k & 63]·
// 2^(k >> 6): the 64 fractions are not powers of two, and `lstmExpFractions` writes them into
// the memory (the call's descriptor area); the powers are built from their bits,
// ((k >> 6) + 1023) << 52, for k >> 6 in [−1022, 1022] (the clamps' range): normal doubles,
// where EXP_POWERS[e + 1023] is exactly that double (tests/lstm_cells_test.ts checks both).
//
// Pointers are byte offsets into the module's memory. The encoder names few integer and
// SIMD operations beyond the matrix kernels' needs; the others are emitted here as their
// bytes (WebAssembly 2.0 core and fixed-width SIMD opcodes).

import {
  f32,
  f64,
  forRange,
  type FunctionBuilder,
  i32,
  type Local,
  type ModuleBuilder,
  uleb,
  v128,
} from "./encoder.ts";
import { fastMathSource } from "../../core/_fast_math.ts";

// The constants and the fraction table of the gate functions, as the workers get them: the
// source text of core/_fast_math.ts's own values (a printed double reads back the same).
const FAST_MATH = new Function(
  `${fastMathSource()}\nreturn { EXP_FRACTIONS, INV_LN2_64, LN2_64_HI, LN2_64_LO, ROUND };`,
)() as {
  EXP_FRACTIONS: Float64Array;
  INV_LN2_64: number;
  LN2_64_HI: number;
  LN2_64_LO: number;
  ROUND: number;
};

// An instruction by its bytes; a SIMD one (prefix 0xfd) by its opcode and immediates.
function op(f: FunctionBuilder, ...bytes: number[]): void {
  f.code.push(...bytes);
}
function simd(f: FunctionBuilder, opcode: number, ...immediates: number[]): void {
  op(f, 0xfd, ...uleb(opcode), ...immediates);
}
function f64Bytes(value: number): number[] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value, true);
  return [...new Uint8Array(view.buffer)];
}

const I32_SHL = 0x74, I32_SHR_S = 0x75, I32_WRAP_I64 = 0xa7, I64_REINTERPRET_F64 = 0xbd;
const I64_CONST = 0x42, I64_SHL = 0x86, I64_EXTEND_I32_U = 0xad;
const F64_CONST = 0x44, F64_NEG = 0x9a, F64_REINTERPRET_I64 = 0xbf;
const V128_CONST = 0x0c, V128_LOAD64_LANE = 0x57;
const I32X4_SHR_S = 0xac, I32X4_ADD = 0xae, I64X2_SHL = 0xcb;
const F64X2_NEG = 0xed, F64X2_PMIN = 0xf6, F64X2_PMAX = 0xf7;

/**
 * The instructions on one element (scalar: f64 values, f32 in memory) or two (vector: f64x2
 * values, two f32 in memory), so that one generator writes both loops.
 */
interface Lanes {
  /** A value's type (f64 or v128), its float32 form's (f32 or v128), an index's (i32 or v128). */
  wide: typeof f64 | typeof v128;
  narrow: typeof f32 | typeof v128;
  index: typeof i32 | typeof v128;
  /** [address] → the float32 element(s) there, as float64. */
  load(f: FunctionBuilder): void;
  /** value → rounded to float32 (the narrow form). */
  round(f: FunctionBuilder): void;
  /** narrow → value. */
  widen(f: FunctionBuilder): void;
  /** [address, narrow] → []. */
  store(f: FunctionBuilder): void;
  constant(f: FunctionBuilder, value: number): void;
  add(f: FunctionBuilder): void;
  sub(f: FunctionBuilder): void;
  mul(f: FunctionBuilder): void;
  div(f: FunctionBuilder): void;
  neg(f: FunctionBuilder): void;
  /** [a, b] → b < a ? b : a (`f64x2.pmin`; NaN in a stays). */
  pmin(f: FunctionBuilder): void;
  /** [a, b] → a < b ? b : a (`f64x2.pmax`; NaN in a stays). */
  pmax(f: FunctionBuilder): void;
  /**
   * kf + 1.5·2^52 (kf integral, |kf| < 2^31) → kf as int32: the low 32 bits of the sum's
   * mantissa, two's complement (anything for NaN, whose results are NaN whatever the index).
   */
  index32(f: FunctionBuilder): void;
  /** Pushes EXP_FRACTIONS[k & 63] per lane, from the table at byte `table`. */
  fraction(f: FunctionBuilder, k: Local, table: Local): void;
  /** Pushes 2^(k >> 6) per lane, for k >> 6 in [−1022, 1022]. */
  power(f: FunctionBuilder, k: Local): void;
}

// `a` and `b` of the scalar pmin and pmax, which wasm has only as SIMD.
function scalar(f: FunctionBuilder): Lanes {
  const [a, b] = [f.local(f64), f.local(f64)];
  return {
    wide: f64,
    narrow: f32,
    index: i32,
    load: (f) => f.f32Load(0).f64PromoteF32(),
    round: (f) => f.f32DemoteF64(),
    widen: (f) => f.f64PromoteF32(),
    store: (f) => f.f32Store(0),
    constant: (f, value) => op(f, F64_CONST, ...f64Bytes(value)),
    add: (f) => f.f64Add(),
    sub: (f) => f.f64Sub(),
    mul: (f) => f.f64Mul(),
    div: (f) => f.f64Div(),
    neg: (f) => op(f, F64_NEG),
    pmin: (f) => {
      f.localSet(b).localSet(a);
      f.localGet(b).localGet(a).localGet(b).localGet(a).f64Lt().select();
    },
    pmax: (f) => {
      f.localSet(b).localSet(a);
      f.localGet(b).localGet(a).localGet(a).localGet(b).f64Lt().select();
    },
    index32: (f) => op(f, I64_REINTERPRET_F64, I32_WRAP_I64),
    fraction: (f, k, table) => {
      f.localGet(k).i32Const(63).i32And().i32Const(3);
      op(f, I32_SHL);
      f.localGet(table).i32Add().f64Load(0);
    },
    power: (f, k) => {
      f.localGet(k).i32Const(6);
      op(f, I32_SHR_S);
      f.i32Const(1023).i32Add();
      op(f, I64_EXTEND_I32_U, I64_CONST, 52, I64_SHL, F64_REINTERPRET_I64);
    },
  };
}

// The two-lane instructions. Their constants are set into locals here, ahead of the loops
// (V8 builds a v128.const from immediates each time it meets one); `fraction` gathers into
// a local of its own.
function vector(f: FunctionBuilder, constants: readonly number[]): Lanes {
  const fraction = f.local(v128);
  const locals = new Map<number, Local>();
  for (const value of constants) {
    simd(f, V128_CONST, ...f64Bytes(value), ...f64Bytes(value));
    locals.set(value, f.local(v128));
    f.localSet(locals.get(value)!);
  }
  const exponentBias = f.local(v128); // 1023 in each i32 lane
  simd(f, V128_CONST, ...Array.from({ length: 4 }, () => [0xff, 0x03, 0, 0]).flat());
  f.localSet(exponentBias);
  // The byte of lane `lane`'s fraction, table + (k & 63)·8; lane l's k is i32 lane 2l.
  const address = (f: FunctionBuilder, k: Local, table: Local, lane: number) => {
    f.localGet(k).i32x4ExtractLane(2 * lane).i32Const(63).i32And().i32Const(3);
    op(f, I32_SHL);
    f.localGet(table).i32Add();
  };
  return {
    wide: v128,
    narrow: v128,
    index: v128,
    load: (f) => f.v128Load64Zero(0).f64x2PromoteLowF32x4(),
    round: (f) => f.f32x4DemoteF64x2Zero(),
    widen: (f) => f.f64x2PromoteLowF32x4(),
    store: (f) => f.v128Store64Lane(0, 0),
    constant: (f, value) => {
      const local = locals.get(value);
      if (local === undefined) throw new Error(`recurrentKernels: ${value} was not hoisted`);
      f.localGet(local);
    },
    add: (f) => f.f64x2Add(),
    sub: (f) => f.f64x2Sub(),
    mul: (f) => f.f64x2Mul(),
    div: (f) => f.f64x2Div(),
    neg: (f) => simd(f, F64X2_NEG),
    pmin: (f) => simd(f, F64X2_PMIN),
    pmax: (f) => simd(f, F64X2_PMAX),
    index32: () => {}, // k of lane l is already i32 lane 2l
    fraction: (f, k, table) => {
      address(f, k, table, 0);
      f.v128Load64Splat(0).localSet(fraction);
      address(f, k, table, 1);
      f.localGet(fraction);
      simd(f, V128_LOAD64_LANE, 3, 0, 1); // align 8, offset 0, lane 1
    },
    power: (f, k) => {
      // ((k >> 6) + 1023) << 52 in each i64 lane, the double 2^(k >> 6): the shift keeps the
      // exponent (11 bits, from i32 lane 2l) and drops the lane above.
      f.localGet(k).i32Const(6);
      simd(f, I32X4_SHR_S);
      f.localGet(exponentBias);
      simd(f, I32X4_ADD);
      f.i32Const(52);
      simd(f, I64X2_SHL);
    },
  };
}

/** The locals one lane width's gate functions work in. */
interface GateLocals {
  v: Local;
  kf: Local;
  r: Local;
  scale: Local;
  k: Local;
}

function gateLocals(f: FunctionBuilder, L: Lanes): GateLocals {
  return {
    v: f.local(L.wide),
    kf: f.local(L.wide),
    r: f.local(L.wide),
    scale: f.local(L.wide),
    k: f.local(L.index),
  };
}

// kf = round(v·64/ln 2) by adding and subtracting ROUND = 1.5·2^52, k = kf as int32 (from
// the bits of the sum), and r = (v − kf·HI) − kf·LO, from the clamped argument in `g.v`.
function reduce(f: FunctionBuilder, L: Lanes, g: GateLocals): void {
  f.localGet(g.v);
  L.constant(f, FAST_MATH.INV_LN2_64);
  L.mul(f);
  L.constant(f, FAST_MATH.ROUND);
  L.add(f);
  f.localTee(g.kf);
  L.index32(f);
  f.localSet(g.k);
  f.localGet(g.kf);
  L.constant(f, FAST_MATH.ROUND);
  L.sub(f);
  f.localSet(g.kf);
  f.localGet(g.v).localGet(g.kf);
  L.constant(f, FAST_MATH.LN2_64_HI);
  L.mul(f);
  L.sub(f);
  f.localGet(g.kf);
  L.constant(f, FAST_MATH.LN2_64_LO);
  L.mul(f);
  L.sub(f);
  f.localSet(g.r);
}

/** Every constant the gate functions and the cells use, for `vector`. */
const CONSTANTS: readonly number[] = [
  FAST_MATH.INV_LN2_64,
  FAST_MATH.ROUND,
  FAST_MATH.LN2_64_HI,
  FAST_MATH.LN2_64_LO,
  -708,
  708,
  709,
  0,
  1,
  2,
  0.5,
  1 / 6,
  1 / 24,
];

// Pushes r·(c[0] + r·(c[1] + … + r·c[n−1])) when `times` (the e^r − 1 of tanh32), else
// c[0] + r·(c[1] + …) (sigmoid32's p, with c[0] = 1), nested as the JavaScript writes them.
function polynomial(f: FunctionBuilder, L: Lanes, r: Local, c: number[], times: boolean): void {
  if (times) f.localGet(r);
  c.forEach((coefficient, i) => {
    L.constant(f, coefficient);
    if (i < c.length - 1) f.localGet(r);
  });
  for (let i = 0; i < c.length - 1; i++) {
    L.mul(f);
    L.add(f);
  }
  if (times) L.mul(f);
}

// σ(x) of sigmoid32: v = x > 708 ? −708 : x < −709 ? 709 : −x, which is pmin(pmax(−x, −708),
// 709) (NaN stays NaN), p = 1 + r(1 + r(1/2 + r/6)), then 1/(1 + p·EXP_FRACTIONS[k & 63]·
// 2^(k >> 6)). Pushes the value.
function sigmoid32(f: FunctionBuilder, L: Lanes, g: GateLocals, x: Local, table: Local): void {
  f.localGet(x);
  L.neg(f);
  L.constant(f, -708);
  L.pmax(f);
  L.constant(f, 709);
  L.pmin(f);
  f.localSet(g.v);
  reduce(f, L, g);
  L.constant(f, 1);
  L.constant(f, 1);
  polynomial(f, L, g.r, [1, 1, 0.5, 1 / 6], false);
  L.fraction(f, g.k, table);
  L.mul(f);
  L.power(f, g.k);
  L.mul(f);
  L.add(f);
  L.div(f);
}

// tanh(x) of tanh32: v = x < −354 ? −708 : x > 354 ? 708 : 2x, which is pmin(pmax(2x, −708),
// 708) (2x is exact or ±∞; NaN stays NaN), scale = 2^(k/64), m = (scale − 1) +
// scale·r(1 + r(1/2 + r(1/6 + r/24))), then m/(m + 2). Pushes the value.
function tanh32(f: FunctionBuilder, L: Lanes, g: GateLocals, x: Local, table: Local): void {
  L.constant(f, 2);
  f.localGet(x);
  L.mul(f);
  L.constant(f, -708);
  L.pmax(f);
  L.constant(f, 708);
  L.pmin(f);
  f.localSet(g.v);
  reduce(f, L, g);
  L.fraction(f, g.k, table);
  L.power(f, g.k);
  L.mul(f);
  f.localSet(g.scale);
  f.localGet(g.scale);
  L.constant(f, 1);
  L.sub(f);
  f.localGet(g.scale);
  polynomial(f, L, g.r, [1, 0.5, 1 / 6, 1 / 24], true);
  L.mul(f);
  L.add(f);
  f.localSet(g.scale); // m
  f.localGet(g.scale).localGet(g.scale);
  L.constant(f, 2);
  L.add(f);
  L.div(f);
}

// Pushes the value(s) at byte base + j.
function loadAt(f: FunctionBuilder, L: Lanes, base: Local, j: Local): void {
  f.localGet(base).localGet(j).i32Add();
  L.load(f);
}

// Pushes c_{t−1} at byte prev + j, or 0 at the first step (prev = −1), as the JavaScript's
// `t > 0 ? cells[prev + j] : 0`.
function previousCell(f: FunctionBuilder, L: Lanes, prev: Local, j: Local, first: Local): void {
  f.localGet(first).if(L.wide);
  L.constant(f, 0);
  f.else();
  loadAt(f, L, prev, j);
  f.end();
}

/**
 * lstmForwardCells(gates, cells, tanhCells, hiddens, prev, rows, hidden, table): step t's cells
 * for `rows` consecutive batch rows, as lstmForwardRows32: gates [rows, 4H] (the rows' block at
 * step t) holds the pre-activations and becomes i, f, g, o (sigmoid32, sigmoid32, tanh32,
 * sigmoid32, rounded to float32); cells, tanhCells and hiddens [rows, H] get c = f·c_{t−1} +
 * i·g, tanh32(c) and o·tanh32(c), with c_{t−1} from prev [rows, H] (−1 at the first step:
 * c₀ = 0). `table`: the 64 doubles of `lstmExpFractions`.
 */
function lstmForwardCells(m: ModuleBuilder): void {
  const f = m.function("lstmForwardCells", [i32, i32, i32, i32, i32, i32, i32, i32]);
  const [gates, cells, tanhCells, hiddens, prev, rows, hidden, table] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [row, j, first, h4, pairs, address] = [0, 0, 0, 0, 0, 0].map(() => f.local(i32));
  f.localGet(prev).i32Const(-1).i32Eq().localSet(first);
  f.localGet(hidden).i32Const(4).i32Mul().localSet(h4);
  f.localGet(hidden).i32Const(-2).i32And().i32Const(4).i32Mul().localSet(pairs);
  const [pair, single] = [vector(f, CONSTANTS), scalar(f)];
  const cell = (L: Lanes) => {
    const g = gateLocals(f, L);
    const [x, gi, gf, gg, go, c, tc] = [0, 0, 0, 0, 0, 0, 0].map(() => f.local(L.wide));
    const rounded = f.local(L.narrow);
    // gate = activation(pre-activation at gates + offset·H + j), stored rounded to float32
    const gate = (offset: number, out: Local, activation: typeof sigmoid32) => {
      f.localGet(gates).localGet(j).i32Add();
      for (let q = 0; q < offset; q++) f.localGet(h4).i32Add();
      f.localTee(address);
      L.load(f);
      f.localSet(x);
      f.localGet(address);
      activation(f, L, g, x, table);
      L.round(f);
      f.localTee(rounded);
      L.store(f);
      f.localGet(rounded);
      L.widen(f);
      f.localSet(out);
    };
    // stores `value` rounded to float32 at base + j
    const store = (base: Local, value: () => void) => {
      f.localGet(base).localGet(j).i32Add();
      value();
      L.round(f);
      L.store(f);
    };
    gate(0, gi, sigmoid32);
    gate(1, gf, sigmoid32);
    gate(2, gg, tanh32);
    gate(3, go, sigmoid32);
    // c = f·c_{t−1} + i·g
    f.localGet(gf);
    previousCell(f, L, prev, j, first);
    L.mul(f);
    f.localGet(gi).localGet(gg);
    L.mul(f);
    L.add(f);
    f.localSet(c);
    store(cells, () => f.localGet(c));
    tanh32(f, L, g, c, table);
    f.localSet(tc);
    store(tanhCells, () => f.localGet(tc));
    store(hiddens, () => {
      f.localGet(go).localGet(tc);
      L.mul(f);
    });
  };
  forRange(f, row, () => f.i32Const(0), rows, 1, () => {
    forRange(f, j, () => f.i32Const(0), pairs, 8, () => cell(pair));
    forRange(f, j, () => f.localGet(pairs), h4, 4, () => cell(single));
    f.localGet(gates).localGet(h4).i32Const(4).i32Mul().i32Add().localSet(gates);
    for (const base of [cells, tanhCells, hiddens, prev]) {
      f.localGet(base).localGet(h4).i32Add().localSet(base);
    }
  });
}

/**
 * lstmBackwardCells(gates, tanhCells, prev, dgates, dh, dc, dv, dvStride, mode, rows, hidden):
 * step t's gate gradients for `rows` consecutive batch rows, as addStepGradientRows then
 * lstmBackwardRows. First dh [rows, H] takes the step's output gradient: mode 1 dh += dv
 * (every step's outputs), mode 2 dh = dv (the last step's), mode 0 nothing; dv's rows lie
 * dvStride bytes apart. Then from gates [rows, 4H] (i, f, g, o), tanhCells [rows, H] and
 * c_{t−1} at prev [rows, H] (−1 at the first step: c₀ = 0): dgates [rows, 4H] and dc [rows, H]
 * (in: from step t + 1; out: to step t − 1).
 */
function lstmBackwardCells(m: ModuleBuilder): void {
  const params: (typeof i32)[] = new Array(11).fill(i32);
  const f = m.function("lstmBackwardCells", params);
  const [gates, tanhCells, prev, dgates, dh, dc] = [0, 1, 2, 3, 4, 5];
  const [dv, dvStride, mode, rows, hidden] = [6, 7, 8, 9, 10];
  const [row, j, first, h4, pairs, quads] = [0, 0, 0, 0, 0, 0].map(() => f.local(i32));
  f.localGet(prev).i32Const(-1).i32Eq().localSet(first);
  f.localGet(hidden).i32Const(4).i32Mul().localSet(h4);
  f.localGet(hidden).i32Const(-2).i32And().i32Const(4).i32Mul().localSet(pairs);
  f.localGet(hidden).i32Const(-4).i32And().i32Const(4).i32Mul().localSet(quads);
  const [pair, single] = [vector(f, [0, 1]), scalar(f)];
  // dc += dh⊙o⊙(1−tanh²c)  dpre_i = dc⊙g⊙i(1−i)  dpre_f = dc⊙c_{t−1}⊙f(1−f)  dpre_g = dc⊙i⊙(1−g²)  dpre_o = dh⊙tanh(c)⊙o(1−o)  dc_{t−1} = dc⊙f
  const cell = (L: Lanes) => {
    const [gi, gf, gg, go, tc, dhj, dcj] = [0, 0, 0, 0, 0, 0, 0].map(() => f.local(L.wide));
    const gateAt = (offset: number, base: Local) => {
      f.localGet(base).localGet(j).i32Add();
      for (let q = 0; q < offset; q++) f.localGet(h4).i32Add();
    };
    [gi, gf, gg, go].forEach((gate, offset) => {
      gateAt(offset, gates);
      L.load(f);
      f.localSet(gate);
    });
    loadAt(f, L, tanhCells, j);
    f.localSet(tc);
    loadAt(f, L, dh, j);
    f.localSet(dhj);
    // dcj = dc + dh·o·(1 − tc·tc)
    loadAt(f, L, dc, j);
    f.localGet(dhj).localGet(go);
    L.mul(f);
    L.constant(f, 1);
    f.localGet(tc).localGet(tc);
    L.mul(f);
    L.sub(f);
    L.mul(f);
    L.add(f);
    f.localSet(dcj);
    // one minus `value`
    const oneMinus = (value: () => void) => {
      L.constant(f, 1);
      value();
      L.sub(f);
    };
    // dgates at `offset`·H = ((a·b)·c)·d, each factor pushed by its function, rounded
    const dgate = (offset: number, factors: (() => void)[]) => {
      gateAt(offset, dgates);
      factors[0]();
      factors.slice(1).forEach((factor) => {
        factor();
        L.mul(f);
      });
      L.round(f);
      L.store(f);
    };
    const get = (local: Local) => () => f.localGet(local);
    dgate(0, [get(dcj), get(gg), get(gi), () => oneMinus(get(gi))]);
    dgate(1, [
      get(dcj),
      () => previousCell(f, L, prev, j, first),
      get(gf),
      () => oneMinus(get(gf)),
    ]);
    dgate(2, [get(dcj), get(gi), () =>
      oneMinus(() => {
        f.localGet(gg).localGet(gg);
        L.mul(f);
      })]);
    dgate(3, [get(dhj), get(tc), get(go), () => oneMinus(get(go))]);
    // dc_{t−1} = dcj·f
    f.localGet(dc).localGet(j).i32Add().localGet(dcj).localGet(gf);
    L.mul(f);
    L.round(f);
    L.store(f);
  };
  forRange(f, row, () => f.i32Const(0), rows, 1, () => {
    // The step's output gradient into dh: float32 sums (a float64 sum of two float32 rounded
    // to float32 is their float32 sum), or a copy.
    f.localGet(mode).i32Const(1).i32Eq().if();
    forRange(f, j, () => f.i32Const(0), quads, 16, () => {
      f.localGet(dh).localGet(j).i32Add().localGet(dh).localGet(j).i32Add().v128Load(0);
      f.localGet(dv).localGet(j).i32Add().v128Load(0).f32x4Add().v128Store(0);
    });
    forRange(f, j, () => f.localGet(quads), h4, 4, () => {
      f.localGet(dh).localGet(j).i32Add().localGet(dh).localGet(j).i32Add().f32Load(0);
      f.localGet(dv).localGet(j).i32Add().f32Load(0).f32Add().f32Store(0);
    });
    f.end();
    f.localGet(mode).i32Const(2).i32Eq().if();
    f.localGet(dh).localGet(dv).localGet(h4).memoryCopy();
    f.end();
    forRange(f, j, () => f.i32Const(0), pairs, 8, () => cell(pair));
    forRange(f, j, () => f.localGet(pairs), h4, 4, () => cell(single));
    f.localGet(gates).localGet(h4).i32Const(4).i32Mul().i32Add().localSet(gates);
    f.localGet(dgates).localGet(h4).i32Const(4).i32Mul().i32Add().localSet(dgates);
    for (const base of [tanhCells, prev, dh, dc]) {
      f.localGet(base).localGet(h4).i32Add().localSet(base);
    }
    f.localGet(dv).localGet(dvStride).i32Add().localSet(dv);
  });
}

/** lstmExpFractions(at): writes the 64 doubles 2^(j/64) of core/_fast_math.ts at byte `at`. */
function lstmExpFractions(m: ModuleBuilder): void {
  const f = m.function("lstmExpFractions", [i32]);
  FAST_MATH.EXP_FRACTIONS.forEach((value, q) => {
    f.localGet(0);
    op(f, F64_CONST, ...f64Bytes(value));
    f.f64Store(8 * q);
  });
}

/** Adds the LSTM's cell kernels to a float32 module (see the top of this file). */
export function recurrentKernels(m: ModuleBuilder): void {
  lstmForwardCells(m);
  lstmBackwardCells(m);
  lstmExpFractions(m);
}
