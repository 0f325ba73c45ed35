// The LSTM's float32 cells as wasm kernels (tools/wasm/recurrent_kernels.ts, in the committed
// float32 builds of backends/_wasm_kernels.ts): lstmForwardCells and lstmBackwardCells must
// give the bits of the JavaScript cell functions (backends/_recurrent_tasks.ts) and of the
// gate functions sigmoid32 and tanh32 (core/_fast_math.ts) they stand for, lane by lane,
// special values included.
import assert from "node:assert/strict";
import { PLAIN_KERNELS, RELAXED_KERNELS } from "../backends/_wasm_kernels.ts";
import {
  addStepGradientRows,
  lstmBackwardRows,
  type LstmCellKernels,
  lstmForwardRows32,
} from "../backends/_recurrent_tasks.ts";
import { fastMathSource, sigmoid32, tanh32 } from "../core/_fast_math.ts";
import { assertSameBits } from "./_threads.ts";

// The gate functions' tables and constants, as the workers get them.
const FAST_MATH = new Function(
  `${fastMathSource()}\nreturn { EXP_FRACTIONS, EXP_POWERS, INV_LN2_64, ROUND };`,
)() as { EXP_FRACTIONS: Float64Array; EXP_POWERS: Float64Array; INV_LN2_64: number; ROUND: number };

// Pre-activations a gate may meet, the edges of the clamps (±354 for tanh's 2x, 708 and −709
// for the sigmoid's −x) among them.
const SPECIALS = [
  0,
  -0,
  1e-30,
  -1e-30,
  1e-45, // the least float32 subnormal
  20,
  -20,
  400,
  -400,
  800,
  -800,
  NaN,
  Infinity,
  -Infinity,
  354,
  -354,
  354.5,
  -354.5,
  708,
  -708,
  709,
  -709,
  709.5,
  -709.5,
  3.4e38,
  -3.4e38,
];

type Kernels = LstmCellKernels & { memory: WebAssembly.Memory };

// An instance of one committed float32 build, on its own memory of `bytes`.
function instance(base64: string, bytes: number): Kernels {
  const binary = atob(base64);
  const code = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  const kernels = new WebAssembly.Instance(new WebAssembly.Module(code)).exports as unknown;
  const x = kernels as Kernels;
  x.memory.grow(Math.ceil(bytes / 65536));
  return x;
}

// Zeroed float32 arrays laid out one after another in the memory, 4 bytes apart (pairs of
// lanes on either alignment).
function arena(memory: WebAssembly.Memory, start: number) {
  let at = start;
  return (length: number) => {
    const array = new Float32Array(memory.buffer, at, length).fill(0);
    at += 4 * length + 4;
    return array;
  };
}

// A deterministic float32 value in (−scale, scale), or every 13th a special.
function filler(seed: number, scale: number) {
  let s = seed, k = 0;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    k++;
    return k % 13 === 0 ? SPECIALS[(k / 13) % SPECIALS.length] : (s / 2147483648 * 2 - 1) * scale;
  };
}

const BUILDS = [["plain", PLAIN_KERNELS], ["relaxed", RELAXED_KERNELS]] as const;

Deno.test("lstmExpFractions writes the gates' table; the powers built from bits are theirs", () => {
  const x = instance(PLAIN_KERNELS, 1 << 16);
  x.lstmExpFractions(1024);
  const table = new Float64Array(x.memory.buffer, 1024, 64);
  assertSameBits(table, FAST_MATH.EXP_FRACTIONS, "EXP_FRACTIONS");
  // The clamped arguments, v in [−708, 709], keep k >> 6 within [−1022, 1022] ...
  const k = (v: number) => ((v * FAST_MATH.INV_LN2_64 + FAST_MATH.ROUND) - FAST_MATH.ROUND) | 0;
  assert.equal(k(-708) >> 6, -1022);
  assert.equal(k(709) >> 6, 1022);
  // ... where ((k >> 6) + 1023) << 52 is EXP_POWERS[(k >> 6) + 1023], bit for bit.
  const view = new DataView(new ArrayBuffer(8));
  for (let e = -1022; e <= 1022; e++) {
    view.setBigUint64(0, BigInt(e + 1023) << 52n);
    assert.ok(Object.is(view.getFloat64(0), FAST_MATH.EXP_POWERS[e + 1023]), `2^${e}`);
  }
});

