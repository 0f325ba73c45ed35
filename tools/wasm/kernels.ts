// The matrix kernels of the `wasm` backend (a float32 and a float64 build), written against
// the encoder.
//
// Dimension letters: the product is C[m,n] = L[m,k]·R[k,n] with k the reduction. Both
// operands are first packed into panels (GotoBLAS style) so that the micro-kernel reads
// them sequentially whatever their layout and transposition:
//   left  → lp[ib][p][MR]: panel ib holds rows ib·MR … ib·MR+MR−1, one MR-vector per p
//   right → rp[jb][p][NR]: panel jb holds cols jb·NR … jb·NR+NR−1, one NR-vector per p
// Panels past the matrix edge are padded with zeros; the driver sends edge tiles through a
// scratch tile so that C keeps its natural row-major layout. All pointers are byte offsets
// into the module's memory; leading dimensions are in elements.

import {
  f32,
  f64,
  forRange,
  type FunctionBuilder,
  i32,
  type Local,
  ModuleBuilder,
  v128,
  type ValType,
} from "./encoder.ts";
import { recurrentKernels } from "./recurrent_kernels.ts";

/** Shape of the register tile and of the cache blocks. */
export interface KernelConfig {
  /** Rows of the register tile (broadcast from the left panel). */
  mr: number;
  /** Columns of the register tile, a multiple of the lanes per vector (4 f32, 2 f64). */
  nr: number;
  /** Reduction block: the slice of a right panel (kc·nr floats) that stays in L1. */
  kc: number;
  /** Left panels per block: mc·mr·kc floats of the left operand stay in L2. */
  mc: number;
  /** Use `relaxed_madd` (fused, one instruction) rather than `mul` + `add`. */
  relaxed: boolean;
  /** Element type; `"f32"` when omitted. */
  float?: "f32" | "f64";
  /**
   * Import a shared memory (`env.memory`, at most {@linkcode SHARED_MAXIMUM_PAGES}) instead of
   * owning one: the build for worker threads, which all instantiate it on one memory.
   */
  shared?: boolean;
}

/** The maximum a shared kernel memory declares: 65,536 pages of 64 KiB, all of wasm32's 4 GiB. */
export const SHARED_MAXIMUM_PAGES = 65536;

/** The tile and blocking the backend ships with (chosen by measurement, see docs/speed.md). */
export const DEFAULT_CONFIG: Omit<KernelConfig, "relaxed"> = { mr: 6, nr: 8, kc: 256, mc: 32 };

/**
 * The float64 build: f64x2 holds half as many lanes, so the tile keeps 6×4 (twelve
 * accumulator vectors, as the float32 6×8 tile) within the sixteen SIMD registers of x86-64.
 */
export const DEFAULT_CONFIG_F64: Omit<KernelConfig, "relaxed"> = {
  mr: 6,
  nr: 4,
  kc: 256,
  mc: 32,
  float: "f64",
};

/** The instructions that differ between the float32 and the float64 kernels. */
interface Float {
  /** Bytes per element. */
  bytes: number;
  /** Elements per v128. */
  lanes: number;
  type: ValType;
  load(f: FunctionBuilder, offset: number): void;
  store(f: FunctionBuilder, offset: number): void;
  zero(f: FunctionBuilder): void;
  gt(f: FunctionBuilder): void;
  max(f: FunctionBuilder): void;
  add(f: FunctionBuilder): void;
  mul(f: FunctionBuilder): void;
  extract(f: FunctionBuilder, lane: number): void;
  splat(f: FunctionBuilder, offset: number): void;
  vgt(f: FunctionBuilder): void;
  /** `a < b ? b : a`: relu as pmax(x, 0) keeps NaN (NaN < 0 is false), in one instruction. */
  vmax(f: FunctionBuilder): void;
  vadd(f: FunctionBuilder): void;
  vmul(f: FunctionBuilder): void;
  vmadd(f: FunctionBuilder): void;
}

const F32: Float = {
  bytes: 4,
  lanes: 4,
  type: f32,
  load: (f, o) => f.f32Load(o),
  store: (f, o) => f.f32Store(o),
  zero: (f) => f.f32Const0(),
  gt: (f) => f.f32Gt(),
  max: (f) => f.f32Max(),
  add: (f) => f.f32Add(),
  mul: (f) => f.f32Mul(),
  extract: (f, lane) => f.f32x4ExtractLane(lane),
  splat: (f, o) => f.v128Load32Splat(o),
  vgt: (f) => f.f32x4Gt(),
  vmax: (f) => f.f32x4Pmax(),
  vadd: (f) => f.f32x4Add(),
  vmul: (f) => f.f32x4Mul(),
  vmadd: (f) => f.f32x4RelaxedMadd(),
};

const F64: Float = {
  bytes: 8,
  lanes: 2,
  type: f64,
  load: (f, o) => f.f64Load(o),
  store: (f, o) => f.f64Store(o),
  zero: (f) => f.f64Const0(),
  gt: (f) => f.f64Gt(),
  max: (f) => f.f64Max(),
  add: (f) => f.f64Add(),
  mul: (f) => f.f64Mul(),
  extract: (f, lane) => f.f64x2ExtractLane(lane),
  splat: (f, o) => f.v128Load64Splat(o),
  vgt: (f) => f.f64x2Gt(),
  vmax: (f) => f.f64x2Pmax(),
  vadd: (f) => f.f64x2Add(),
  vmul: (f) => f.f64x2Mul(),
  vmadd: (f) => f.f64x2RelaxedMadd(),
};

/**
 * tile(lp, rp, c, ldc, kc, load): C[mr, nr] (row stride ldc bytes) = (load ? C : 0) +
 * Σ_p lp[p][mr] ⊗ rp[p][nr], the reduction unrolled by two.
 */
function tileKernel(m: ModuleBuilder, cfg: KernelConfig, t: Float): void {
  const { mr, nr, relaxed } = cfg;
  const { bytes } = t;
  const nv = nr / t.lanes;
  const f = m.function("tile", [i32, i32, i32, i32, i32, i32]);
  const [lp, rp, c, ldc, kc, load] = [0, 1, 2, 3, 4, 5];
  const row = f.local(i32);
  const acc = Array.from({ length: mr }, () => Array.from({ length: nv }, () => f.local(v128)));
  const b = Array.from({ length: nv }, () => f.local(v128));
  const a = f.local(v128);
  const product = relaxed ? undefined : f.local(v128);

  // acc = load ? C : 0
  f.localGet(c).localSet(row);
  for (let r = 0; r < mr; r++) {
    for (let v = 0; v < nv; v++) {
      f.localGet(load).if();
      f.localGet(row).v128Load(16 * v).localSet(acc[r][v]);
      f.else().v128Zero().localSet(acc[r][v]).end();
    }
    f.localGet(row).localGet(ldc).i32Add().localSet(row);
  }

  const step = (offset: number) => {
    for (let v = 0; v < nv; v++) {
      f.localGet(rp).v128Load(offset * nr * bytes + 16 * v).localSet(b[v]);
    }
    for (let r = 0; r < mr; r++) {
      f.localGet(lp);
      t.splat(f, offset * mr * bytes + bytes * r);
      f.localSet(a);
      for (let v = 0; v < nv; v++) {
        if (relaxed) {
          f.localGet(a).localGet(b[v]).localGet(acc[r][v]);
          t.vmadd(f);
        } else {
          f.localGet(a).localGet(b[v]);
          t.vmul(f);
          f.localSet(product!);
          f.localGet(acc[r][v]).localGet(product!);
          t.vadd(f);
        }
        f.localSet(acc[r][v]);
      }
    }
  };
  // An odd step first, then pairs.
  f.localGet(kc).i32Const(1).i32And().if();
  step(0);
  f.localGet(lp).i32Const(mr * bytes).i32Add().localSet(lp);
  f.localGet(rp).i32Const(nr * bytes).i32Add().localSet(rp);
  f.end();
  f.localGet(kc).i32Const(1).i32ShrU().localTee(kc).if().loop();
  step(0);
  step(1);
  f.localGet(lp).i32Const(2 * mr * bytes).i32Add().localSet(lp);
  f.localGet(rp).i32Const(2 * nr * bytes).i32Add().localSet(rp);
  f.localGet(kc).i32Const(1).i32Sub().localTee(kc).brIf(0);
  f.end().end();

  f.localGet(c).localSet(row);
  for (let r = 0; r < mr; r++) {
    for (let v = 0; v < nv; v++) f.localGet(row).localGet(acc[r][v]).v128Store(16 * v);
    f.localGet(row).localGet(ldc).i32Add().localSet(row);
  }
}

/**
 * packRows(src, ld, rows, cols, dst): panels of `width` columns of a row-major
 * src[rows, ld]: dst[jb][p][width] = src[p, jb·width + j], zero past `cols`. Used where the
 * reduction runs down the source's rows (the right operand of `a·b`, both of `aᵀ·b`).
 */
function packRows(m: ModuleBuilder, exportName: string, width: number, t: Float): void {
  const { bytes } = t;
  const f = m.function(exportName, [i32, i32, i32, i32, i32]);
  const [src, ld, rows, cols, dst] = [0, 1, 2, 3, 4];
  const [col0, p, from, full, valid] = [0, 0, 0, 0, 0].map(() => f.local(i32));
  // full = cols − cols mod width: panels below it copy whole vectors.
  f.localGet(cols).localGet(cols).i32Const(width).i32RemU().i32Sub().localSet(full);
  forRange(f, col0, () => f.i32Const(0), cols, width, () => {
    forRange(f, p, () => f.i32Const(0), rows, 1, () => {
      // from = src + (p·ld + col0)·bytes
      f.localGet(p).localGet(ld).i32Mul().localGet(col0).i32Add().i32Const(bytes).i32Mul()
        .localGet(src).i32Add().localSet(from);
      f.localGet(col0).localGet(full).i32LtU().if();
      const vectors = Math.floor(width / t.lanes);
      for (let v = 0; v < vectors; v++) {
        f.localGet(dst).localGet(from).v128Load(16 * v).v128Store(16 * v);
      }
      for (let q = t.lanes * vectors; q < width; q++) {
        f.localGet(dst).localGet(from);
        t.load(f, bytes * q);
        t.store(f, bytes * q);
      }
      f.else();
      f.localGet(cols).localGet(col0).i32Sub().localSet(valid);
      for (let q = 0; q < width; q++) {
        f.localGet(dst);
        f.i32Const(q).localGet(valid).i32LtU().if(t.type);
        f.localGet(from);
        t.load(f, bytes * q);
        f.else();
        t.zero(f);
        f.end();
        t.store(f, bytes * q);
      }
      f.end();
      f.localGet(dst).i32Const(width * bytes).i32Add().localSet(dst);
    });
  });
}

/**
 * packCols(src, ld, rows, cols, dst): panels of `width` rows of a row-major src[rows, ld],
 * transposed: dst[ib][p][width] = src[ib·width + r, p] for p < cols, zero past `rows`. Used
 * where the reduction runs along the source's rows (the left operand of `a·b`, both of
 * `a·bᵀ`). A full panel is transposed a vector of columns at a time (`packColsBlock`); the
 * last, partial panel and the cols mod lanes last columns element by element.
 */
