import { type History, validationName } from "../training/history.ts";
import {
  axes,
  escapeXml,
  type Frame,
  legend,
  MARGIN,
  niceScale,
  PALETTE,
  projector,
  svgDocument,
  title,
} from "./_svg.ts";

/** Options of {@linkcode historyPlot}. */
export interface HistoryPlotOptions {
  /** Width of each panel in pixels; 420 when omitted. */
  width?: number;
  /** Height in pixels; 320 when omitted. */
  height?: number;
  /** The series to draw, one panel each (validation twins join them); all but penalties when omitted. */
  series?: string[];
}

const TRAIN = PALETTE[0];
const VALIDATION = PALETTE[1];

// Training series get a panel each; "valX" joins the panel of "x".
function panelNames(history: History): string[] {
  return history.names().filter((name) => !/^val[A-Z]/.test(name) && !/egularization/.test(name));
}

/**
 * Training curves of a `fit` run as an SVG document: one panel per figure (loss, then each
 * metric), the training series solid and the validation series (`valLoss`, …) dashed, over
 * the epochs.
 *
 * @throws {RangeError} when the history holds no epochs or a requested series is unknown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { History, historyPlot } from "@chainrule/nn";
 *
 * const history = new History();
 * history.record(0, { loss: 1.0, regularizationLoss: 0, accuracy: 0.5, valLoss: 1.1, valAccuracy: 0.4 });
 * history.record(1, { loss: 0.6, regularizationLoss: 0, accuracy: 0.8, valLoss: 0.8, valAccuracy: 0.7 });
 * const svg = historyPlot(history);
 * assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
 * assert.match(svg, /data-series="valAccuracy"/);
 * ```
 */
export function historyPlot(history: History, options: HistoryPlotOptions = {}): string {
  if (history.epochs.length === 0) {
    throw new RangeError("historyPlot: the history holds no epochs; train first");
  }
  const names = options.series ?? panelNames(history);
  for (const name of names) history.get(name); // throws for unknown names
  const width = options.width ?? 420;
  const height = options.height ?? 320;
  const panels = names.map((name, i) => panel(history, name, i * width, width, height));
  return svgDocument(width * names.length, height, panels.join("\n"));
}

function panel(history: History, name: string, offset: number, width: number, height: number) {
  const twin = validationName(name);
  const lines = [{ name, color: TRAIN, dashed: false, label: "training" }];
  if (history.names().includes(twin)) {
    lines.push({ name: twin, color: VALIDATION, dashed: true, label: "validation" });
  }
  let lo = Infinity, hi = -Infinity;
  for (const line of lines) {
    for (const v of history.get(line.name)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const epochs = history.epochs;
  const x = niceScale(epochs[0], epochs.at(-1)!, 6, true);
  const y = lo <= hi ? niceScale(lo, hi, 5) : niceScale(0, 1, 5);
  const frame: Frame = {
    left: offset + MARGIN.left,
    top: MARGIN.top,
    width: width - MARGIN.left - MARGIN.right,
    height: height - MARGIN.top - MARGIN.bottom,
  };
  const at = projector(frame, x, y);
  const out = [
    `<g class="panel" data-panel="${escapeXml(name)}">`,
    title(frame, name),
    axes(frame, x, y, { x: "epoch", y: name }),
  ];
  for (const line of lines) {
    const values = history.get(line.name);
    const keep = thin(epochs, values, frame.width);
    const points = keep.map((i) => at(epochs[i], values[i]));
    const dash = line.dashed ? ` stroke-dasharray="6 4"` : "";
    out.push(
      `<polyline class="series" data-series="${escapeXml(line.name)}" points="${
        points.join(" ")
      }" fill="none" stroke="${line.color}" stroke-width="2" stroke-linejoin="round"${dash}/>`,
    );
    if (points.length === 1) {
      const [cx, cy] = points[0].split(",");
      out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${line.color}"/>`);
    }
  }
  out.push(legend(frame, lines), `</g>`);
  return out.join("\n");
}

// The indices worth drawing: every finite point, or with more points than pixels, the first,
// lowest, highest and last of each pixel column (so spikes survive the thinning).
function thin(epochs: number[], values: number[], columns: number): number[] {
  const finite = values.flatMap((v, i) => Number.isFinite(v) ? [i] : []);
  if (finite.length <= 2 * columns) return finite;
  const first = epochs[0];
  const span = epochs.at(-1)! - first || 1;
  const keep: number[] = [];
  let bucket: number[] = [];
  const flush = () => {
    if (bucket.length === 0) return;
    let low = bucket[0], high = bucket[0];
    for (const i of bucket) {
      if (values[i] < values[low]) low = i;
      if (values[i] > values[high]) high = i;
    }
    keep.push(...new Set([bucket[0], Math.min(low, high), Math.max(low, high), bucket.at(-1)!]));
    bucket = [];
  };
  let column = -1;
  for (const i of finite) {
    const c = Math.floor((epochs[i] - first) / span * columns);
    if (c !== column) flush();
    column = c;
    bucket.push(i);
  }
  flush();
  return keep;
}
