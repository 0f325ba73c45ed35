// The convolution and pooling layers written as the definitions read: one float64 loop per
// output element, no lowering. The tests compare the layers with these.

/** A 2-D window: kernel, stride, dilation and the padding on each side. */
export interface NaiveWindow {
  kernel: [number, number];
  stride?: [number, number];
  dilation?: [number, number];
  /** [top, bottom, left, right] */
  pad?: [number, number, number, number];
}

interface Geometry {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  top: number;
  left: number;
  oh: number;
  ow: number;
}

function geometry(window: NaiveWindow, h: number, w: number): Geometry {
  const [kh, kw] = window.kernel;
  const [sh, sw] = window.stride ?? [1, 1];
  const [dh, dw] = window.dilation ?? [1, 1];
  const [top, bottom, left, right] = window.pad ?? [0, 0, 0, 0];
  const oh = Math.floor((h + top + bottom - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + left + right - dw * (kw - 1) - 1) / sw) + 1;
  return { kh, kw, sh, sw, dh, dw, top, left, oh, ow };
}

/** An image batch [n][c][h][w] as nested arrays. */
export type Images = number[][][][];

/** Shape of an image batch. */
export function shapeOf(x: Images): [number, number, number, number] {
  return [x.length, x[0].length, x[0][0].length, x[0][0][0].length];
}

/** Nested arrays from a flat row-major array. */
export function nest(flat: ArrayLike<number>, shape: number[]): Images {
  const [n, c, h, w] = shape;
  let i = 0;
  return Array.from(
    { length: n },
    () =>
      Array.from(
        { length: c },
        () => Array.from({ length: h }, () => Array.from({ length: w }, () => flat[i++])),
      ),
  );
}

/**
 * Convolution (cross-correlation) of x [n][c][h][w] with weights [o][c][kh][kw] and biases
 * [o]: outputs [n][o][oh][ow], and for dvalues of that shape the gradients of
 * Σ outputs·dvalues with respect to x, weights and biases.
 */
export function naiveConv(
  x: Images,
  weights: Images,
  biases: number[] | null,
  window: NaiveWindow,
  dvalues?: Images,
): { outputs: Images; dinputs: Images; dweights: Images; dbiases: number[] } {
  const [n, c, h, w] = shapeOf(x);
  const o = weights.length;
  const g = geometry(window, h, w);
  const zeros = (a: number, b: number, d: number, e: number) =>
    Array.from(
      { length: a },
      () =>
        Array.from({ length: b }, () =>
          Array.from({ length: d }, () => new Array<number>(e).fill(0))),
    );
  const outputs = zeros(n, o, g.oh, g.ow);
  const dinputs = zeros(n, c, h, w);
  const dweights = zeros(o, c, g.kh, g.kw);
  const dbiases = new Array<number>(o).fill(0);
  for (let s = 0; s < n; s++) {
    for (let k = 0; k < o; k++) {
      for (let y = 0; y < g.oh; y++) {
        for (let z = 0; z < g.ow; z++) {
          const d = dvalues ? dvalues[s][k][y][z] : 0;
          let sum = biases ? biases[k] : 0;
          dbiases[k] += d;
          for (let ch = 0; ch < c; ch++) {
            for (let i = 0; i < g.kh; i++) {
              for (let j = 0; j < g.kw; j++) {
                const r = y * g.sh + i * g.dh - g.top, q = z * g.sw + j * g.dw - g.left;
                if (r < 0 || r >= h || q < 0 || q >= w) continue;
                sum += weights[k][ch][i][j] * x[s][ch][r][q];
                dinputs[s][ch][r][q] += weights[k][ch][i][j] * d;
                dweights[k][ch][i][j] += x[s][ch][r][q] * d;
              }
            }
          }
          outputs[s][k][y][z] = sum;
        }
      }
    }
  }
  return { outputs, dinputs, dweights, dbiases };
}

/**
 * Max or average pooling of x [n][c][h][w] (padding: never the max; zeros in the mean, which
 * divides by kh·kw), with the gradient of Σ outputs·dvalues: for max, all of it to the first
 * maximum of each window in row-major order.
 */
export function naivePool(
  x: Images,
  window: NaiveWindow,
  kind: "max" | "avg",
  dvalues?: Images,
): { outputs: Images; dinputs: Images } {
  const [n, c, h, w] = shapeOf(x);
  const g = geometry(window, h, w);
  const outputs = nest(new Array(n * c * g.oh * g.ow).fill(0), [n, c, g.oh, g.ow]);
  const dinputs = nest(new Array(n * c * h * w).fill(0), [n, c, h, w]);
  for (let s = 0; s < n; s++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < g.oh; y++) {
        for (let z = 0; z < g.ow; z++) {
          const d = dvalues ? dvalues[s][ch][y][z] : 0;
          let best = -Infinity, at: [number, number] = [-1, -1], sum = 0;
          for (let i = 0; i < g.kh; i++) {
            for (let j = 0; j < g.kw; j++) {
              const r = y * g.sh + i - g.top, q = z * g.sw + j - g.left;
              if (r < 0 || r >= h || q < 0 || q >= w) continue;
              sum += x[s][ch][r][q];
              if (x[s][ch][r][q] > best) {
                best = x[s][ch][r][q];
                at = [r, q];
              }
              if (kind === "avg") dinputs[s][ch][r][q] += d / (g.kh * g.kw);
            }
          }
          outputs[s][ch][y][z] = kind === "max" ? best : sum / (g.kh * g.kw);
          if (kind === "max") dinputs[s][ch][at[0]][at[1]] += d;
        }
      }
    }
  }
  return { outputs, dinputs };
}

/** The largest |a − b| over two nested arrays of the same shape. */
export function maxDifference(a: unknown, b: unknown): number {
  const flat = (v: unknown): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number]);
  const x = flat(a), y = flat(b);
  if (x.length !== y.length) throw new RangeError(`sizes differ: ${x.length} and ${y.length}`);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
}