function packCols(m: ModuleBuilder, exportName: string, width: number, t: Float): void {
  const { bytes, lanes } = t;
  const f = m.function(exportName, [i32, i32, i32, i32, i32]);
  const [src, ld, rows, cols, dst] = [0, 1, 2, 3, 4];
  const [row0, r, p, from, to, vectors] = [0, 0, 0, 0, 0, 0].map(() => f.local(i32));
  const at = Array.from({ length: width }, () => f.local(i32)); // each row's next column
  const v = Array.from({ length: width }, () => f.local(v128));
  const tmp = Array.from({ length: 4 }, () => f.local(v128));
  f.localGet(cols).localGet(cols).i32Const(lanes).i32RemU().i32Sub().localSet(vectors);
  forRange(f, row0, () => f.i32Const(0), rows, width, () => {
    f.localGet(row0).i32Const(width).i32Add().localGet(rows).i32GtU().i32Eqz().if();
    // A full panel.
    for (let q = 0; q < width; q++) {
      f.localGet(row0).i32Const(q).i32Add().localGet(ld).i32Mul().i32Const(bytes).i32Mul()
        .localGet(src).i32Add().localSet(at[q]);
    }
    f.localGet(dst).localSet(to);
    forRange(f, p, () => f.i32Const(0), vectors, lanes, () => {
      for (let q = 0; q < width; q++) f.localGet(at[q]).v128Load(0).localSet(v[q]);
      packColsBlock(f, t, width, to, v, tmp);
      for (let q = 0; q < width; q++) f.localGet(at[q]).i32Const(16).i32Add().localSet(at[q]);
      f.localGet(to).i32Const(lanes * width * bytes).i32Add().localSet(to);
    });
    forRange(f, p, () => f.localGet(vectors), cols, 1, () => {
      for (let q = 0; q < width; q++) {
        f.localGet(to).localGet(at[q]);
        t.load(f, 0);
        t.store(f, q * bytes);
        f.localGet(at[q]).i32Const(bytes).i32Add().localSet(at[q]);
      }
      f.localGet(to).i32Const(width * bytes).i32Add().localSet(to);
    });
    f.else();
    // The last panel, partial: element by element, zeros past `rows`.
    for (let q = 0; q < width; q++) {
      // to = dst + q·bytes, stepping width·bytes per p
      f.localGet(dst).i32Const(bytes * q).i32Add().localSet(to);
      f.localGet(row0).i32Const(q).i32Add().localTee(r).localGet(rows).i32LtU().if();
      f.localGet(r).localGet(ld).i32Mul().i32Const(bytes).i32Mul().localGet(src).i32Add()
        .localSet(from);
      forRange(f, p, () => f.i32Const(0), cols, 1, () => {
        f.localGet(to).localGet(from);
        t.load(f, 0);
        t.store(f, 0);
        f.localGet(from).i32Const(bytes).i32Add().localSet(from);
        f.localGet(to).i32Const(width * bytes).i32Add().localSet(to);
      });
      f.else();
      forRange(f, p, () => f.i32Const(0), cols, 1, () => {
        f.localGet(to);
        t.zero(f);
        t.store(f, 0);
        f.localGet(to).i32Const(width * bytes).i32Add().localSet(to);
      });
      f.end();
    }
    f.end();
    f.localGet(dst).localGet(cols).i32Const(width * bytes).i32Mul().i32Add().localSet(dst);
  });
}

/**
 * Stores the transpose of one block: v[q] holds `lanes` consecutive columns of panel row q;
 * dst[p][q] (at `to`, rows of `width`) = lane p of v[q]. float32: 4×4 transposes by
 * shuffles for each four rows, two leftover rows as interleaved 64-bit pairs; float64: 2×2
 * transposes of each two rows.
 */
function packColsBlock(
  f: FunctionBuilder,
  t: Float,
  width: number,
  to: Local,
  v: Local[],
  tmp: Local[],
): void {
  const { bytes, lanes } = t;
  const store = (value: Local, p: number, q: number) =>
    f.localGet(to).localGet(value).v128Store((p * width + q) * bytes);
  const shuffle = (a: Local, b: Local, lanes: [number, number, number, number], into: Local) =>
    f.localGet(a).localGet(b).f32x4Shuffle(lanes).localSet(into);
  if (lanes === 2) {
    for (let q = 0; q < width; q += 2) {
      shuffle(v[q], v[q + 1], [0, 1, 4, 5], tmp[0]); // column p = 0 of rows q, q+1
      shuffle(v[q], v[q + 1], [2, 3, 6, 7], tmp[1]); // column p = 1
      store(tmp[0], 0, q);
      store(tmp[1], 1, q);
    }
    return;
  }
  let q = 0;
  for (; q + 4 <= width; q += 4) {
    const [a, b, c, d] = v.slice(q, q + 4);
    shuffle(a, b, [0, 4, 1, 5], tmp[0]); // a0 b0 a1 b1
    shuffle(a, b, [2, 6, 3, 7], tmp[1]); // a2 b2 a3 b3
    shuffle(c, d, [0, 4, 1, 5], tmp[2]); // c0 d0 c1 d1
    shuffle(c, d, [2, 6, 3, 7], tmp[3]); // c2 d2 c3 d3
    shuffle(tmp[0], tmp[2], [0, 1, 4, 5], a); // a0 b0 c0 d0
    shuffle(tmp[0], tmp[2], [2, 3, 6, 7], b); // a1 b1 c1 d1
    shuffle(tmp[1], tmp[3], [0, 1, 4, 5], c); // a2 b2 c2 d2
    shuffle(tmp[1], tmp[3], [2, 3, 6, 7], d); // a3 b3 c3 d3
    [a, b, c, d].forEach((column, p) => store(column, p, q));
  }
  if (q + 2 === width) {
    shuffle(v[q], v[q + 1], [0, 4, 1, 5], tmp[0]); // a0 b0 a1 b1
    shuffle(v[q], v[q + 1], [2, 6, 3, 7], tmp[1]); // a2 b2 a3 b3
    for (let p = 0; p < 4; p++) {
      f.localGet(to).localGet(tmp[p >> 1]).v128Store64Lane(p & 1, (p * width + q) * bytes);
    }
  } else if (q !== width) {
    throw new Error(`packColsBlock: width must be a multiple of 2, got ${width}`);
  }
}

/**
 * gemm(lp, rp, c, m, n, k, ldc, load, scratch): C[m, n] (row stride ldc elements) =
 * (load ? C : 0) + L·R from packed panels, blocked kc × (mc panels) for the caches. Edge
 * tiles run through `scratch` (mr·nr floats) so that C is never written past its edges.
 */
function gemm(m: ModuleBuilder, cfg: KernelConfig, t: Float): void {
  const { mr, nr, kc: KC, mc: MC } = cfg;
  const { bytes } = t;
  const tile = m.indexOf("tile");
  const f = m.function("gemm", [i32, i32, i32, i32, i32, i32, i32, i32, i32]);
  const [lp, rp, c, mm, nn, kk, ldc, load, scratch] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const l = () => f.local(i32);
  const [pc, kc, ic, icEnd, jb, ib, mPanels, nPanels, first, rowsOk, colsOk] = [
    l(),
    l(),
    l(),
    l(),
    l(),
    l(),
    l(),
    l(),
    l(),
    l(),
    l(),
  ];
  const [lpAt, rpAt, cAt, i, j, ldcBytes] = [l(), l(), l(), l(), l(), l()];
  f.localGet(mm).i32Const(mr - 1).i32Add().i32Const(mr).i32DivU().localSet(mPanels);
  f.localGet(nn).i32Const(nr - 1).i32Add().i32Const(nr).i32DivU().localSet(nPanels);
  f.localGet(ldc).i32Const(bytes).i32Mul().localSet(ldcBytes);
  forRange(f, pc, () => f.i32Const(0), kk, KC, () => {
    // kc = min(KC, k − pc); accumulate into C unless this is the first block of a fresh C
    f.localGet(kk).localGet(pc).i32Sub().localTee(kc).i32Const(KC).localGet(kc).i32Const(KC)
      .i32LtU().select().localSet(kc);
    f.localGet(load).localGet(pc).i32Or().localSet(first);
    forRange(f, ic, () => f.i32Const(0), mPanels, MC, () => {
      f.localGet(ic).i32Const(MC).i32Add().localTee(icEnd).localGet(mPanels).localGet(icEnd)
        .localGet(mPanels).i32LtU().select().localSet(icEnd);
      forRange(f, jb, () => f.i32Const(0), nPanels, 1, () => {
        // rpAt = rp + (jb·k + pc)·nr·bytes
        f.localGet(jb).localGet(kk).i32Mul().localGet(pc).i32Add().i32Const(nr * bytes).i32Mul()
          .localGet(rp).i32Add().localSet(rpAt);
        // colsOk = columns of this panel inside C
        f.localGet(nn).localGet(jb).i32Const(nr).i32Mul().i32Sub().localTee(colsOk)
          .i32Const(nr).localGet(colsOk).i32Const(nr).i32LtU().select().localSet(colsOk);
        forRange(f, ib, () => f.localGet(ic), icEnd, 1, () => {
          f.localGet(ib).localGet(kk).i32Mul().localGet(pc).i32Add().i32Const(mr * bytes).i32Mul()
            .localGet(lp).i32Add().localSet(lpAt);
          f.localGet(mm).localGet(ib).i32Const(mr).i32Mul().i32Sub().localTee(rowsOk)
            .i32Const(mr).localGet(rowsOk).i32Const(mr).i32LtU().select().localSet(rowsOk);
          // cAt = c + (ib·mr·ldc + jb·nr)·bytes
          f.localGet(ib).i32Const(mr).i32Mul().localGet(ldc).i32Mul().localGet(jb)
            .i32Const(nr).i32Mul().i32Add().i32Const(bytes).i32Mul().localGet(c).i32Add()
            .localSet(cAt);
          f.localGet(rowsOk).i32Const(mr).i32Eq().localGet(colsOk).i32Const(nr).i32Eq().i32And()
            .if();
          f.localGet(lpAt).localGet(rpAt).localGet(cAt).localGet(ldcBytes).localGet(kc)
            .localGet(first).call(tile);
          f.else();
          const edgeCopy = (toScratch: boolean) => {
            forRange(f, i, () => f.i32Const(0), rowsOk, 1, () => {
              forRange(f, j, () => f.i32Const(0), colsOk, 1, () => {
                const scratchAddr = () =>
                  f.localGet(i).i32Const(nr).i32Mul().localGet(j).i32Add().i32Const(bytes).i32Mul()
                    .localGet(scratch).i32Add();
                const cAddr = () =>
                  f.localGet(i).localGet(ldc).i32Mul().localGet(j).i32Add().i32Const(bytes).i32Mul()
                    .localGet(cAt).i32Add();
                if (toScratch) {
                  scratchAddr();
                  cAddr();
                } else {
                  cAddr();
                  scratchAddr();
                }
                t.load(f, 0);
                t.store(f, 0);
              });
            });
          };
          f.localGet(first).if();
          edgeCopy(true);
          f.end();
          f.localGet(lpAt).localGet(rpAt).localGet(scratch).i32Const(nr * bytes).localGet(kc)
            .localGet(first).call(tile);
          edgeCopy(false);
          f.end();
        });
      });
    });
  });
}

/**
 * A row-wise add over m rows of n floats, four columns at a time and the last n mod 4 one
 * by one: `target[0..n) += source[0..n)`, then either pointer steps to the next row.
 *   addBias(c, bias, m, n): c[i, j] += bias[j]            (the target steps)
 *   sumRows(a, out, m, n):  out[j] += a[i, j], rows in ascending order, as NumPy's
 *                           `sum(axis=0)` adds them     (the source steps)
 */
function addRows(
  m: ModuleBuilder,
  exportName: string,
  stepping: "target" | "source",
  t: Float,
): void {
  const { bytes, lanes } = t;
  const f = m.function(exportName, [i32, i32, i32, i32]);
  const [first, second, mm, nn] = [0, 1, 2, 3];
  const [target, source] = exportName === "addBias" ? [first, second] : [second, first];
  const [i, j, vectors, at] = [0, 0, 0, 0].map(() => f.local(i32));
  f.localGet(nn).localGet(nn).i32Const(lanes).i32RemU().i32Sub().localSet(vectors);
  const add = (vector: boolean) => {
    f.localGet(j).i32Const(bytes).i32Mul().localGet(target).i32Add().localTee(at);
    f.localGet(at);
    if (vector) f.v128Load(0);
    else t.load(f, 0);
    f.localGet(j).i32Const(bytes).i32Mul().localGet(source).i32Add();
    if (vector) {
      f.v128Load(0);
      t.vadd(f);
      f.v128Store(0);
    } else {
      t.load(f, 0);
      t.add(f);
      t.store(f, 0);
    }
  };
  forRange(f, i, () => f.i32Const(0), mm, 1, () => {
    forRange(f, j, () => f.i32Const(0), vectors, lanes, () => add(true));
    forRange(f, j, () => f.localGet(vectors), nn, 1, () => add(false));
    const stepped = stepping === "target" ? target : source;
    f.localGet(stepped).localGet(nn).i32Const(bytes).i32Mul().i32Add().localSet(stepped);
  });
}