Deno.test("lstmForwardCells: sigmoid32's and tanh32's bits at every index, both lanes", async (t) => {
  // x from −712 to 712 by 1/512: k = round(64·v/ln 2) moves every ln 2/64 ≈ 0.0108 in x for
  // the sigmoid (v = −x) and every 0.0054 for tanh (v = 2x), so each k, with every k & 63
  // and k >> 6 that these reach, meets two or more consecutive units: both lanes.
  const sweep = Float32Array.from({ length: 712 * 1024 + 1 }, (_, q) => -712 + q / 512);
  const values = Float32Array.from([...sweep, ...SPECIALS]);
  const H = values.length; // odd: the last unit runs on the scalar code
  for (const [build, base64] of BUILDS) {
    await t.step(build, () => {
      const x = instance(base64, 4 * 8 * H + 4096);
      x.lstmExpFractions(0);
      const next = arena(x.memory, 1024);
      const [gates, cells, tanhCells, hiddens] = [next(4 * H), next(H), next(H), next(H)];
      // i and o sweep, f and g the sweep reversed (f·0 stays NaN for NaN f: c₀ = 0 is a product)
      for (let j = 0; j < H; j++) {
        gates[j] = gates[3 * H + j] = values[j];
        gates[H + j] = gates[2 * H + j] = values[H - 1 - j];
      }
      const reference = [gates.slice(), new Float32Array(H), new Float32Array(H)];
      reference.push(new Float32Array(H));
      const [g, c, tc, h] = reference;
      x.lstmForwardCells(
        gates.byteOffset,
        cells.byteOffset,
        tanhCells.byteOffset,
        hiddens.byteOffset,
        -1,
        1,
        H,
        0,
      );
      // The gates against the gate functions themselves, then the cells against the JS loop.
      const want = new Float32Array(4 * H);
      for (let j = 0; j < H; j++) {
        want[j] = sigmoid32(g[j]);
        want[H + j] = sigmoid32(g[H + j]);
        want[2 * H + j] = tanh32(g[2 * H + j]);
        want[3 * H + j] = sigmoid32(g[3 * H + j]);
      }
      assertSameBits(gates, want, `${build}: gates against sigmoid32 and tanh32`);
      lstmForwardRows32(g, c, tc, h, 0, 1, H, 0, 1);
      assertSameBits(gates, g, `${build}: gates`);
      assertSameBits(cells, c, `${build}: cells`);
      assertSameBits(tanhCells, tc, `${build}: tanh(cells)`);
      assertSameBits(hiddens, h, `${build}: hiddens`);
    });
  }
});

interface Shape {
  B: number;
  T: number;
  H: number;
  sequences: boolean;
  first: number;
  count: number;
}

