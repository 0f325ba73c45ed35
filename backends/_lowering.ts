// im2col and col2im, the lowering of a convolution to one matrix product, shared by
// Conv2D's own lowering (layers/conv2d.ts) and the wasm backend's convolution tasks, which
// run them on every thread of the worker pool (backends/_tasks.ts).
//
// The worker threads run these very functions: their source text is copied into the
// workers' source (backends/_worker_source.ts), so they must stay self-contained: plain
// function declarations that call only each other and read only their arguments (no
// imports, no module-level constants, no closures).
//
// Dimension letters: N samples, C channels, H×W input height and width, KH×KW kernel,
// OH×OW output height and width, P = OH·OW output positions per channel.
import type { Window2D } from "../core/backend.ts";
import type { FloatArray } from "../core/tensor.ts";

// The output positions o in [0, outSize) whose input position o·stride + offset lies in
// [0, inSize) are [rangeFirst, rangeEnd) (plain numbers, so that the loops allocate nothing).
export function rangeFirst(offset: number, stride: number, outSize: number): number {
  return Math.min(offset >= 0 ? 0 : Math.ceil(-offset / stride), outSize);
}

export function rangeEnd(offset: number, stride: number, inSize: number, outSize: number): number {
  const end = Math.min(outSize, Math.floor((inSize - 1 - offset) / stride) + 1);
  return Math.max(rangeFirst(offset, stride, outSize), end);
}

/**
 * im2col for samples `[first, first + count)` of `x` `[N, C, H, W]`: writes `cols`
 * `[C·KH·KW, count·P]`, row `(c·KH + i)·KW + j`, column `s·P + oh·OW + ow`, holding
 * `x[first + s, c, oh·SH + i·DH − padTop, ow·SW + j·DW − padLeft]` (0 in the padding), so
 * that `W[O, C·KH·KW] · cols` is the convolution of those samples.
 */
export function im2col(
  x: FloatArray,
  first: number,
  count: number,
  channels: number,
  height: number,
  width: number,
  window: Window2D,
  outH: number,
  outW: number,
  cols: FloatArray,
): void {
  const { kernelH, kernelW, strideH, strideW, dilationH, dilationW } = window;
  const positions = outH * outW;
  const rowLength = count * positions; // [C·KH·KW, count·P]
  const plane = height * width;
  // Stride 1 with outputs as wide as the inputs ("same" padding): a row of cols is the
  // image shifted by (dy, dx), one contiguous copy; only the columns that wrap around the
  // image's edge are zeroed after it.
  const contiguous = strideH === 1 && strideW === 1 && outW === width;
  let row = 0;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < kernelH; i++) {
      const dy = i * dilationH - window.padTop;
      const ohFirst = rangeFirst(dy, strideH, outH), ohEnd = rangeEnd(dy, strideH, height, outH);
      for (let j = 0; j < kernelW; j++, row++) {
        const dx = j * dilationW - window.padLeft;
        const owFirst = rangeFirst(dx, strideW, outW), owEnd = rangeEnd(dx, strideW, width, outW);
        for (let s = 0; s < count; s++) {
          const source = ((first + s) * channels + c) * plane + dx; // + ih·W + ow·SW
          const start = row * rowLength + s * positions;
          if (contiguous) {
            const from = source + dy * width;
            shiftedCopy(x, from, cols, start, positions, ohFirst, ohEnd, owFirst, owEnd, outW);
            continue;
          }
          // Plain loops, not fill(): a builtin call per short run cost more than the copies.
          for (let k = start, end = start + ohFirst * outW; k < end; k++) cols[k] = 0;
          for (let oh = ohFirst; oh < ohEnd; oh++) {
            const to = start + oh * outW;
            const from = source + (oh * strideH + dy) * width;
            for (let ow = 0; ow < owFirst; ow++) cols[to + ow] = 0;
            if (strideW === 1) {
              for (let ow = owFirst; ow < owEnd; ow++) cols[to + ow] = x[from + ow];
            } else {
              for (let ow = owFirst; ow < owEnd; ow++) cols[to + ow] = x[from + ow * strideW];
            }
            for (let ow = owEnd; ow < outW; ow++) cols[to + ow] = 0;
          }
          for (let k = start + ohEnd * outW, end = start + positions; k < end; k++) cols[k] = 0;
        }
      }
    }
  }
}