/**
 * relu(x, out, n): out = max(x, 0); reluBackward(x, dvalues, out, n): out = x > 0 ?
 * dvalues : 0 (the book's choice at the kink), four at a time, the last n mod 4 one by one.
 */
function relu(m: ModuleBuilder, backward: boolean, t: Float): void {
  const { bytes, lanes } = t;
  const f = backward
    ? m.function("reluBackward", [i32, i32, i32, i32])
    : m.function("relu", [i32, i32, i32]);
  const [x, dv, out, n] = backward ? [0, 1, 2, 3] : [0, -1, 1, 2];
  const [i, vectors] = [f.local(i32), f.local(i32)];
  f.localGet(n).localGet(n).i32Const(lanes).i32RemU().i32Sub().i32Const(bytes).i32Mul()
    .localSet(vectors);
  f.localGet(n).i32Const(bytes).i32Mul().localSet(n); // bytes from here on
  const at = (base: number) => f.localGet(base).localGet(i).i32Add();
  forRange(f, i, () => f.i32Const(0), vectors, 16, () => {
    at(out);
    if (backward) {
      at(dv).v128Load(0);
      at(x).v128Load(0).v128Zero();
      t.vgt(f);
      f.v128And();
    } else {
      at(x).v128Load(0).v128Zero();
      t.vmax(f);
    }
    f.v128Store(0);
  });
  forRange(f, i, () => f.localGet(vectors), n, bytes, () => {
    at(out);
    if (backward) {
      at(dv);
      t.load(f, 0);
      t.zero(f);
      at(x);
      t.load(f, 0);
      t.zero(f);
      t.gt(f);
      f.select();
    } else {
      at(x);
      t.load(f, 0);
      t.zero(f);
      t.max(f);
    }
    t.store(f, 0);
  });
}

/**
 * dotRows(a, bt, c, m, k, n, load): C[m, n] = (load ? C : 0) + A[m, k]·Btᵀ for n ≤ 4, with
 * bt[n, k] the right operand transposed. Each output is a dot product along rows that are
 * contiguous in both operands, so nothing is packed: the kernel for thin products (a class
 * count n = 3), where packing the large left operand would cost more than the multiply-adds.
 * Two rows of A at a time share each load of Bt; the loop body is specialised for each n.
 */
function dotRows(m: ModuleBuilder, relaxed: boolean, t: Float): void {
  const { bytes, lanes } = t;
  const f = m.function("dotRows", [i32, i32, i32, i32, i32, i32, i32]);
  const [a, bt, c, mm, kk, nn, load] = [0, 1, 2, 3, 4, 5, 6];
  const [i, p, rowBytes, vectorBytes, pairs, out] = [0, 0, 0, 0, 0, 0].map(() => f.local(i32));
  const acc = [0, 1].map(() => [0, 1, 2, 3].map(() => f.local(v128)));
  const va = [f.local(v128), f.local(v128)];
  const vb = f.local(v128);
  const x = [f.local(t.type), f.local(t.type)];
  const y = f.local(t.type);
  const sums = [0, 1].map(() => [0, 1, 2, 3].map(() => f.local(t.type)));
  f.localGet(kk).i32Const(bytes).i32Mul().localSet(rowBytes);
  f.localGet(rowBytes).localGet(rowBytes).i32Const(16).i32RemU().i32Sub().localSet(vectorBytes);
  f.localGet(mm).i32Const(1).i32ShrU().localSet(pairs);
  // `rows` (1 or 2) rows of A against the nc rows of Bt, then A and C step past them.
  const rowsBody = (nc: number, rows: number) => {
    for (let r = 0; r < rows; r++) for (let j = 0; j < nc; j++) f.v128Zero().localSet(acc[r][j]);
    forRange(f, p, () => f.i32Const(0), vectorBytes, 16, () => {
      for (let r = 0; r < rows; r++) {
        f.localGet(a).localGet(p).i32Add();
        if (r > 0) f.localGet(rowBytes).i32Add();
        f.v128Load(0).localSet(va[r]);
      }
      for (let j = 0; j < nc; j++) {
        f.localGet(bt).localGet(p).i32Add().i32Const(j).localGet(rowBytes).i32Mul().i32Add()
          .v128Load(0).localSet(vb);
        for (let r = 0; r < rows; r++) {
          f.localGet(va[r]).localGet(vb);
          if (relaxed) {
            f.localGet(acc[r][j]);
            t.vmadd(f);
          } else {
            t.vmul(f);
            f.localGet(acc[r][j]);
            t.vadd(f);
          }
          f.localSet(acc[r][j]);
        }
      }
    });
    // sums = Σ lanes, then the k mod lanes tail one by one
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < nc; j++) {
        f.localGet(acc[r][j]);
        t.extract(f, 0);
        for (let lane = 1; lane < lanes; lane++) {
          f.localGet(acc[r][j]);
          t.extract(f, lane);
          t.add(f);
        }
        f.localSet(sums[r][j]);
      }
    }
    forRange(f, p, () => f.localGet(vectorBytes), rowBytes, bytes, () => {
      for (let r = 0; r < rows; r++) {
        f.localGet(a).localGet(p).i32Add();
        if (r > 0) f.localGet(rowBytes).i32Add();
        t.load(f, 0);
        f.localSet(x[r]);
      }
      for (let j = 0; j < nc; j++) {
        f.localGet(bt).localGet(p).i32Add().i32Const(j).localGet(rowBytes).i32Mul().i32Add();
        t.load(f, 0);
        f.localSet(y);
        for (let r = 0; r < rows; r++) {
          f.localGet(sums[r][j]).localGet(x[r]).localGet(y);
          t.mul(f);
          t.add(f);
          f.localSet(sums[r][j]);
        }
      }
    });
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < nc; j++) {
        f.localGet(c).i32Const((r * nc + j) * bytes).i32Add().localTee(out);
        f.localGet(load).if(t.type);
        f.localGet(out);
        t.load(f, 0);
        f.localGet(sums[r][j]);
        t.add(f);
        f.else().localGet(sums[r][j]).end();
        t.store(f, 0);
      }
    }
    f.localGet(a).localGet(rowBytes).i32Const(rows).i32Mul().i32Add().localSet(a);
    f.localGet(c).i32Const(rows * nc * bytes).i32Add().localSet(c);
  };
  for (let nc = 1; nc <= 4; nc++) {
    f.localGet(nn).i32Const(nc).i32Eq().if();
    forRange(f, i, () => f.i32Const(0), pairs, 1, () => rowsBody(nc, 2));
    f.localGet(mm).i32Const(1).i32And().if();
    rowsBody(nc, 1);
    f.end();
    f.end();
  }
}

/**
 * outerRows(a, b, c, m, k, n, load, lda): C[k, n] = (load ? C : 0) + A[m, k]ᵀ·B[m, n] for
 * n ≤ 4, with A's rows `lda` elements apart (k of them used): a sum of row outer products,
 * two vectors of A's columns against the n columns of B at a time, nothing packed
 * (`dweights = inputsᵀ·dvalues` with a class count n = 3). The loop body is specialised for
 * each n. A column range of a wider A (`lda` > k) is how worker threads split the output rows.
 */
function outerRows(m: ModuleBuilder, relaxed: boolean, t: Float): void {
  const { bytes, lanes } = t;
  const f = m.function("outerRows", [i32, i32, i32, i32, i32, i32, i32, i32]);
  const [a, b, c, mm, kk, nn, load, lda] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [i, q, ai, bi, rowBytes, vectorBytes, pairBytes, out] = [0, 0, 0, 0, 0, 0, 0, 0].map(
    () => f.local(i32),
  );
  f.localGet(lda).i32Const(bytes).i32Mul().localSet(lda); // bytes from here on
  const acc = [0, 1, 2, 3, 4, 5, 6, 7].map(() => f.local(v128));
  const va = [f.local(v128), f.local(v128)];
  const splat = f.local(v128);
  const x = f.local(t.type);
  const sums = [0, 1, 2, 3].map(() => f.local(t.type));
  f.localGet(kk).i32Const(bytes).i32Mul().localSet(rowBytes);
  f.localGet(rowBytes).localGet(rowBytes).i32Const(16).i32RemU().i32Sub().localSet(vectorBytes);
  f.localGet(vectorBytes).localGet(vectorBytes).i32Const(32).i32RemU().i32Sub()
    .localSet(pairBytes);
  // C[at] = (load ? C[at] : 0) + value
  const store = (at: () => void, value: () => void) => {
    at();
    f.localTee(out);
    f.localGet(load).if(t.type);
    f.localGet(out);
    t.load(f, 0);
    value();
    t.add(f);
    f.else();
    value();
    f.end();
    t.store(f, 0);
  };
  // `width` vectors of A's columns (q/bytes …) against the nc columns of B, over all rows.
  const columns = (nc: number, width: number) => {
    const nBytes = nc * bytes;
    const accAt = (w: number, j: number) => acc[w * 4 + j];
    for (let w = 0; w < width; w++) for (let j = 0; j < nc; j++) f.v128Zero().localSet(accAt(w, j));
    f.localGet(a).localGet(q).i32Add().localSet(ai);
    f.localGet(b).localSet(bi);
    forRange(f, i, () => f.i32Const(0), mm, 1, () => {
      for (let w = 0; w < width; w++) f.localGet(ai).v128Load(16 * w).localSet(va[w]);
      for (let j = 0; j < nc; j++) {
        f.localGet(bi);
        t.splat(f, j * bytes);
        f.localSet(splat);
        for (let w = 0; w < width; w++) {
          f.localGet(va[w]).localGet(splat);
          if (relaxed) {
            f.localGet(accAt(w, j));
            t.vmadd(f);
          } else {
            t.vmul(f);
            f.localGet(accAt(w, j));
            t.vadd(f);
          }
          f.localSet(accAt(w, j));
        }
      }
      f.localGet(ai).localGet(lda).i32Add().localSet(ai);
      f.localGet(bi).i32Const(nBytes).i32Add().localSet(bi);
    });
    // lane l of acc(w, j) is C[q/bytes + w·lanes + l, j]: at c + q·n + (w·lanes + l)·nBytes + j·bytes
    for (let w = 0; w < width; w++) {
      for (let l = 0; l < lanes; l++) {
        for (let j = 0; j < nc; j++) {
          store(
            () =>
              f.localGet(c).localGet(q).i32Const(nc).i32Mul().i32Add()
                .i32Const((w * lanes + l) * nBytes + j * bytes).i32Add(),
            () => {
              f.localGet(accAt(w, j));
              t.extract(f, l);
            },
          );
        }
      }
    }
  };
  for (let nc = 1; nc <= 4; nc++) {
    const nBytes = nc * bytes;
    f.localGet(nn).i32Const(nc).i32Eq().if();
    forRange(f, q, () => f.i32Const(0), pairBytes, 32, () => columns(nc, 2));
    forRange(f, q, () => f.localGet(pairBytes), vectorBytes, 16, () => columns(nc, 1));
    // The k mod lanes last columns of A one by one.
    forRange(f, q, () => f.localGet(vectorBytes), rowBytes, bytes, () => {
      for (let j = 0; j < nc; j++) {
        t.zero(f);
        f.localSet(sums[j]);
      }
      f.localGet(a).localGet(q).i32Add().localSet(ai);
      f.localGet(b).localSet(bi);
      forRange(f, i, () => f.i32Const(0), mm, 1, () => {
        f.localGet(ai);
        t.load(f, 0);
        f.localSet(x);
        for (let j = 0; j < nc; j++) {
          f.localGet(sums[j]).localGet(x).localGet(bi);
          t.load(f, j * bytes);
          t.mul(f);
          t.add(f);
          f.localSet(sums[j]);
        }
        f.localGet(ai).localGet(lda).i32Add().localSet(ai);
        f.localGet(bi).i32Const(nBytes).i32Add().localSet(bi);
      });
      for (let j = 0; j < nc; j++) {
        store(
          () =>
            f.localGet(c).localGet(q).i32Const(nc).i32Mul().i32Add().i32Const(j * bytes)
              .i32Add(),
          () => f.localGet(sums[j]),
        );
      }
    });
    f.end();
  }
}

