// The float32 matrix kernels of the `wasm` backend, written against the encoder.
//
// Dimension letters: the product is C[m,n] = L[m,k]·R[k,n] with k the reduction. Both
// operands are first packed into panels (GotoBLAS style) so that the micro-kernel reads
// them sequentially whatever their layout and transposition:
//   left  → lp[ib][p][MR]: panel ib holds rows ib·MR … ib·MR+MR−1, one MR-vector per p
//   right → rp[jb][p][NR]: panel jb holds cols jb·NR … jb·NR+NR−1, one NR-vector per p
// Panels past the matrix edge are padded with zeros; the driver sends edge tiles through a
// scratch tile so that C keeps its natural row-major layout. All pointers are byte offsets
// into the module's memory; leading dimensions are in elements.

import { type FunctionBuilder, i32, type Local, ModuleBuilder, v128 } from "./encoder.ts";

/** Shape of the register tile and of the cache blocks. */
export interface KernelConfig {
  /** Rows of the register tile (broadcast from the left panel). */
  mr: number;
  /** Columns of the register tile, a multiple of 4 (vectors from the right panel). */
  nr: number;
  /** Reduction block: the slice of a right panel (kc·nr floats) that stays in L1. */
  kc: number;
  /** Left panels per block: mc·mr·kc floats of the left operand stay in L2. */
  mc: number;
  /** Use `f32x4.relaxed_madd` (fused, one instruction) rather than `mul` + `add`. */
  relaxed: boolean;
}

/** The tile and blocking the backend ships with (chosen by measurement, see docs/issue6.md). */
export const DEFAULT_CONFIG: Omit<KernelConfig, "relaxed"> = { mr: 6, nr: 8, kc: 256, mc: 32 };

