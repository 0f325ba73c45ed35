// Shared pieces of the SVG plots: escaping, number formatting, nice axis scales, a framed
// plot area with ticks and grid lines. Private to plot/.

/** Tableau 10: distinct, colour-blind-friendly series colours. */
export const PALETTE = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/** The colour mixed with white: `amount` 0 is white, 1 the colour itself. */
export function tint(color: string, amount: number): string {
  const value = parseInt(color.slice(1), 16);
  const channel = (shift: number) => {
    const c = (value >> shift) & 255;
    return Math.round(255 - (255 - c) * amount).toString(16).padStart(2, "0");
  };
  return `#${channel(16)}${channel(8)}${channel(0)}`;
}

/** Text safe inside an element or a double-quoted attribute. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** A coordinate with at most two decimals. */
export function fmt(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/** A linear axis: its (rounded-out) domain and the tick values on it. */
export interface Scale {
  min: number;
  max: number;
  ticks: number[];
  decimals: number;
}

/** A scale over [min, max] with about `count` ticks at 1, 2 or 5 × 10ⁿ. */
export function niceScale(min: number, max: number, count = 5, integers = false): Scale {
  if (!(max > min)) {
    const pad = Math.abs(min) * 0.1 || 1;
    [min, max] = [min - pad, max + pad];
  }
  const rough = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const norm = rough / magnitude;
  let step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  if (integers) step = Math.max(1, Math.round(step));
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const ticks: number[] = [];
  for (let i = 0; lo + i * step <= hi + step * 1e-9; i++) ticks.push(lo + i * step);
  return { min: lo, max: hi, ticks, decimals };
}

/** The plot area of a panel, in pixels. */
export interface Frame {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Maps data coordinates to pixels inside `frame`. */
export function projector(frame: Frame, x: Scale, y: Scale): (u: number, v: number) => string {
  const sx = frame.width / (x.max - x.min);
  const sy = frame.height / (y.max - y.min);
  return (u, v) =>
    `${fmt(frame.left + (u - x.min) * sx)},${fmt(frame.top + frame.height - (v - y.min) * sy)}`;
}

/** Grid lines, ticks, tick labels, axis labels and the frame's border. */
export function axes(
  frame: Frame,
  x: Scale,
  y: Scale,
  labels: { x: string; y: string },
  grid = true,
): string {
  const { left, top, width, height } = frame;
  const bottom = top + height;
  const out: string[] = [`<g class="axes" stroke="#888" stroke-width="1">`];
  for (const t of x.ticks) {
    const px = fmt(left + (t - x.min) / (x.max - x.min) * width);
    if (grid) out.push(`<line x1="${px}" y1="${top}" x2="${px}" y2="${bottom}" stroke="#e6e6e6"/>`);
    out.push(`<line x1="${px}" y1="${bottom}" x2="${px}" y2="${bottom + 4}"/>`);
    out.push(
      `<text x="${px}" y="${bottom + 16}" text-anchor="middle" stroke="none" fill="#333">${
        t.toFixed(x.decimals)
      }</text>`,
    );
  }
  for (const t of y.ticks) {
    const py = fmt(bottom - (t - y.min) / (y.max - y.min) * height);
    if (grid) {
      out.push(`<line x1="${left}" y1="${py}" x2="${left + width}" y2="${py}" stroke="#e6e6e6"/>`);
    }
    out.push(`<line x1="${left - 4}" y1="${py}" x2="${left}" y2="${py}"/>`);
    out.push(
      `<text x="${left - 7}" y="${py}" dy="0.32em" text-anchor="end" stroke="none" fill="#333">${
        t.toFixed(y.decimals)
      }</text>`,
    );
  }
  out.push(`<rect x="${left}" y="${top}" width="${width}" height="${height}" fill="none"/>`);
  out.push(
    `<text x="${fmt(left + width / 2)}" y="${
      bottom + 34
    }" text-anchor="middle" stroke="none" fill="#333">${escapeXml(labels.x)}</text>`,
    `<text transform="translate(${fmt(left - 44)},${
      fmt(top + height / 2)
    }) rotate(-90)" text-anchor="middle" stroke="none" fill="#333">${escapeXml(labels.y)}</text>`,
    `</g>`,
  );
  return out.join("\n");
}

/** Space around the frame: a title row and a legend row above, tick labels left and below. */
export const MARGIN = { left: 60, right: 28, top: 54, bottom: 46 };

/** A title centred above the frame. */
export function title(frame: Frame, text: string): string {
  return `<text class="title" x="${fmt(frame.left + frame.width / 2)}" y="${
    fmt(frame.top - 34)
  }" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(text)}</text>`;
}

/** A legend entry: a line (dashed or not) or a dot in the series colour. */
export interface LegendEntry {
  label: string;
  color: string;
  dashed?: boolean;
  dot?: boolean;
}

/** A one-row legend between the title and the frame, right-aligned, so it hides no data. */
export function legend(frame: Frame, entries: LegendEntry[]): string {
  const widths = entries.map((e) => 30 + e.label.length * 7);
  let x = frame.left + frame.width - widths.reduce((a, b) => a + b, 0);
  const cy = frame.top - 12;
  const out = [`<g class="legend">`];
  entries.forEach((entry, i) => {
    out.push(
      entry.dot
        ? `<circle cx="${
          fmt(x + 9)
        }" cy="${cy}" r="4" fill="${entry.color}" stroke="#333" stroke-width="0.6"/>`
        : `<line x1="${fmt(x)}" y1="${cy}" x2="${
          fmt(x + 18)
        }" y2="${cy}" stroke="${entry.color}" stroke-width="2.5"${
          entry.dashed ? ` stroke-dasharray="5 3"` : ""
        }/>`,
      `<text x="${fmt(x + 23)}" y="${cy}" dy="0.32em">${escapeXml(entry.label)}</text>`,
    );
    x += widths[i];
  });
  out.push(`</g>`);
  return out.join("\n");
}

/** A complete standalone SVG document. */
export function svgDocument(width: number, height: number, body: string): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    body,
    `</svg>`,
    "",
  ].join("\n");
}