/**
 * adam(value, grad, momentum, cache, n, β₁, 1−β₁, β₂, 1−β₂, −lr, c₁, c₂, ε): the book's
 * Adam update of n parameters in place, for the float64 build, in
 * exactly the operations and order of the JS loop (m and v are stored, rounded to the
 * element type, and read back): m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g²,
 * value += (−lr·(m/c₁)) / (√(v/c₂) + ε). Two elements per f64x2 vector (the divisions and
 * the square root are what a scalar loop waits on), the last n mod 2 alone.
 */
function adam(m: ModuleBuilder, t: Float): void {
  const f = m.function("adam", [i32, i32, i32, i32, i32, f64, f64, f64, f64, f64, f64, f64, f64]);
  const [value, grad, momentum, cache, n] = [0, 1, 2, 3, 4];
  const hyper = [5, 6, 7, 8, 9, 10, 11, 12]; // β₁, 1−β₁, β₂, 1−β₂, −lr, c₁, c₂, ε
  const [i, pairs] = [f.local(i32), f.local(i32)];
  const splats = hyper.map(() => f.local(v128));
  const [g, mv, vv, rounded] = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
  const [gs, ms, vs, rs] = [f.local(f64), f.local(f64), f.local(f64), f.local(f32)];
  hyper.forEach((h, k) => f.localGet(h).f64x2Splat().localSet(splats[k]));
  const { bytes } = t;
  f.localGet(n).localGet(n).i32Const(2).i32RemU().i32Sub().i32Const(bytes).i32Mul()
    .localSet(pairs);
  f.localGet(n).i32Const(bytes).i32Mul().localSet(n); // bytes from here on
  const at = (base: number) => f.localGet(base).localGet(i).i32Add();
  const f32s = t.bytes === 4;
  // Pairs: loads promote two float32 to f64x2; stores demote and keep the rounded pair.
  const loadPair = (base: number) =>
    f32s ? at(base).v128Load64Zero(0).f64x2PromoteLowF32x4() : at(base).v128Load(0);
  // Stores the f64x2 in `local` to base[i], leaving in `local` what was stored (read back).
  const storePair = (base: number, local: number) => {
    at(base);
    if (f32s) {
      f.localGet(local).f32x4DemoteF64x2Zero().localTee(rounded).v128Store64Lane(0);
      f.localGet(rounded).f64x2PromoteLowF32x4().localSet(local);
    } else f.localGet(local).v128Store(0);
  };
  const S = (k: number) => f.localGet(splats[k]);
  forRange(f, i, () => f.i32Const(0), pairs, 2 * bytes, () => {
    loadPair(grad);
    f.localSet(g);
    S(0);
    loadPair(momentum);
    f.f64x2Mul();
    S(1).localGet(g).f64x2Mul().f64x2Add().localSet(mv);
    storePair(momentum, mv);
    S(2);
    loadPair(cache);
    f.f64x2Mul();
    S(3).localGet(g).localGet(g).f64x2Mul().f64x2Mul().f64x2Add().localSet(vv);
    storePair(cache, vv);
    loadPair(value);
    S(4).localGet(mv);
    S(5).f64x2Div().f64x2Mul();
    f.localGet(vv);
    S(6).f64x2Div().f64x2Sqrt();
    S(7).f64x2Add().f64x2Div().f64x2Add().localSet(g);
    storePair(value, g);
  });
  // The odd last element, the same operations on scalars.
  const load = (base: number) => f32s ? at(base).f32Load(0).f64PromoteF32() : at(base).f64Load(0);
  const store = (base: number, local: number) => {
    at(base);
    if (f32s) {
      f.localGet(local).f32DemoteF64().localTee(rs).f32Store(0);
      f.localGet(rs).f64PromoteF32().localSet(local);
    } else f.localGet(local).f64Store(0);
  };
  const H = (k: number) => f.localGet(hyper[k]);
  forRange(f, i, () => f.localGet(pairs), n, bytes, () => {
    load(grad);
    f.localSet(gs);
    H(0);
    load(momentum);
    f.f64Mul();
    H(1).localGet(gs).f64Mul().f64Add().localSet(ms);
    store(momentum, ms);
    H(2);
    load(cache);
    f.f64Mul();
    H(3).localGet(gs).localGet(gs).f64Mul().f64Mul().f64Add().localSet(vs);
    store(cache, vs);
    load(value);
    H(4).localGet(ms);
    H(5).f64Div().f64Mul();
    f.localGet(vs);
    H(6).f64Div().f64Sqrt();
    H(7).f64Add().f64Div().f64Add().localSet(gs);
    store(value, gs);
  });
}

/**
 * The float32 build's adam (same signature): the same operations in float32 arithmetic,
 * four elements per f32x4 vector, as the book's NumPy code computes on float32 arrays (the
 * hyper-parameters rounded to float32). The float64 arithmetic of the JS loop spends ~3 ns
 * per element on its three divisions and square root; f32x4 does four at once.
 */
function adam32(m: ModuleBuilder): void {
  const f = m.function("adam", [i32, i32, i32, i32, i32, f64, f64, f64, f64, f64, f64, f64, f64]);
  const [value, grad, momentum, cache, n] = [0, 1, 2, 3, 4];
  const hyper = [5, 6, 7, 8, 9, 10, 11, 12]; // β₁, 1−β₁, β₂, 1−β₂, −lr, c₁, c₂, ε
  const [i, vectors] = [f.local(i32), f.local(i32)];
  const scalars = hyper.map(() => f.local(f32));
  const splats = hyper.map(() => f.local(v128));
  const [g, mv, vv] = [f.local(v128), f.local(v128), f.local(v128)];
  const [gs, ms, vs] = [f.local(f32), f.local(f32), f.local(f32)];
  hyper.forEach((h, k) => {
    f.localGet(h).f32DemoteF64().localTee(scalars[k]).f32x4Splat().localSet(splats[k]);
  });
  f.localGet(n).localGet(n).i32Const(4).i32RemU().i32Sub().i32Const(4).i32Mul()
    .localSet(vectors);
  f.localGet(n).i32Const(4).i32Mul().localSet(n); // bytes from here on
  const at = (base: number) => f.localGet(base).localGet(i).i32Add();
  // One element (scalar) or four (vector): the same sequence of operations.
  const step = (vector: boolean) => {
    const load = (base: number) => vector ? at(base).v128Load(0) : at(base).f32Load(0);
    const store = (base: number, local: number) => {
      at(base).localGet(local);
      if (vector) f.v128Store(0);
      else f.f32Store(0);
    };
    const K = (k: number) => f.localGet(vector ? splats[k] : scalars[k]);
    const mul = () => vector ? f.f32x4Mul() : f.f32Mul();
    const add = () => vector ? f.f32x4Add() : f.f32Add();
    const div = () => vector ? f.f32x4Div() : f.f32Div();
    const [gl, ml, vl] = vector ? [g, mv, vv] : [gs, ms, vs];
    load(grad);
    f.localSet(gl);
    K(0);
    load(momentum);
    mul();
    K(1).localGet(gl);
    mul();
    add();
    f.localSet(ml);
    store(momentum, ml);
    K(2);
    load(cache);
    mul();
    K(3).localGet(gl).localGet(gl);
    mul();
    mul();
    add();
    f.localSet(vl);
    store(cache, vl);
    load(value);
    K(4).localGet(ml);
    K(5);
    div();
    mul();
    f.localGet(vl);
    K(6);
    div();
    if (vector) f.f32x4Sqrt();
    else f.f32Sqrt();
    K(7);
    add();
    div();
    add();
    f.localSet(gl);
    store(value, gl);
  };
  forRange(f, i, () => f.i32Const(0), vectors, 16, () => step(true));
  forRange(f, i, () => f.localGet(vectors), n, 4, () => step(false));
}

/**
 * copyBytes(dst, src, n) and zeroBytes(dst, n): the convolution tasks' copies within the
 * memory, as bulk-memory instructions (a shared memory's copyWithin and fill run ~7× slower).
 */
function bulk(m: ModuleBuilder): void {
  m.function("copyBytes", [i32, i32, i32]).localGet(0).localGet(1).localGet(2).memoryCopy();
  m.function("zeroBytes", [i32, i32]).localGet(0).i32Const(0).localGet(1).memoryFill();
}

// f32x4.sub (0xfd 0xe5 0x01), which the encoder does not name: emitted as its bytes.
function f32x4Sub(f: FunctionBuilder): void {
  f.code.push(0xfd, 0xe5, 0x01);
}

function f32x4Neg(f: FunctionBuilder): void {
  f.code.push(0xfd, 0xe1, 0x01);
}

// Stores the vector in `value` at [address] (bytes), its first `lanes` lanes only when
// `lanes` (a local) is below 4.
function storeLanes(f: FunctionBuilder, address: () => void, value: Local, lanes: Local): void {
  f.localGet(lanes).i32Const(4).i32GeU().if();
  address();
  f.localGet(value).v128Store(0);
  f.else();
  for (let l = 0; l < 3; l++) {
    f.localGet(lanes).i32Const(l).i32GtU().if();
    address();
    f.localGet(value).f32x4ExtractLane(l).f32Store(4 * l);
    f.end();
  }
  f.end();
}

// Stores `value` (the lanes' tiles t + tx …, `lanes` of them) into plane `plane` of a
// transform's output at `target` (bytes): target + plane·stride + 4·(t + tx).
function storeTile(
  f: FunctionBuilder,
  target: Local,
  t: Local,
  tx: Local,
  stride: Local,
  plane: number,
  value: Local,
  lanes: Local,
): void {
  storeLanes(
    f,
    () => {
      f.localGet(t).localGet(tx).i32Add().i32Const(4).i32Mul().localGet(target).i32Add();
      f.localGet(stride).i32Const(plane).i32Mul().i32Add();
    },
    value,
    lanes,
  );
}

/**
 * winogradInput(origin, width, pad, rLo, rHi, qLo, qHi, padW, v, stride, tilesH, tilesW), the
 * float32 build only: Winograd F(2×2, 3×3)'s input transform of one image plane. The plane
 * is first copied into the zeroed scratch `pad` [2·tilesH + 2, padW] (padW = 8·⌈tilesW/4⌉ +
 * 2): its rows [rLo, rHi), columns [qLo, qHi) from origin + (r·width + q)·4 (origin: the byte
 * where the padded plane's (0, 0) would lie in the image, so that every tile reads its 4×4
 * block without bounds checks); then every tile t = ty·tilesW + tx, four tiles of a row at
 * a time (one per lane), v[ξ·stride + 4t] = (Bᵀ·d·B)[ξ] (bytes), rounded at each operation.
 */
