import { describe } from "../core/_describe.ts";
import type { Targets } from "../core/loss.ts";
import type { PredictOptions } from "../training/predict.ts";
import { argmaxRows } from "../training/metrics/categorical_accuracy.ts";
import { formatShape, Tensor, type TensorLike, toTensor } from "../core/tensor.ts";
import {
  axes,
  fmt,
  type Frame,
  legend,
  MARGIN,
  niceScale,
  PALETTE,
  svgDocument,
  tint,
  title,
} from "./_svg.ts";

/** Anything with a batched `predict`, such as a `Sequential`. */
export interface Predictor {
  /** Outputs `[samples, outputs]` for inputs `[samples, features]`. */
  predict(x: Tensor, options?: PredictOptions): Tensor;
}

/** Options of {@linkcode decisionBoundaryPlot}. */
export interface DecisionBoundaryOptions {
  /** Grid cells per side; 150 when omitted. */
  resolution?: number;
  /** Width in pixels; 480 when omitted. */
  width?: number;
  /** Height in pixels; 500 when omitted. */
  height?: number;
  /** Title above the plot; "decision boundary" when omitted. */
  title?: string;
  /** Names of the classes for the legend; "class 0", … when omitted. */
  labels?: string[];
  /** For models with a single output: above it is class 1; 0.5 when omitted. */
  threshold?: number;
  /** Fraction of the data's range added around it; 0.1 when omitted. */
  padding?: number;
}

/**
 * The regions a 2-D classifier assigns to each class, with the data points on top, as an
 * SVG document: the book's spiral figure.
 *
 * The model predicts a `resolution × resolution` grid over the data's extent; each cell
 * gets the class with the largest output (or, for a single output, output > threshold).
 *
 * Shapes: x `[samples, 2]`; y class indices `[samples]` or one-hot rows.
 *
 * @throws {TypeError} when x is not `[samples, 2]` or y does not hold one class per sample.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decisionBoundaryPlot, Dense, Sequential } from "@chainrule/nn";
 *
 * const model = new Sequential([new Dense(2, 2, { weights: [[1, -1], [0, 0]] })]);
 * const svg = decisionBoundaryPlot(model, [[-1, 0], [1, 0]], [1, 0], { resolution: 10 });
 * assert.equal(svg.match(/class="point"/g)?.length, 2);
 * ```
 */
export function decisionBoundaryPlot(
  model: Predictor,
  x: TensorLike,
  y: Targets,
  options: DecisionBoundaryOptions = {},
): string {
  const where = "decisionBoundaryPlot";
  const points = toTensor(x, x instanceof Tensor ? x.dtype : "float64");
  if (points.rank !== 2 || points.shape[1] !== 2 || points.shape[0] === 0) {
    throw new TypeError(
      `${where}: x must be [samples, 2] points, got shape ${formatShape(points.shape)}`,
    );
  }
  const samples = points.shape[0];
  const labels = classLabels(y, samples, where);
  const resolution = options.resolution ?? 150;
  if (!Number.isSafeInteger(resolution) || resolution < 2) {
    throw new RangeError(
      `${where}: resolution must be an integer ≥ 2, got ${describe(resolution)}`,
    );
  }
  const width = options.width ?? 480;
  const height = options.height ?? 500;
  const frame: Frame = {
    left: MARGIN.left,
    top: MARGIN.top,
    width: width - MARGIN.left - MARGIN.right,
    height: height - MARGIN.top - MARGIN.bottom,
  };
  const [sx, sy] = [0, 1].map((axis) => {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < samples; i++) {
      const v = points.data[i * 2 + axis];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const pad = (hi - lo) * (options.padding ?? 0.1);
    return niceScale(lo - pad, hi + pad, 5);
  });

  const grid = predictGrid(model, sx.min, sx.max, sy.min, sy.max, resolution, points.dtype);
  const cells = classify(grid, options.threshold ?? 0.5);
  let classes = 0;
  for (const c of cells) classes = Math.max(classes, c + 1);
  for (const c of labels) classes = Math.max(classes, c + 1);

  const out = [
    title(frame, options.title ?? "decision boundary"),
    regions(cells, resolution, frame),
  ];
  out.push(axes(frame, sx, sy, { x: "x₁", y: "x₂" }, false));
  out.push(`<g class="points" stroke="#222" stroke-width="0.6">`);
  const px = frame.width / (sx.max - sx.min);
  const py = frame.height / (sy.max - sy.min);
  for (let i = 0; i < samples; i++) {
    const cx = frame.left + (points.data[i * 2] - sx.min) * px;
    const cy = frame.top + frame.height - (points.data[i * 2 + 1] - sy.min) * py;
    out.push(
      `<circle class="point" data-class="${labels[i]}" cx="${fmt(cx)}" cy="${
        fmt(cy)
      }" r="3.2" fill="${color(labels[i])}"/>`,
    );
  }
  out.push(`</g>`);
  const names = options.labels ?? Array.from({ length: classes }, (_, c) => `class ${c}`);
  out.push(
    legend(
      frame,
      names.slice(0, classes).map((label, c) => ({ label, color: color(c), dot: true })),
    ),
  );
  return svgDocument(width, height, out.join("\n"));
}

