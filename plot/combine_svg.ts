import { describe } from "../core/_describe.ts";
/** Options of {@linkcode combineSvg}. */
export interface CombineOptions {
  /** Figures per row; all in one row when omitted. */
  columns?: number;
}

const ROOT = /<svg\b[^>]*>/;

function size(svg: string, i: number): [number, number] {
  const root = svg.match(ROOT)?.[0];
  const width = Number(root?.match(/\swidth="([\d.]+)"/)?.[1]);
  const height = Number(root?.match(/\sheight="([\d.]+)"/)?.[1]);
  if (!root || !(width > 0) || !(height > 0)) {
    throw new TypeError(
      `combineSvg: figure ${i} has no <svg> root with numeric width and height attributes`,
    );
  }
  return [width, height];
}

/**
 * Lays SVG documents out in a grid, as one SVG document (each figure nested as an `<svg>`
 * element at its place).
 *
 * @throws {TypeError} when a figure has no root `<svg width height>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { combineSvg } from "@chainrule/nn";
 *
 * const a = `<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50"></svg>`;
 * const both = combineSvg([a, a]);
 * assert.match(both, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="200" height="50"/);
 * ```
 */
export function combineSvg(figures: string[], options: CombineOptions = {}): string {
  if (!Array.isArray(figures) || figures.length === 0) {
    throw new RangeError("combineSvg: figures must be a non-empty array of SVG documents");
  }
  const columns = options.columns ?? figures.length;
  if (!Number.isSafeInteger(columns) || columns < 1) {
    throw new RangeError(
      `combineSvg: columns must be a positive integer, got ${describe(columns)}`,
    );
  }
  const sizes = figures.map(size);
  const widths: number[] = [];
  const heights: number[] = [];
  sizes.forEach(([w, h], i) => {
    const [row, col] = [Math.floor(i / columns), i % columns];
    widths[col] = Math.max(widths[col] ?? 0, w);
    heights[row] = Math.max(heights[row] ?? 0, h);
  });
  const offset = (list: number[], k: number) => list.slice(0, k).reduce((a, b) => a + b, 0);
  const body = figures.map((svg, i) => {
    const x = offset(widths, i % columns);
    const y = offset(heights, Math.floor(i / columns));
    const inner = svg.replace(/<\?xml[^>]*\?>\s*/, "");
    return inner.replace(ROOT, (root) => root.replace(/^<svg\b/, `<svg x="${x}" y="${y}"`));
  });
  const width = offset(widths, widths.length);
  const height = offset(heights, heights.length);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    ...body.map((s) => s.trim()),
    `</svg>`,
    "",
  ].join("\n");
}