function winogradInput(m: ModuleBuilder): void {
  const f = m.function("winogradInput", [
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
  ]);
  const [origin, width, pad, rLo, rHi, qLo, qHi, padW, v, stride, tilesH, tilesW] = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
  ];
  const [r, ty, tx, row, at, lanes, t] = [0, 0, 0, 0, 0, 0, 0].map(() => f.local(i32));
  const d = Array.from({ length: 16 }, () => f.local(v128));
  const [e0, e1, o0, o1, out] = [0, 0, 0, 0, 0].map(() => f.local(v128));
  // pad = 0, then the rows of the plane
  f.localGet(pad).i32Const(0);
  f.localGet(tilesH).i32Const(2).i32Mul().i32Const(2).i32Add().localGet(padW).i32Mul()
    .i32Const(4).i32Mul().memoryFill();
  f.localGet(qHi).localGet(qLo).i32GtU().if();
  forRange(f, r, () => f.localGet(rLo), rHi, 1, () => {
    f.localGet(r).localGet(padW).i32Mul().localGet(qLo).i32Add().i32Const(4).i32Mul()
      .localGet(pad).i32Add();
    f.localGet(r).localGet(width).i32Mul().localGet(qLo).i32Add().i32Const(4).i32Mul()
      .localGet(origin).i32Add();
    f.localGet(qHi).localGet(qLo).i32Sub().i32Const(4).i32Mul().memoryCopy();
  });
  f.end();
  forRange(f, ty, () => f.i32Const(0), tilesH, 1, () => {
    // row: the byte of the tiles' top-left corners in pad; t: the row's first tile
    f.localGet(ty).i32Const(2).i32Mul().localGet(padW).i32Mul().i32Const(4).i32Mul()
      .localGet(pad).i32Add().localSet(row);
    f.localGet(ty).localGet(tilesW).i32Mul().localSet(t);
    forRange(f, tx, () => f.i32Const(0), tilesW, 4, () => {
      f.localGet(tx).i32Const(8).i32Mul().localGet(row).i32Add().localSet(at);
      for (let i = 0; i < 4; i++) {
        // columns 2tx … 2tx + 7 and 2tx + 2 … 2tx + 9 of row i: even and odd lanes
        f.localGet(at).v128Load(0).localSet(e0);
        f.localGet(at).v128Load(16).localSet(e1);
        f.localGet(at).v128Load(8).localSet(o0);
        f.localGet(at).v128Load(24).localSet(o1);
        f.localGet(e0).localGet(e1).f32x4Shuffle([0, 2, 4, 6]).localSet(d[4 * i]);
        f.localGet(e0).localGet(e1).f32x4Shuffle([1, 3, 5, 7]).localSet(d[4 * i + 1]);
        f.localGet(o0).localGet(o1).f32x4Shuffle([0, 2, 4, 6]).localSet(d[4 * i + 2]);
        f.localGet(o0).localGet(o1).f32x4Shuffle([1, 3, 5, 7]).localSet(d[4 * i + 3]);
        if (i < 3) f.localGet(at).localGet(padW).i32Const(4).i32Mul().i32Add().localSet(at);
      }
      // Bᵀ·d in place, a column at a time: rows (d0 − d2, d1 + d2, d2 − d1, d1 − d3)
      for (let q = 0; q < 4; q++) {
        const [d0, d1, d2, d3] = [d[q], d[4 + q], d[8 + q], d[12 + q]];
        f.localGet(d0).localGet(d2);
        f32x4Sub(f);
        f.localSet(d0);
        f.localGet(d1).localGet(d3);
        f32x4Sub(f);
        f.localSet(d3);
        f.localGet(d2).localGet(d1);
        f32x4Sub(f);
        f.localGet(d1).localGet(d2).f32x4Add().localSet(d1);
        f.localSet(d2);
      }
      f.localGet(tilesW).localGet(tx).i32Sub().localSet(lanes);
      // (Bᵀ·d)·B, a row at a time, each of the 16 stored to its plane
      for (let i = 0; i < 4; i++) {
        const [a0, a1, a2, a3] = [d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]];
        const terms: [Local, Local, boolean][] = [
          [a0, a2, false],
          [a1, a2, true],
          [a2, a1, false],
          [a1, a3, false],
        ];
        terms.forEach(([p, q, plus], j) => {
          f.localGet(p).localGet(q);
          if (plus) f.f32x4Add();
          else f32x4Sub(f);
          f.localSet(out);
          storeTile(f, v, t, tx, stride, 4 * i + j, out, lanes);
        });
      }
    });
  });
}

/**
 * winogradOutput(m, stride, bias, stage, stageW, tilesH, tilesW, y, outH, outW), the float32
 * build only: Winograd F(2×2, 3×3)'s output transform of one plane. Four tiles of a row at
 * a time (one per lane), from m[ξ·stride + 4t] (bytes; the lanes past tilesW read what
 * follows and are never stored), the 2×2 block Aᵀ·m·A + bias goes into the scratch `stage`
 * [2·tilesH, stageW] (stageW = 8·⌈tilesW/4⌉), rounded at each operation; then the plane's
 * rows [outH, outW] are copied from it to y.
 */
function winogradOutput(m: ModuleBuilder): void {
  const f = m.function("winogradOutput", [i32, i32, f32, i32, i32, i32, i32, i32, i32, i32]);
  const [mm, stride, bias, stage, stageW, tilesH, tilesW, y, outH, outW] = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
  ];
  const [r, ty, tx, row, at] = [0, 0, 0, 0, 0].map(() => f.local(i32));
  const x = Array.from({ length: 16 }, () => f.local(v128));
  const [b, y0, y1] = [0, 0, 0].map(() => f.local(v128));
  f.localGet(bias).f32x4Splat().localSet(b);
  forRange(f, ty, () => f.i32Const(0), tilesH, 1, () => {
    f.localGet(ty).i32Const(2).i32Mul().localGet(stageW).i32Mul().i32Const(4).i32Mul()
      .localGet(stage).i32Add().localSet(row);
    forRange(f, tx, () => f.i32Const(0), tilesW, 4, () => {
      f.localGet(ty).localGet(tilesW).i32Mul().localGet(tx).i32Add().i32Const(4).i32Mul()
        .localGet(mm).i32Add().localSet(at);
      for (let k = 0; k < 16; k++) {
        f.localGet(at).v128Load(0).localSet(x[k]);
        if (k < 15) f.localGet(at).localGet(stride).i32Add().localSet(at);
      }
      // Aᵀ·m, a column at a time: rows (m0 + m1 + m2, m1 − m2 − m3) into x[q], x[4 + q]
      for (let q = 0; q < 4; q++) {
        const [m0, m1, m2, m3] = [x[q], x[4 + q], x[8 + q], x[12 + q]];
        f.localGet(m0).localGet(m1).f32x4Add().localGet(m2).f32x4Add().localSet(m0);
        f.localGet(m1).localGet(m2);
        f32x4Sub(f);
        f.localGet(m3);
        f32x4Sub(f);
        f.localSet(m1);
      }
      // ·A a row at a time, + bias; the even and odd columns interleaved into the stage
      for (let i = 0; i < 2; i++) {
        const [a0, a1, a2, a3] = [x[4 * i], x[4 * i + 1], x[4 * i + 2], x[4 * i + 3]];
        f.localGet(a0).localGet(a1).f32x4Add().localGet(a2).f32x4Add().localGet(b).f32x4Add()
          .localSet(y0);
        f.localGet(a1).localGet(a2);
        f32x4Sub(f);
        f.localGet(a3);
        f32x4Sub(f);
        f.localGet(b).f32x4Add().localSet(y1);
        f.localGet(tx).i32Const(8).i32Mul().localGet(row).i32Add();
        if (i === 1) f.localGet(stageW).i32Const(4).i32Mul().i32Add();
        f.localTee(at);
        f.localGet(y0).localGet(y1).f32x4Shuffle([0, 4, 1, 5]).v128Store(0);
        f.localGet(at).localGet(y0).localGet(y1).f32x4Shuffle([2, 6, 3, 7]).v128Store(16);
      }
    });
  });
  forRange(f, r, () => f.i32Const(0), outH, 1, () => {
    f.localGet(r).localGet(outW).i32Mul().i32Const(4).i32Mul().localGet(y).i32Add();
    f.localGet(r).localGet(stageW).i32Mul().i32Const(4).i32Mul().localGet(stage).i32Add();
    f.localGet(outW).i32Const(4).i32Mul().memoryCopy();
  });
}

/**
 * winogradGradOutput(dy, outH, outW, stage, stageW, tilesH, tilesW, dm, stride), the float32
 * build only: the output transform's gradient, the transpose of winogradOutput's, for one
 * plane. The plane dy [outH, outW] is first copied into the zeroed scratch `stage`
 * [2·tilesH, stageW] (stageW = 8·⌈tilesW/4⌉: the outputs past the plane's edge, which
 * forward did not store, have no gradient); then every tile t = ty·tilesW + tx, four tiles
 * of a row at a time (one per lane), dm[ξ·stride + 4t] = (A·dy·Aᵀ)[ξ] (bytes) for its 2×2
 * block, A = [[1, 0], [1, 1], [1, −1], [0, −1]], rounded at each operation.
 */
function winogradGradOutput(m: ModuleBuilder): void {
  const f = m.function("winogradGradOutput", [i32, i32, i32, i32, i32, i32, i32, i32, i32]);
  const [dy, outH, outW, stage, stageW, tilesH, tilesW, dm, stride] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [r, ty, tx, at, lanes, t] = [0, 0, 0, 0, 0, 0].map(() => f.local(i32));
  const [l0, l1, a, b, out] = [0, 0, 0, 0, 0].map(() => f.local(v128));
  const [e0, o0, e1, o1] = [0, 0, 0, 0].map(() => f.local(v128));
  // stage = 0, then the rows of the plane
  f.localGet(stage).i32Const(0);
  f.localGet(tilesH).i32Const(2).i32Mul().localGet(stageW).i32Mul().i32Const(4).i32Mul()
    .memoryFill();
  forRange(f, r, () => f.i32Const(0), outH, 1, () => {
    f.localGet(r).localGet(stageW).i32Mul().i32Const(4).i32Mul().localGet(stage).i32Add();
    f.localGet(r).localGet(outW).i32Mul().i32Const(4).i32Mul().localGet(dy).i32Add();
    f.localGet(outW).i32Const(4).i32Mul().memoryCopy();
  });
  forRange(f, ty, () => f.i32Const(0), tilesH, 1, () => {
    f.localGet(ty).localGet(tilesW).i32Mul().localSet(t);
    forRange(f, tx, () => f.i32Const(0), tilesW, 4, () => {
      // rows 2ty and 2ty + 1, columns 2tx … 2tx + 7: even and odd lanes
      f.localGet(ty).i32Const(2).i32Mul().localGet(stageW).i32Mul().localGet(tx).i32Const(2)
        .i32Mul().i32Add().i32Const(4).i32Mul().localGet(stage).i32Add().localSet(at);
      for (const [e, o] of [[e0, o0], [e1, o1]]) {
        f.localGet(at).v128Load(0).localSet(l0);
        f.localGet(at).v128Load(16).localSet(l1);
        f.localGet(l0).localGet(l1).f32x4Shuffle([0, 2, 4, 6]).localSet(e);
        f.localGet(l0).localGet(l1).f32x4Shuffle([1, 3, 5, 7]).localSet(o);
        f.localGet(at).localGet(stageW).i32Const(4).i32Mul().i32Add().localSet(at);
      }
      f.localGet(tilesW).localGet(tx).i32Sub().localSet(lanes);
      // Row i of A·dy is (a, b); row i of (A·dy)·Aᵀ is (a, a + b, a − b, −b).
      const rows: [() => void, () => void][] = [
        [() => f.localGet(e0), () => f.localGet(o0)],
        [
          () => f.localGet(e0).localGet(e1).f32x4Add(),
          () => f.localGet(o0).localGet(o1).f32x4Add(),
        ],
        [() => {
          f.localGet(e0).localGet(e1);
          f32x4Sub(f);
        }, () => {
          f.localGet(o0).localGet(o1);
          f32x4Sub(f);
        }],
        [() => {
          f.localGet(e1);
          f32x4Neg(f);
        }, () => {
          f.localGet(o1);
          f32x4Neg(f);
        }],
      ];
      rows.forEach(([first, second], i) => {
        first();
        f.localSet(a);
        second();
        f.localSet(b);
        const terms = [
          () => f.localGet(a),
          () => f.localGet(a).localGet(b).f32x4Add(),
          () => {
            f.localGet(a).localGet(b);
            f32x4Sub(f);
          },
          () => {
            f.localGet(b);
            f32x4Neg(f);
          },
        ];
        terms.forEach((term, j) => {
          term();
          f.localSet(out);
          storeTile(f, dm, t, tx, stride, 4 * i + j, out, lanes);
        });
      });
    });
  });
}