// A task's rows [first, first + count) of a [T, B, ·] recurrence through all T steps,
// forward then backward, by the kernels and by the JS cell functions, compared at every step.
function recurrence(x: Kernels, { B, T, H, sequences, first, count }: Shape, what: string): void {
  const G = 4 * H, next = arena(x.memory, 1024 + 4 * ((B + H) % 2));
  const table = 512;
  x.lstmExpFractions(table);
  const gates = next(T * B * G), cells = next(T * B * H), tanhCells = next(T * B * H);
  const hiddens = next(T * B * H);
  const gatesFill = filler(B * 31 + H, 5);
  for (let q = 0; q < gates.length; q++) gates[q] = gatesFill();
  const [g, c, tc, h] = [gates.slice(), cells.slice(), tanhCells.slice(), hiddens.slice()];
  for (let t = 0; t < T; t++) {
    const row = t * B + first, prev = t > 0 ? cells.byteOffset + (row - B) * H * 4 : -1;
    const at = (array: Float32Array, width: number) => array.byteOffset + row * width * 4;
    x.lstmForwardCells(
      at(gates, G),
      at(cells, H),
      at(tanhCells, H),
      at(hiddens, H),
      prev,
      count,
      H,
      table,
    );
    lstmForwardRows32(g, c, tc, h, t, B, H, first, count);
    assertSameBits(gates, g, `${what}: gates at step ${t}`);
    assertSameBits(cells, c, `${what}: cells at step ${t}`);
    assertSameBits(tanhCells, tc, `${what}: tanh(cells) at step ${t}`);
    assertSameBits(hiddens, h, `${what}: hiddens at step ${t}`);
  }
  const dv = next(sequences ? B * T * H : B * H), dgates = next(T * B * G);
  const dh = next(B * H), dc = next(B * H);
  const dvFill = filler(H * 7 + B, 1), stateFill = filler(3, 2);
  for (let q = 0; q < dv.length; q++) dv[q] = dvFill();
  for (let q = 0; q < dh.length; q++) [dh[q], dc[q]] = [stateFill(), stateFill()];
  const [ddg, ddh, ddc] = [dgates.slice(), dh.slice(), dc.slice()];
  for (let t = T - 1; t >= 0; t--) {
    const row = t * B + first, prev = t > 0 ? cells.byteOffset + (row - B) * H * 4 : -1;
    const mode = sequences ? 1 : t === T - 1 ? 2 : 0;
    const dvAt = dv.byteOffset + (sequences ? first * T + t : first) * H * 4;
    x.lstmBackwardCells(
      gates.byteOffset + row * G * 4,
      tanhCells.byteOffset + row * H * 4,
      prev,
      dgates.byteOffset + row * G * 4,
      dh.byteOffset + first * H * 4,
      dc.byteOffset + first * H * 4,
      dvAt,
      (sequences ? T * H : H) * 4,
      mode,
      count,
      H,
    );
    addStepGradientRows(dv, ddh, t, T, H, sequences, first, count);
    lstmBackwardRows(g, c, tc, ddg, ddh, ddc, t, B, H, first, count);
    assertSameBits(dh, ddh, `${what}: dh at step ${t}`);
    assertSameBits(dgates, ddg, `${what}: dgates at step ${t}`);
    assertSameBits(dc, ddc, `${what}: dc at step ${t}`);
    // dh_{t−1} = dgates_t·Uᵀ would come next: new values, the same on both sides
    for (let q = first * H; q < (first + count) * H; q++) ddh[q] = dh[q] = stateFill();
  }
}

Deno.test("the cell kernels give the JS cell functions' bits, step by step", async (t) => {
  const shapes: Shape[] = [
    { B: 3, T: 4, H: 5, sequences: true, first: 1, count: 2 }, // odd H: pairs and a scalar
    { B: 4, T: 3, H: 6, sequences: false, first: 0, count: 4 },
    { B: 2, T: 5, H: 1, sequences: true, first: 0, count: 2 }, // scalar only
    { B: 5, T: 3, H: 7, sequences: false, first: 2, count: 3 },
    { B: 6, T: 4, H: 64, sequences: true, first: 3, count: 3 },
  ];
  for (const [build, base64] of BUILDS) {
    await t.step(build, () => {
      const x = instance(base64, 1 << 20);
      for (const shape of shapes) {
        const { B, T, H, sequences, first, count } = shape;
        const what = `${build} B ${B} T ${T} H ${H} ${sequences ? "sequences" : "last"} ` +
          `rows ${first}+${count}`;
        recurrence(x, shape, what);
      }
    });
  }
});