function color(c: number): string {
  return PALETTE[c % PALETTE.length];
}

function classLabels(y: Targets, samples: number, where: string): Int32Array {
  if (y instanceof Tensor && y.rank === 2) {
    if (y.shape[0] !== samples) {
      throw new TypeError(
        `${where}: y has shape ${formatShape(y.shape)}, expected ${samples} rows like x`,
      );
    }
    return argmaxRows(y);
  }
  const values = y instanceof Tensor ? y.data : y;
  if (values.length !== samples || (y instanceof Tensor && y.rank !== 1)) {
    const shape = y instanceof Tensor ? formatShape(y.shape) : `[${values.length}]`;
    throw new TypeError(
      `${where}: y must hold one class per point ([${samples}]), got shape ${shape}`,
    );
  }
  const labels = new Int32Array(samples);
  for (let i = 0; i < samples; i++) {
    if (!Number.isInteger(values[i]) || values[i] < 0) {
      throw new RangeError(`${where}: y[${i}] = ${values[i]} is not a class index`);
    }
    labels[i] = values[i];
  }
  return labels;
}

// Cell centres, top row first (largest x₂), so that row r of the grid is row r on screen.
function predictGrid(
  model: Predictor,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  n: number,
  dtype: "float32" | "float64",
): Tensor {
  const inputs = Tensor.zeros([n * n, 2], { dtype });
  const dx = (x1 - x0) / n;
  const dy = (y1 - y0) / n;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      inputs.data[(r * n + c) * 2] = x0 + (c + 0.5) * dx;
      inputs.data[(r * n + c) * 2 + 1] = y1 - (r + 0.5) * dy;
    }
  }
  return model.predict(inputs, { batchSize: 4096 });
}

function classify(outputs: Tensor, threshold: number): Int32Array {
  if (outputs.rank === 2 && outputs.shape[1] > 1) return argmaxRows(outputs);
  const cells = new Int32Array(outputs.size);
  for (let i = 0; i < cells.length; i++) cells[i] = outputs.data[i] > threshold ? 1 : 0;
  return cells;
}

// One rect per run of equal cells in a row: a few hundred elements instead of n².
function regions(cells: Int32Array, n: number, frame: Frame): string {
  const w = frame.width / n;
  const h = frame.height / n;
  const out = [`<g class="regions" shape-rendering="crispEdges">`];
  for (let r = 0; r < n; r++) {
    let start = 0;
    for (let c = 1; c <= n; c++) {
      const cls = cells[r * n + start];
      if (c < n && cells[r * n + c] === cls) continue;
      // Overlaps its neighbours by half a pixel so that no hairline seams show.
      out.push(
        `<rect x="${fmt(frame.left + start * w)}" y="${fmt(frame.top + r * h)}" width="${
          fmt((c - start) * w + 0.5)
        }" height="${fmt(h + 0.5)}" fill="${tint(color(cls), 0.35)}"/>`,
      );
      start = c;
    }
  }
  out.push(`</g>`);
  return out.join("\n");
}