// The loops of MaxPool2D's 2×2, stride-2 kernels over planes [first, end) of [outH, outW]
// windows: `vector()` takes four windows of a row, `scalar()` one, the first with output
// index `o` and top-left input element `i` (set before each call); a row's last windows as
// the four that end it (some again, to the same values), or one by one in rows of fewer than
// four. `steps` holds the lanes' offsets [0, 2, 4, 6] and `down` the width in every lane.
function windows2x2(f: FunctionBuilder, width: Local, outW: Local) {
  const [q, oh, ow, i, o, row, vecEnd] = Array.from({ length: 7 }, () => f.local(i32));
  const [steps, down] = [f.local(v128), f.local(v128)];
  f.code.push(0xfd, 0x0c, ...[0, 2, 4, 6].flatMap((v) => [v, 0, 0, 0])); // v128.const
  f.localSet(steps);
  f.localGet(width).code.push(0xfd, 0x11); // i32x4.splat
  f.localSet(down);
  f.localGet(outW).i32Const(-4).i32And().localSet(vecEnd);
  const loop = (
    first: Local,
    end: Local,
    height: Local,
    outH: Local,
    vector: () => void,
    scalar: () => void,
    eachPlane?: () => void,
  ) => {
    const at = (window: () => void) => () => {
      f.localGet(row).localGet(ow).i32Add().localSet(o);
      f.localGet(q).localGet(height).i32Mul().localGet(oh).i32Const(2).i32Mul().i32Add()
        .localGet(width).i32Mul().localGet(ow).i32Const(2).i32Mul().i32Add().localSet(i);
      window();
    };
    forRange(f, q, () => f.localGet(first), end, 1, () => {
      eachPlane?.();
      forRange(f, oh, () => f.i32Const(0), outH, 1, () => {
        f.localGet(q).localGet(outH).i32Mul().localGet(oh).i32Add().localGet(outW).i32Mul()
          .localSet(row);
        forRange(f, ow, () => f.i32Const(0), vecEnd, 4, at(vector));
        f.localGet(outW).localGet(vecEnd).i32GtU().if();
        f.localGet(vecEnd).if();
        f.localGet(outW).i32Const(4).i32Sub().localSet(ow);
        at(vector)();
        f.else();
        forRange(f, ow, () => f.i32Const(0), outW, 1, at(scalar));
        f.end();
        f.end();
      });
    });
  };
  return { q, i, o, steps, down, loop };
}

/**
 * maxPool2x2(x, y, argmax, first, end, height, width, outH, outW, nan), the float32 build only:
 * MaxPool2D's 2×2, stride-2, unpadded windows over planes [first, end) of x [planes, height,
 * width] (byte offsets of element 0; argmax holds flat element indices into x): the rule of
 * the JavaScript loop (backends/_pooling.ts), each row's pair compared first and the lower
 * row's winner taking the window only when strictly larger, ties to the first, by float
 * comparisons and selects (the values themselves are stored, never computed). Four windows of
 * a row at a time (one per lane); a row's last ones as the four that end it (some computed
 * twice, to the same values), or one by one in rows of fewer than four. The count of windows
 * holding a NaN goes to the i32 at `nan` (their results then follow no rule: the caller redoes
 * them).
 */
function maxPool2x2(m: ModuleBuilder): void {
  const f = m.function("maxPool2x2", [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32]);
  const [x, y, argmax, first, end, height, width, outH, outW, nan] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const w = windows2x2(f, width, outW);
  const { i, o, steps, down } = w;
  const [at, count, rowBytes] = [0, 0, 0].map(() => f.local(i32));
  const [r0, r1, a, b, c, d, gt, uv, ui, lv, li] = Array.from(
    { length: 11 },
    () => f.local(v128),
  );
  const [sa, sb, sc, sd, su, sl] = [0, 0, 0, 0, 0, 0].map(() => f.local(f32));
  const [upper, lower, k] = [0, 0, 0].map(() => f.local(i32));
  const simd = (...bytes: number[]) => f.code.push(0xfd, ...bytes);
  const ne = () => simd(0x42), or = () => simd(0x50), bitselect = () => simd(0x52);
  const addI = () => simd(0xae, 0x01), subI = () => simd(0xb1, 0x01);
  f.localGet(width).i32Const(4).i32Mul().localSet(rowBytes);
  f.i32Const(0).localSet(count);
  const scalarNan = (v: Local) => f.localGet(v).localGet(v).code.push(0x5c); // f32.ne
  const vector = () => {
    f.localGet(i).i32Const(4).i32Mul().localGet(x).i32Add().localSet(at);
    for (const [even, odd] of [[a, b], [c, d]]) {
      f.localGet(at).v128Load(0).localSet(r0);
      f.localGet(at).v128Load(16).localSet(r1);
      f.localGet(r0).localGet(r1).f32x4Shuffle([0, 2, 4, 6]).localSet(even);
      f.localGet(r0).localGet(r1).f32x4Shuffle([1, 3, 5, 7]).localSet(odd);
      f.localGet(at).localGet(rowBytes).i32Add().localSet(at);
    }
    // a window holding a NaN: counted
    [a, b, c, d].forEach((v, n) => {
      f.localGet(v).localGet(v);
      ne();
      if (n > 0) or();
    });
    simd(0x53); // v128.any_true
    f.if();
    f.localGet(count).i32Const(1).i32Add().localSet(count);
    f.end();
    // upper = the first of a, b's maxima; lower likewise; the lower only when larger
    f.localGet(i);
    simd(0x11);
    f.localGet(steps);
    addI();
    f.localSet(r0); // the lanes' a indices
    f.localGet(b).localGet(a).f32x4Gt().localSet(gt);
    f.localGet(b).localGet(a).localGet(gt);
    bitselect();
    f.localSet(uv);
    f.localGet(r0).localGet(gt);
    subI(); // a mask is −1: the index + 1
    f.localSet(ui);
    f.localGet(d).localGet(c).f32x4Gt().localSet(gt);
    f.localGet(d).localGet(c).localGet(gt);
    bitselect();
    f.localSet(lv);
    f.localGet(r0).localGet(down);
    addI();
    f.localGet(gt);
    subI();
    f.localSet(li);
    f.localGet(lv).localGet(uv).f32x4Gt().localSet(gt);
    f.localGet(o).i32Const(4).i32Mul().localGet(y).i32Add();
    f.localGet(lv).localGet(uv).localGet(gt);
    bitselect();
    f.v128Store(0);
    f.localGet(o).i32Const(4).i32Mul().localGet(argmax).i32Add();
    f.localGet(li).localGet(ui).localGet(gt);
    bitselect();
    f.v128Store(0);
  };
  // The window at output column ow, alone.
  const scalar = () => {
    f.localGet(i).localGet(width).i32Add().localSet(k);
    f.localGet(i).i32Const(4).i32Mul().localGet(x).i32Add().localTee(at).f32Load(0).localSet(
      sa,
    );
    f.localGet(at).f32Load(4).localSet(sb);
    f.localGet(k).i32Const(4).i32Mul().localGet(x).i32Add().localTee(at).f32Load(0).localSet(
      sc,
    );
    f.localGet(at).f32Load(4).localSet(sd);
    scalarNan(sa);
    scalarNan(sb);
    f.i32Or();
    scalarNan(sc);
    f.i32Or();
    scalarNan(sd);
    f.i32Or();
    f.localGet(count).i32Add().localSet(count);
    f.localGet(sb).localGet(sa).localGet(sb).localGet(sa).f32Gt().select().localSet(su);
    f.localGet(i).i32Const(1).i32Add().localGet(i).localGet(sb).localGet(sa).f32Gt().select()
      .localSet(upper);
    f.localGet(sd).localGet(sc).localGet(sd).localGet(sc).f32Gt().select().localSet(sl);
    f.localGet(k).i32Const(1).i32Add().localGet(k).localGet(sd).localGet(sc).f32Gt().select()
      .localSet(lower);
    f.localGet(o).i32Const(4).i32Mul().localGet(y).i32Add();
    f.localGet(sl).localGet(su).localGet(sl).localGet(su).f32Gt().select().f32Store(0);
    f.localGet(o).i32Const(4).i32Mul().localGet(argmax).i32Add();
    f.localGet(lower).localGet(upper).localGet(sl).localGet(su).f32Gt().select().i32Store(0);
  };
  w.loop(first, end, height, outH, vector, scalar);
  f.localGet(nan).localGet(count).i32Store(0);
}

/**
 * maxPool2x2Backward(dvalues, dx, argmax, first, end, height, width, outH, outW), the float32
 * build only: the gradient of maxPool2x2 over planes [first, end): each window's four inputs
 * of dx written once, 0 + dvalues at its argmax (as the loop's dx[argmax] += dvalues on a
 * zeroed dx: −0 becomes +0) and +0 elsewhere; a plane with an odd row or column left out of
 * the windows is zeroed first. Four windows of a row at a time, the row's last ones as the
 * four that end it, rows of fewer than four one by one.
 */
function maxPool2x2Backward(m: ModuleBuilder): void {
  const f = m.function("maxPool2x2Backward", [i32, i32, i32, i32, i32, i32, i32, i32, i32]);
  const [dvalues, dx, argmax, first, end, height, width, outH, outW] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const w = windows2x2(f, width, outW);
  const { q, i, o, steps, down } = w;
  const [at, plane, odd] = [0, 0, 0].map(() => f.local(i32));
  const [dv, pos, zero, v00, v01, v10, v11] = Array.from({ length: 7 }, () => f.local(v128));
  const [g, jAt] = [f.local(f32), f.local(i32)];
  const simd = (...bytes: number[]) => f.code.push(0xfd, ...bytes);
  const eqI = () => simd(0x37), and = () => simd(0x4e);
  const addI = () => simd(0xae, 0x01), subI = () => simd(0xb1, 0x01);
  f.v128Zero().localSet(zero);
  f.localGet(height).localGet(width).i32Mul().localSet(plane);
  f.localGet(height).localGet(outH).i32Const(2).i32Mul().i32Sub().localGet(width)
    .localGet(outW).i32Const(2).i32Mul().i32Sub().i32Or().localSet(odd);
  // The window's input at `offset` (0, 1, width, width + 1 from its corner): 0 + dvalues where
  // the argmax points there, +0 elsewhere.
  const cell = (offset: () => void, into: Local) => {
    f.localGet(pos);
    offset();
    eqI();
    f.localGet(dv);
    and();
    f.localGet(zero).f32x4Add().localSet(into);
  };
  const vector = () => {
    f.localGet(o).i32Const(4).i32Mul().localGet(dvalues).i32Add().v128Load(0).localSet(dv);
    f.localGet(o).i32Const(4).i32Mul().localGet(argmax).i32Add().v128Load(0);
    f.localGet(i);
    simd(0x11);
    f.localGet(steps);
    addI();
    subI();
    f.localSet(pos); // each lane's argmax from its window's corner
    cell(() => f.i32Const(0).code.push(0xfd, 0x11), v00);
    cell(() => f.i32Const(1).code.push(0xfd, 0x11), v01);
    cell(() => f.localGet(down), v10);
    cell(() => {
      f.localGet(down).i32Const(1).code.push(0xfd, 0x11);
      addI();
    }, v11);
    f.localGet(i).i32Const(4).i32Mul().localGet(dx).i32Add().localSet(at);
    for (const [left, right] of [[v00, v01], [v10, v11]]) {
      f.localGet(at).localGet(left).localGet(right).f32x4Shuffle([0, 4, 1, 5]).v128Store(0);
      f.localGet(at).localGet(left).localGet(right).f32x4Shuffle([2, 6, 3, 7]).v128Store(16);
      f.localGet(at).localGet(width).i32Const(4).i32Mul().i32Add().localSet(at);
    }
  };
  const scalar = () => {
    f.localGet(o).i32Const(4).i32Mul().localGet(dvalues).i32Add().f32Load(0).f32Const0()
      .f32Add().localSet(g);
    f.localGet(o).i32Const(4).i32Mul().localGet(argmax).i32Add().i32Load(0).i32Const(4)
      .i32Mul().localGet(dx).i32Add().localSet(jAt);
    for (const offset of [0, 1]) {
      for (const down of [false, true]) {
        f.localGet(i).i32Const(offset).i32Add();
        if (down) f.localGet(width).i32Add();
        f.i32Const(4).i32Mul().localGet(dx).i32Add().f32Const0().f32Store(0);
      }
    }
    f.localGet(jAt).localGet(g).f32Store(0);
  };
  // A plane with a row or column outside the windows: zeroed first.
  const zeroPlane = () => {
    f.localGet(odd).if();
    f.localGet(q).localGet(plane).i32Mul().i32Const(4).i32Mul().localGet(dx).i32Add();
    f.i32Const(0).localGet(plane).i32Const(4).i32Mul().memoryFill();
    f.end();
  };
  w.loop(first, end, height, outH, vector, scalar, zeroPlane);
}