// cols[start + p] = x[source + p] for the positions p = oh·W + ow of the valid block
// (rows [ohFirst, ohEnd), columns [owFirst, owEnd)), 0 at the other positions of
// [0, positions).
export function shiftedCopy(
  x: FloatArray,
  source: number,
  cols: FloatArray,
  start: number,
  positions: number,
  ohFirst: number,
  ohEnd: number,
  owFirst: number,
  owEnd: number,
  width: number,
): void {
  const empty = ohEnd <= ohFirst || owEnd <= owFirst;
  const lo = empty ? positions : ohFirst * width + owFirst;
  const hi = empty ? positions : (ohEnd - 1) * width + owEnd;
  for (let k = 0; k < lo; k++) cols[start + k] = 0;
  for (let k = lo; k < hi; k++) cols[start + k] = x[source + k];
  for (let k = hi; k < positions; k++) cols[start + k] = 0;
  if (owFirst > 0 || owEnd < width) {
    for (let oh = ohFirst; oh < ohEnd; oh++) {
      const rowStart = start + oh * width;
      for (let ow = 0; ow < owFirst; ow++) cols[rowStart + ow] = 0;
      for (let ow = owEnd; ow < width; ow++) cols[rowStart + ow] = 0;
    }
  }
}

/**
 * col2im, the adjoint of {@linkcode im2col}: adds every element of `cols`
 * `[C·KH·KW, count·P]` into the element of `dx` `[N, C, H, W]` it was read from (padding
 * cells are dropped, and may be overwritten with zeros in `cols`). Samples
 * `[first, first + count)` of `dx` must hold what they should be added to (zeros for a fresh
 * gradient).
 */
export function col2im(
  cols: FloatArray,
  first: number,
  count: number,
  channels: number,
  height: number,
  width: number,
  window: Window2D,
  outH: number,
  outW: number,
  dx: FloatArray,
): void {
  const { kernelH, kernelW, strideH, strideW, dilationH, dilationW } = window;
  const positions = outH * outW;
  const rowLength = count * positions;
  const plane = height * width;
  const contiguous = strideH === 1 && strideW === 1 && outW === width; // as in im2col
  let row = 0;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < kernelH; i++) {
      const dy = i * dilationH - window.padTop;
      const ohFirst = rangeFirst(dy, strideH, outH), ohEnd = rangeEnd(dy, strideH, height, outH);
      for (let j = 0; j < kernelW; j++, row++) {
        const dxOffset = j * dilationW - window.padLeft;
        const owFirst = rangeFirst(dxOffset, strideW, outW);
        const owEnd = rangeEnd(dxOffset, strideW, width, outW);
        if (ohEnd <= ohFirst || owEnd <= owFirst) continue;
        for (let s = 0; s < count; s++) {
          const target = ((first + s) * channels + c) * plane + dxOffset;
          const start = row * rowLength + s * positions;
          if (contiguous) {
            // One run over the valid block; the columns that wrap around the image's edge
            // are zeroed in cols first, so that they add nothing.
            for (let oh = ohFirst; oh < ohEnd; oh++) {
              const rowStart = start + oh * outW;
              for (let ow = 0; ow < owFirst; ow++) cols[rowStart + ow] = 0;
              for (let ow = owEnd; ow < outW; ow++) cols[rowStart + ow] = 0;
            }
            const to = target + dy * width;
            const hi = (ohEnd - 1) * outW + owEnd;
            for (let k = ohFirst * outW + owFirst; k < hi; k++) dx[to + k] += cols[start + k];
            continue;
          }
          for (let oh = ohFirst; oh < ohEnd; oh++) {
            const from = start + oh * outW;
            const to = target + (oh * strideH + dy) * width;
            if (strideW === 1) {
              for (let ow = owFirst; ow < owEnd; ow++) dx[to + ow] += cols[from + ow];
            } else {
              for (let ow = owFirst; ow < owEnd; ow++) dx[to + ow * strideW] += cols[from + ow];
            }
          }
        }
      }
    }
  }
}