/** `for (i = start; i < end; i += step) body()`, with `end` a local. */
function forRange(
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

/**
 * tile(lp, rp, c, ldc, kc, load): C[mr, nr] (row stride ldc bytes) = (load ? C : 0) +
 * Σ_p lp[p][mr] ⊗ rp[p][nr], the reduction unrolled by two.
 */
function tileKernel(m: ModuleBuilder, cfg: KernelConfig): void {
  const { mr, nr, relaxed } = cfg;
  const nv = nr / 4;
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
    for (let v = 0; v < nv; v++) f.localGet(rp).v128Load(offset * nr * 4 + 16 * v).localSet(b[v]);
    for (let r = 0; r < mr; r++) {
      f.localGet(lp).v128Load32Splat(offset * mr * 4 + 4 * r).localSet(a);
      for (let v = 0; v < nv; v++) {
        if (relaxed) {
          f.localGet(a).localGet(b[v]).localGet(acc[r][v]).f32x4RelaxedMadd();
        } else {
          f.localGet(a).localGet(b[v]).f32x4Mul().localSet(product!);
          f.localGet(acc[r][v]).localGet(product!).f32x4Add();
        }
        f.localSet(acc[r][v]);
      }
    }
  };
  // An odd step first, then pairs.
  f.localGet(kc).i32Const(1).i32And().if();
  step(0);
  f.localGet(lp).i32Const(mr * 4).i32Add().localSet(lp);
  f.localGet(rp).i32Const(nr * 4).i32Add().localSet(rp);
  f.end();
  f.localGet(kc).i32Const(1).i32ShrU().localTee(kc).if().loop();
  step(0);
  step(1);
  f.localGet(lp).i32Const(2 * mr * 4).i32Add().localSet(lp);
  f.localGet(rp).i32Const(2 * nr * 4).i32Add().localSet(rp);
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
function packRows(m: ModuleBuilder, exportName: string, width: number): void {
  const f = m.function(exportName, [i32, i32, i32, i32, i32]);
  const [src, ld, rows, cols, dst] = [0, 1, 2, 3, 4];
  const [col0, p, from, full, valid] = [0, 0, 0, 0, 0].map(() => f.local(i32));
  // full = cols − cols mod width: panels below it copy whole vectors.
  f.localGet(cols).localGet(cols).i32Const(width).i32RemU().i32Sub().localSet(full);
  forRange(f, col0, () => f.i32Const(0), cols, width, () => {
    forRange(f, p, () => f.i32Const(0), rows, 1, () => {
      // from = src + (p·ld + col0)·4
      f.localGet(p).localGet(ld).i32Mul().localGet(col0).i32Add().i32Const(4).i32Mul()
        .localGet(src).i32Add().localSet(from);
      f.localGet(col0).localGet(full).i32LtU().if();
      const vectors = Math.floor(width / 4);
      for (let v = 0; v < vectors; v++) {
        f.localGet(dst).localGet(from).v128Load(16 * v).v128Store(16 * v);
      }
      for (let q = 4 * vectors; q < width; q++) {
        f.localGet(dst).localGet(from).f32Load(4 * q).f32Store(4 * q);
      }
      f.else();
      f.localGet(cols).localGet(col0).i32Sub().localSet(valid);
      for (let q = 0; q < width; q++) {
        f.localGet(dst);
        f.i32Const(q).localGet(valid).i32LtU().if(0x7d);
        f.localGet(from).f32Load(4 * q);
        f.else().f32Const0().end();
        f.f32Store(4 * q);
      }
      f.end();
      f.localGet(dst).i32Const(width * 4).i32Add().localSet(dst);
    });
  });
}

/**
 * packCols(src, ld, rows, cols, dst): panels of `width` rows of a row-major src[rows, ld],
 * transposed: dst[ib][p][width] = src[ib·width + r, p] for p < cols, zero past `rows`. Used
 * where the reduction runs along the source's rows (the left operand of `a·b`, both of
 * `a·bᵀ`).
 */
function packCols(m: ModuleBuilder, exportName: string, width: number): void {
  const f = m.function(exportName, [i32, i32, i32, i32, i32]);
  const [src, ld, rows, cols, dst] = [0, 1, 2, 3, 4];
  const [row0, r, p, from, to] = [0, 0, 0, 0, 0].map(() => f.local(i32));
  forRange(f, row0, () => f.i32Const(0), rows, width, () => {
    for (let q = 0; q < width; q++) {
      // to = dst + q·4, stepping width·4 per p
      f.localGet(dst).i32Const(4 * q).i32Add().localSet(to);
      f.localGet(row0).i32Const(q).i32Add().localTee(r).localGet(rows).i32LtU().if();
      f.localGet(r).localGet(ld).i32Mul().i32Const(4).i32Mul().localGet(src).i32Add()
        .localSet(from);
      forRange(f, p, () => f.i32Const(0), cols, 1, () => {
        f.localGet(to).localGet(from).f32Load(0).f32Store(0);
        f.localGet(from).i32Const(4).i32Add().localSet(from);
        f.localGet(to).i32Const(width * 4).i32Add().localSet(to);
      });
      f.else();
      forRange(f, p, () => f.i32Const(0), cols, 1, () => {
        f.localGet(to).f32Const0().f32Store(0);
        f.localGet(to).i32Const(width * 4).i32Add().localSet(to);
      });
      f.end();
    }
    f.localGet(dst).localGet(cols).i32Const(width * 4).i32Mul().i32Add().localSet(dst);
  });
}

/**
 * gemm(lp, rp, c, m, n, k, ldc, load, scratch): C[m, n] (row stride ldc elements) =
 * (load ? C : 0) + L·R from packed panels, blocked kc × (mc panels) for the caches. Edge
 * tiles run through `scratch` (mr·nr floats) so that C is never written past its edges.
 */
function gemm(m: ModuleBuilder, cfg: KernelConfig): void {
  const { mr, nr, kc: KC, mc: MC } = cfg;
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
  f.localGet(ldc).i32Const(4).i32Mul().localSet(ldcBytes);
  forRange(f, pc, () => f.i32Const(0), kk, KC, () => {
    // kc = min(KC, k − pc); accumulate into C unless this is the first block of a fresh C
    f.localGet(kk).localGet(pc).i32Sub().localTee(kc).i32Const(KC).localGet(kc).i32Const(KC)
      .i32LtU().select().localSet(kc);
    f.localGet(load).localGet(pc).i32Or().localSet(first);
    forRange(f, ic, () => f.i32Const(0), mPanels, MC, () => {
      f.localGet(ic).i32Const(MC).i32Add().localTee(icEnd).localGet(mPanels).localGet(icEnd)
        .localGet(mPanels).i32LtU().select().localSet(icEnd);
      forRange(f, jb, () => f.i32Const(0), nPanels, 1, () => {
        // rpAt = rp + (jb·k + pc)·nr·4
        f.localGet(jb).localGet(kk).i32Mul().localGet(pc).i32Add().i32Const(nr * 4).i32Mul()
          .localGet(rp).i32Add().localSet(rpAt);
        // colsOk = columns of this panel inside C
        f.localGet(nn).localGet(jb).i32Const(nr).i32Mul().i32Sub().localTee(colsOk)
          .i32Const(nr).localGet(colsOk).i32Const(nr).i32LtU().select().localSet(colsOk);
        forRange(f, ib, () => f.localGet(ic), icEnd, 1, () => {
          f.localGet(ib).localGet(kk).i32Mul().localGet(pc).i32Add().i32Const(mr * 4).i32Mul()
            .localGet(lp).i32Add().localSet(lpAt);
          f.localGet(mm).localGet(ib).i32Const(mr).i32Mul().i32Sub().localTee(rowsOk)
            .i32Const(mr).localGet(rowsOk).i32Const(mr).i32LtU().select().localSet(rowsOk);
          // cAt = c + (ib·mr·ldc + jb·nr)·4
          f.localGet(ib).i32Const(mr).i32Mul().localGet(ldc).i32Mul().localGet(jb)
            .i32Const(nr).i32Mul().i32Add().i32Const(4).i32Mul().localGet(c).i32Add()
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
                  f.localGet(i).i32Const(nr).i32Mul().localGet(j).i32Add().i32Const(4).i32Mul()
                    .localGet(scratch).i32Add();
                const cAddr = () =>
                  f.localGet(i).localGet(ldc).i32Mul().localGet(j).i32Add().i32Const(4).i32Mul()
                    .localGet(cAt).i32Add();
                if (toScratch) {
                  scratchAddr();
                  cAddr();
                } else {
                  cAddr();
                  scratchAddr();
                }
                f.f32Load(0).f32Store(0);
              });
            });
          };
          f.localGet(first).if();
          edgeCopy(true);
          f.end();
          f.localGet(lpAt).localGet(rpAt).localGet(scratch).i32Const(nr * 4).localGet(kc)
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
function addRows(m: ModuleBuilder, exportName: string, stepping: "target" | "source"): void {
  const f = m.function(exportName, [i32, i32, i32, i32]);
  const [first, second, mm, nn] = [0, 1, 2, 3];
  const [target, source] = exportName === "addBias" ? [first, second] : [second, first];
  const [i, j, vectors, at] = [0, 0, 0, 0].map(() => f.local(i32));
  f.localGet(nn).localGet(nn).i32Const(4).i32RemU().i32Sub().localSet(vectors);
  const add = (vector: boolean) => {
    f.localGet(j).i32Const(4).i32Mul().localGet(target).i32Add().localTee(at);
    f.localGet(at);
    if (vector) f.v128Load(0);
    else f.f32Load(0);
    f.localGet(j).i32Const(4).i32Mul().localGet(source).i32Add();
    if (vector) f.v128Load(0).f32x4Add().v128Store(0);
    else f.f32Load(0).f32Add().f32Store(0);
  };
  forRange(f, i, () => f.i32Const(0), mm, 1, () => {
    forRange(f, j, () => f.i32Const(0), vectors, 4, () => add(true));
    forRange(f, j, () => f.localGet(vectors), nn, 1, () => add(false));
    const stepped = stepping === "target" ? target : source;
    f.localGet(stepped).localGet(nn).i32Const(4).i32Mul().i32Add().localSet(stepped);
  });
}

/**
 * relu(x, out, n): out = max(x, 0); reluBackward(x, dvalues, out, n): out = x > 0 ?
 * dvalues : 0 (the book's choice at the kink), four at a time, the last n mod 4 one by one.
 */
function relu(m: ModuleBuilder, backward: boolean): void {
  const f = backward
    ? m.function("reluBackward", [i32, i32, i32, i32])
    : m.function("relu", [i32, i32, i32]);
  const [x, dv, out, n] = backward ? [0, 1, 2, 3] : [0, -1, 1, 2];
  const [i, vectors] = [f.local(i32), f.local(i32)];
  f.localGet(n).localGet(n).i32Const(4).i32RemU().i32Sub().i32Const(4).i32Mul().localSet(vectors);
  f.localGet(n).i32Const(4).i32Mul().localSet(n); // bytes from here on
  const at = (base: number) => f.localGet(base).localGet(i).i32Add();
  forRange(f, i, () => f.i32Const(0), vectors, 16, () => {
    at(out);
    if (backward) {
      at(dv).v128Load(0);
      at(x).v128Load(0).v128Zero().f32x4Gt().v128And();
    } else at(x).v128Load(0).v128Zero().f32x4Max();
    f.v128Store(0);
  });
  forRange(f, i, () => f.localGet(vectors), n, 4, () => {
    at(out);
    if (backward) {
      at(dv).f32Load(0).f32Const0();
      at(x).f32Load(0).f32Const0().f32Gt().select();
    } else at(x).f32Load(0).f32Const0().f32Max();
    f.f32Store(0);
  });
}

/** Builds the kernel module for one configuration. */
export function buildKernels(cfg: KernelConfig): Uint8Array {
  if (cfg.nr % 4 !== 0) throw new Error(`buildKernels: nr must be a multiple of 4, got ${cfg.nr}`);
  const m = new ModuleBuilder();
  tileKernel(m, cfg);
  gemm(m, cfg);
  packRows(m, "packRowsL", cfg.mr);
  packRows(m, "packRowsR", cfg.nr);
  packCols(m, "packColsL", cfg.mr);
  packCols(m, "packColsR", cfg.nr);
  addRows(m, "addBias", "target");
  addRows(m, "sumRows", "source");
  relu(m, false);
  relu(m, true);
  return m.encode();
}