/**
 * cubicMap(x, w, out, n, table, intervals, list), the float32 build only: a function given as
 * cubics on a grid, times a second operand, element-wise in float64 (byte offsets):
 *   position = (x[i] − low)·steps, k = ⌊position⌋, t = position − k,
 *   out[i] = f32(w[i]·(c0 + t·(c1 + t·(c2 + t·c3))))   with c0 … c3 = table[16 + 32k …]
 * where `table` holds low and steps (f64), then `intervals` cubics of four f64 each. An
 * element off the grid (!(0 ≤ position < intervals): x below low, past the last interval, or
 * NaN) takes interval 0 meanwhile and has its index i appended to the i32 list at list + 4;
 * their count goes to list[0]. With w = x it is y = x·f(x), with w = dvalues dx = dvalues·f′(x):
 * the operations and rounding of GELU's JavaScript loops (activations/gelu.ts), so the bits.
 * Two elements at a time in f64x2 lanes (each lane rounds as the scalar operation does; the
 * cubics gathered by lane), a pair with an element off the grid and the last odd element by
 * the scalar code.
 */
function cubicMap(m: ModuleBuilder): void {
  const f = m.function("cubicMap", [i32, i32, i32, i32, i32, i32, i32]);
  const [x, w, out, n, table, intervals, list] = [0, 1, 2, 3, 4, 5, 6];
  const [i, pairs, count, k] = [0, 0, 0, 0].map(() => f.local(i32));
  const [low, steps, limit, position, t] = [0, 0, 0, 0, 0].map(() => f.local(f64));
  const [lows, stepss, limits, positions, ts, ks] = [0, 0, 0, 0, 0, 0].map(() => f.local(v128));
  const [a, b] = [f.local(v128), f.local(v128)];
  const c = [0, 1, 2, 3].map(() => f.local(v128)); // lanes: the pair's c0, c1, c2, c3
  f.localGet(table).f64Load(0).localTee(low).f64x2Splat().localSet(lows);
  f.localGet(table).f64Load(8).localTee(steps).f64x2Splat().localSet(stepss);
  f.localGet(intervals).f64ConvertI32S().localTee(limit).f64x2Splat().localSet(limits);
  f.localGet(table).i32Const(16).i32Add().localSet(table);
  f.localGet(n).i32Const(-2).i32And().i32Const(4).i32Mul().localSet(pairs);
  f.localGet(n).i32Const(4).i32Mul().localSet(n); // bytes from here on
  f.i32Const(0).localSet(count);
  // The element at byte i + offset, alone.
  const scalar = (offset: number) => {
    // position = (v − low)·steps
    f.localGet(x).localGet(i).i32Add().f32Load(offset).f64PromoteF32().localGet(low).f64Sub()
      .localGet(steps).f64Mul().localSet(position);
    f.localGet(position).f64Const0().f64Ge().localGet(position).localGet(limit).f64Lt().i32And()
      .i32Eqz().if();
    f.localGet(count).i32Const(4).i32Mul().localGet(list).i32Add()
      .localGet(i).i32Const(offset).i32Add().i32Const(2).i32ShrU().i32Store(4);
    f.localGet(count).i32Const(1).i32Add().localSet(count);
    f.f64Const0().localSet(position);
    f.end();
    // t = position − k; k becomes the cubic's byte offset
    f.localGet(position).localGet(position).i32TruncF64S().localTee(k).f64ConvertI32S().f64Sub()
      .localSet(t);
    f.localGet(k).i32Const(32).i32Mul().localGet(table).i32Add().localSet(k);
    f.localGet(out).localGet(i).i32Add();
    f.localGet(w).localGet(i).i32Add().f32Load(offset).f64PromoteF32();
    f.localGet(k).f64Load(0).localGet(t);
    f.localGet(k).f64Load(8).localGet(t);
    f.localGet(k).f64Load(16).localGet(t);
    f.localGet(k).f64Load(24);
    f.f64Mul().f64Add().f64Mul().f64Add().f64Mul().f64Add();
    f.f64Mul().f32DemoteF64().f32Store(offset);
  };
  forRange(f, i, () => f.i32Const(0), pairs, 8, () => {
    f.localGet(x).localGet(i).i32Add().v128Load64Zero(0).f64x2PromoteLowF32x4().localGet(lows)
      .f64x2Sub().localGet(stepss).f64x2Mul().localTee(positions);
    f.v128Zero().f64x2Ge().localGet(positions).localGet(limits).f64x2Lt().v128And()
      .i64x2AllTrue().if();
    f.localGet(positions).localGet(positions).i32x4TruncSatF64x2SZero().localTee(ks)
      .f64x2ConvertLowI32x4S().f64x2Sub().localSet(ts);
    // a = (c0, c1) and b = (c2, c3) of each lane's cubic, regrouped by coefficient
    for (const lane of [0, 1]) {
      f.localGet(ks).i32x4ExtractLane(lane).i32Const(32).i32Mul().localGet(table).i32Add()
        .localTee(k).v128Load(0).localSet(lane === 0 ? a : c[0]);
      f.localGet(k).v128Load(16).localSet(lane === 0 ? b : c[2]);
    }
    f.localGet(a).localGet(c[0]).f32x4Shuffle([0, 1, 4, 5]);
    f.localGet(a).localGet(c[0]).f32x4Shuffle([2, 3, 6, 7]).localSet(c[1]);
    f.localSet(c[0]);
    f.localGet(b).localGet(c[2]).f32x4Shuffle([2, 3, 6, 7]).localSet(c[3]);
    f.localGet(b).localGet(c[2]).f32x4Shuffle([0, 1, 4, 5]).localSet(c[2]);
    f.localGet(out).localGet(i).i32Add();
    f.localGet(w).localGet(i).i32Add().v128Load64Zero(0).f64x2PromoteLowF32x4();
    f.localGet(c[0]).localGet(ts);
    f.localGet(c[1]).localGet(ts);
    f.localGet(c[2]).localGet(ts);
    f.localGet(c[3]);
    f.f64x2Mul().f64x2Add().f64x2Mul().f64x2Add().f64x2Mul().f64x2Add();
    f.f64x2Mul().f32x4DemoteF64x2Zero().v128Store64Lane(0);
    f.else();
    scalar(0);
    scalar(4);
    f.end();
  });
  forRange(f, i, () => f.localGet(pairs), n, 4, () => scalar(0));
  f.localGet(list).localGet(count).i32Store(0);
}

// LayerNorm's float32 kernels read a header of the layer's constants (byte offsets from
// `params`): features (i32) at 0, rows per group of the parameter sums (i32) at 4, whether
// dinputs are wanted (i32) at 8, epsilon (f64) at 16, then gamma [features] (f32) at 32 and
// beta [features] (f32) after it. Each row's mean and 1/√(var + ε) lie as two f64 at
// `stats` + 16·row. A row's sums are chains of dependent adds (four interleaved sums forward,
// two backward); the kernels run two rows side by side, so that twice as many adds are in
// flight (1.2–1.5× faster on one thread here), and an odd last row alone.
const LN_GAMMA = 32;

// `count` fresh locals of `type`.
function locals(f: FunctionBuilder, type: ValType, count: number): Local[] {
  return Array.from({ length: count }, () => f.local(type));
}

/**
 * layerNormForward(x, y, rows, params, stats), the float32 build only: `rows` rows of
 * `features` float32 from byte x normalized into y, in float64 with the operations and
 * rounding of layers/layer_norm.ts's float32 loops (so their bits):
 *   mean = Σx / F   invStd = 1 / √(Σ(x − mean)² / F + ε)   y = f32((x − mean)·invStd·gamma + beta)
 * each sum as `sum32` and `squares32` take it: four interleaved float64 sums s0 … s3 (s0 and s1
 * in the lanes of one f64x2, s2 and s3 in another), the last F mod 4 elements added to s0,
 * then `(s0 + s1) + (s2 + s3)`; each row's mean and invStd written at `stats` (see above). The
 * outputs two at a time in f64x2 lanes (each lane one element's scalar sequence), an odd last
 * one alone.
 */
function layerNormForward(m: ModuleBuilder): void {
  const f = m.function("layerNormForward", [i32, i32, i32, i32, i32]);
  const [x, y, rows, params, stats] = [0, 1, 2, 3, 4];
  const [r, i, bytes, quads, pairs, gamma, beta, even] = locals(f, i32, 8);
  const [count, epsilon] = locals(f, f64, 2);
  // per row of the block: its pointers, sums and statistics
  const xs = [x, f.local(i32)], ys = [y, f.local(i32)];
  const [a, b, d, means, invStds] = [0, 0, 0, 0, 0].map(() => locals(f, v128, 2));
  const [s, ds, mean, invStd] = [0, 0, 0, 0].map(() => locals(f, f64, 2));
  f.localGet(params).i32Load(0).localTee(bytes).f64ConvertI32S().localSet(count);
  f.localGet(bytes).i32Const(-4).i32And().i32Const(4).i32Mul().localSet(quads);
  f.localGet(bytes).i32Const(-2).i32And().i32Const(4).i32Mul().localSet(pairs);
  f.localGet(bytes).i32Const(4).i32Mul().localSet(bytes); // bytes per row from here on
  f.localGet(params).f64Load(16).localSet(epsilon);
  f.localGet(params).i32Const(LN_GAMMA).i32Add().localTee(gamma).localGet(bytes).i32Add()
    .localSet(beta);
  f.localGet(rows).i32Const(-2).i32And().localSet(even);
  // Σx (or Σ(x − mean)²) of each of the block's `block` rows into `total`.
  const rowSums = (block: number, total: Local[], centred: boolean) => {
    for (let k = 0; k < block; k++) f.v128Zero().localTee(a[k]).localSet(b[k]);
    forRange(f, i, () => f.i32Const(0), quads, 16, () => {
      for (let k = 0; k < block; k++) {
        for (const [lanes, offset] of [[a[k], 0], [b[k], 8]]) {
          f.localGet(lanes).localGet(xs[k]).localGet(i).i32Add().v128Load64Zero(offset)
            .f64x2PromoteLowF32x4();
          if (centred) f.localGet(means[k]).f64x2Sub().localTee(d[k]).localGet(d[k]).f64x2Mul();
          f.f64x2Add().localSet(lanes);
        }
      }
    });
    for (let k = 0; k < block; k++) f.localGet(a[k]).f64x2ExtractLane(0).localSet(s[k]);
    forRange(f, i, () => f.localGet(quads), bytes, 4, () => {
      for (let k = 0; k < block; k++) {
        f.localGet(s[k]).localGet(xs[k]).localGet(i).i32Add().f32Load(0).f64PromoteF32();
        if (centred) f.localGet(mean[k]).f64Sub().localTee(ds[k]).localGet(ds[k]).f64Mul();
        f.f64Add().localSet(s[k]);
      }
    });
    for (let k = 0; k < block; k++) {
      f.localGet(s[k]).localGet(a[k]).f64x2ExtractLane(1).f64Add();
      f.localGet(b[k]).f64x2ExtractLane(0).localGet(b[k]).f64x2ExtractLane(1).f64Add();
      f.f64Add().localSet(total[k]);
    }
  };
  // y = (x − mean)·invStd·gamma + beta at byte i of row k: two lanes or one element
  const output = (k: number, vector: boolean) => {
    const load = (base: Local) => {
      f.localGet(base).localGet(i).i32Add();
      if (vector) f.v128Load64Zero(0).f64x2PromoteLowF32x4();
      else f.f32Load(0).f64PromoteF32();
    };
    f.localGet(ys[k]).localGet(i).i32Add();
    load(xs[k]);
    if (vector) {
      f.localGet(means[k]).f64x2Sub().localGet(invStds[k]).f64x2Mul();
      load(gamma);
      f.f64x2Mul();
      load(beta);
      f.f64x2Add().f32x4DemoteF64x2Zero().v128Store64Lane(0);
    } else {
      f.localGet(mean[k]).f64Sub().localGet(invStd[k]).f64Mul();
      load(gamma);
      f.f64Mul();
      load(beta);
      f.f64Add().f32DemoteF64().f32Store(0);
    }
  };
  // `block` rows (1 or 2) from x, y and stats, which then step past them.
  const rowBlock = (block: number) => {
    for (let k = 1; k < block; k++) {
      f.localGet(xs[k - 1]).localGet(bytes).i32Add().localSet(xs[k]);
      f.localGet(ys[k - 1]).localGet(bytes).i32Add().localSet(ys[k]);
    }
    // mean = Σx / F
    rowSums(block, mean, false);
    for (let k = 0; k < block; k++) {
      f.localGet(mean[k]).localGet(count).f64Div().localTee(mean[k]).f64x2Splat()
        .localSet(means[k]);
    }
    // invStd = 1 / √(Σ(x − mean)² / F + ε)
    rowSums(block, invStd, true);
    for (let k = 0; k < block; k++) {
      f.f64Const(1).localGet(invStd[k]).localGet(count).f64Div().localGet(epsilon).f64Add()
        .f64Sqrt().f64Div().localTee(invStd[k]).f64x2Splat().localSet(invStds[k]);
      f.localGet(stats).localGet(mean[k]).f64Store(16 * k);
      f.localGet(stats).localGet(invStd[k]).f64Store(16 * k + 8);
    }
    forRange(f, i, () => f.i32Const(0), pairs, 8, () => {
      for (let k = 0; k < block; k++) output(k, true);
    });
    forRange(f, i, () => f.localGet(pairs), bytes, 4, () => {
      for (let k = 0; k < block; k++) output(k, false);
    });
    for (const base of [x, y]) {
      f.localGet(base).localGet(bytes).i32Const(block).i32Mul().i32Add().localSet(base);
    }
    f.localGet(stats).i32Const(16 * block).i32Add().localSet(stats);
  };
  forRange(f, r, () => f.i32Const(0), even, 2, () => rowBlock(2));
  f.localGet(rows).i32Const(1).i32And().if();
  rowBlock(1);
  f.end();
}

/**
 * layerNormBackward(x, dv, dx, rows, params, stats, partials), the float32 build only: for
 * `rows` rows from byte x and dv, in groups of the header's group rows (the last one
 * shorter), each group's sums `Σ dv·x̂` and `Σ dv` per feature (f64, [2, features], zeroed
 * first) at `partials` + 16·features·(its index), rows added in order; and, when the header
 * asks for them, dinputs into dx. In float64 with the operations and rounding of
 * layers/layer_norm.ts's float32 loops (`backwardSums32`: Σg and Σ g·x̂ as two interleaved
 * sums, by feature parity, then added; then the dinputs loop), so their bits:
 *   x̂ = (x − mean)·invStd   g = gamma·dv   dx = f32(invStd·(g − Σg/F − x̂·Σ(g·x̂)/F))
 * Two features at a time in f64x2 lanes (lane 0 the even ones, lane 1 the odd ones), an odd
 * last one alone.
 */
function layerNormBackward(m: ModuleBuilder): void {
  const f = m.function("layerNormBackward", [i32, i32, i32, i32, i32, i32, i32]);
  const [x, dv, dx, rows, params, stats, partials] = [0, 1, 2, 3, 4, 5, 6];
  const [r, g0, end, even, i, p, bytes, pairs, gamma, group, inputs, dbeta] = locals(f, i32, 12);
  const count = f.local(f64);
  // per row of the block: its pointers, statistics, sums, and one or two features' terms
  const xs = [x, f.local(i32)], dvs = [dv, f.local(i32)], dxs = [dx, f.local(i32)];
  const [mean, invStd, g, h, d, xhat, ga] = [0, 0, 0, 0, 0, 0, 0].map(() => locals(f, f64, 2));
  const [means, invStds, gs, hs, ds, xhats, gas, meanGs, meanHs] = [0, 0, 0, 0, 0, 0, 0, 0, 0]
    .map(() => locals(f, v128, 2));
  f.localGet(params).i32Load(0).localTee(bytes).f64ConvertI32S().localSet(count);
  f.localGet(bytes).i32Const(-2).i32And().i32Const(4).i32Mul().localSet(pairs);
  f.localGet(bytes).i32Const(4).i32Mul().localSet(bytes); // bytes per row from here on
  f.localGet(params).i32Load(4).localSet(group);
  f.localGet(params).i32Load(8).localSet(inputs);
  f.localGet(params).i32Const(LN_GAMMA).i32Add().localSet(gamma);
  const load = (base: Local, vector: boolean) => {
    f.localGet(base).localGet(i).i32Add();
    if (vector) f.v128Load64Zero(0).f64x2PromoteLowF32x4();
    else f.f32Load(0).f64PromoteF32();
  };
  const ops = (vector: boolean) =>
    vector
      ? { sub: () => f.f64x2Sub(), mul: () => f.f64x2Mul(), add: () => f.f64x2Add() }
      : { sub: () => f.f64Sub(), mul: () => f.f64Mul(), add: () => f.f64Add() };
  // The feature(s) at byte i of the block's rows: d = dv, x̂, ga = gamma·d per row; then
  // dgamma += d·x̂ and dbeta += d (the partials at byte 2i) row after row, and each row's
  // g += ga, h += ga·x̂.
  const sums = (block: number, vector: boolean) => {
    const { sub, mul, add } = ops(vector);
    const [dl, xl, gl, gsum, hsum] = vector ? [ds, xhats, gas, gs, hs] : [d, xhat, ga, g, h];
    for (let k = 0; k < block; k++) {
      load(dvs[k], vector);
      f.localSet(dl[k]);
      load(xs[k], vector);
      f.localGet(vector ? means[k] : mean[k]);
      sub();
      f.localGet(vector ? invStds[k] : invStd[k]);
      mul();
      f.localSet(xl[k]);
      load(gamma, vector);
      f.localGet(dl[k]);
      mul();
      f.localSet(gl[k]);
    }
    for (const [partial, term] of [[partials, true], [dbeta, false]] as const) {
      f.localGet(partial).localGet(i).localGet(i).i32Add().i32Add().localTee(p).localGet(p);
      if (vector) f.v128Load(0);
      else f.f64Load(0);
      for (let k = 0; k < block; k++) {
        f.localGet(dl[k]);
        if (term) {
          f.localGet(xl[k]);
          mul();
        }
        add();
      }
      if (vector) f.v128Store(0);
      else f.f64Store(0);
    }
    for (let k = 0; k < block; k++) {
      f.localGet(gsum[k]).localGet(gl[k]);
      add();
      f.localSet(gsum[k]);
      f.localGet(hsum[k]).localGet(gl[k]).localGet(xl[k]);
      mul();
      add();
      f.localSet(hsum[k]);
    }
  };
  // dx = invStd·(gamma·d − meanG − x̂·meanGXhat) at byte i of row k
  const inputsAt = (k: number, vector: boolean) => {
    const { sub, mul } = ops(vector);
    f.localGet(dxs[k]).localGet(i).i32Add();
    f.localGet(vector ? invStds[k] : invStd[k]);
    load(gamma, vector);
    load(dvs[k], vector);
    mul();
    f.localGet(vector ? meanGs[k] : g[k]);
    sub();
    load(xs[k], vector);
    f.localGet(vector ? means[k] : mean[k]);
    sub();
    f.localGet(vector ? invStds[k] : invStd[k]);
    mul();
    f.localGet(vector ? meanHs[k] : h[k]);
    mul();
    sub();
    mul();
    if (vector) f.f32x4DemoteF64x2Zero().v128Store64Lane(0);
    else f.f32DemoteF64().f32Store(0);
  };
  // `block` rows (1 or 2) from x, dv, dx and stats, which then step past them.
  const rowBlock = (block: number) => {
    for (let k = 0; k < block; k++) {
      if (k > 0) {
        for (const row of [xs, dvs, dxs]) {
          f.localGet(row[k - 1]).localGet(bytes).i32Add().localSet(row[k]);
        }
      }
      f.localGet(stats).f64Load(16 * k).localTee(mean[k]).f64x2Splat().localSet(means[k]);
      f.localGet(stats).f64Load(16 * k + 8).localTee(invStd[k]).f64x2Splat()
        .localSet(invStds[k]);
      f.v128Zero().localTee(gs[k]).localSet(hs[k]);
    }
    forRange(f, i, () => f.i32Const(0), pairs, 8, () => sums(block, true));
    for (let k = 0; k < block; k++) {
      f.localGet(gs[k]).f64x2ExtractLane(0).localSet(g[k]);
      f.localGet(hs[k]).f64x2ExtractLane(0).localSet(h[k]);
    }
    forRange(f, i, () => f.localGet(pairs), bytes, 4, () => sums(block, false));
    f.localGet(inputs).if();
    for (let k = 0; k < block; k++) {
      // meanG = Σg / F, meanGXhat = Σ(g·x̂) / F (the scalars g and h hold them from here)
      f.localGet(g[k]).localGet(gs[k]).f64x2ExtractLane(1).f64Add().localGet(count).f64Div()
        .localTee(g[k]).f64x2Splat().localSet(meanGs[k]);
      f.localGet(h[k]).localGet(hs[k]).f64x2ExtractLane(1).f64Add().localGet(count).f64Div()
        .localTee(h[k]).f64x2Splat().localSet(meanHs[k]);
    }
    forRange(f, i, () => f.i32Const(0), pairs, 8, () => {
      for (let k = 0; k < block; k++) inputsAt(k, true);
    });
    forRange(f, i, () => f.localGet(pairs), bytes, 4, () => {
      for (let k = 0; k < block; k++) inputsAt(k, false);
    });
    f.end();
    for (const base of [x, dv, dx]) {
      f.localGet(base).localGet(bytes).i32Const(block).i32Mul().i32Add().localSet(base);
    }
    f.localGet(stats).i32Const(16 * block).i32Add().localSet(stats);
  };
  // Groups [g0, end), each from the last one's end (the loop's own step is 0).
  forRange(f, g0, () => f.i32Const(0), rows, 0, () => {
    // end = min(g0 + group, rows); the group's partials zeroed; its rows two at a time
    f.localGet(g0).localGet(group).i32Add().localTee(end).localGet(rows).localGet(end)
      .localGet(rows).i32LtU().select().localSet(end);
    f.localGet(partials).localGet(bytes).i32Const(2).i32Mul().i32Add().localSet(dbeta);
    f.localGet(partials).i32Const(0).localGet(bytes).i32Const(4).i32Mul().memoryFill();
    f.localGet(end).localGet(g0).i32Sub().i32Const(-2).i32And().localGet(g0).i32Add()
      .localSet(even);
    forRange(f, r, () => f.localGet(g0), even, 2, () => rowBlock(2));
    f.localGet(end).localGet(even).i32GtU().if();
    rowBlock(1);
    f.end();
    f.localGet(partials).localGet(bytes).i32Const(4).i32Mul().i32Add().localSet(partials);
    f.localGet(end).localSet(g0);
  });
}

/** Builds the kernel module for one configuration. */
export function buildKernels(cfg: KernelConfig): Uint8Array {
  const t = cfg.float === "f64" ? F64 : F32;
  if (cfg.nr % t.lanes !== 0) {
    throw new Error(`buildKernels: nr must be a multiple of ${t.lanes}, got ${cfg.nr}`);
  }
  const m = new ModuleBuilder(cfg.shared ? { sharedMaximum: SHARED_MAXIMUM_PAGES } : {});
  tileKernel(m, cfg, t);
  gemm(m, cfg, t);
  packRows(m, "packRowsL", cfg.mr, t);
  packRows(m, "packRowsR", cfg.nr, t);
  packCols(m, "packColsL", cfg.mr, t);
  packCols(m, "packColsR", cfg.nr, t);
  addRows(m, "addBias", "target", t);
  addRows(m, "sumRows", "source", t);
  relu(m, false, t);
  relu(m, true, t);
  dotRows(m, cfg.relaxed, t);
  outerRows(m, cfg.relaxed, t);
  if (t === F32) adam32(m);
  else adam(m, t);
  bulk(m);
  if (t === F32) {
    winogradInput(m);
    winogradOutput(m);
    winogradGradOutput(m);
    maxPool2x2(m);
    maxPool2x2Backward(m);
    cubicMap(m);
    layerNormForward(m);
    layerNormBackward(m);
  }
  if (t === F32) recurrentKernels(m);
  return m.encode();
}
