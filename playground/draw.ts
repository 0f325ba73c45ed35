/// <reference lib="dom" />
// Canvas drawing for the page: the decision regions with the points, and the curves.
import type { PlaygroundData } from "./datasets.ts";
import type { RegionGrid } from "./trainer.ts";

/** Class colours (Okabe–Ito, told apart with colour-blindness too) as [r, g, b]. */
export const CLASS_COLORS: readonly (readonly [number, number, number])[] = [
  [0, 114, 178], // blue
  [230, 159, 0], // orange
  [0, 158, 115], // green
  [204, 121, 167], // pink
  [213, 94, 0], // vermillion
];
/** Colour of the training curves. */
export const TRAIN_COLOR = "#0072b2";
/** Colour of the validation curves. */
export const VALIDATION_COLOR = "#d55e00";

const rgb = ([r, g, b]: readonly number[]) => `rgb(${r} ${g} ${b})`;

/**
 * Sizes the canvas's pixels to its CSS box times the device pixel ratio and returns its 2-D
 * context scaled to CSS pixels, with the box's width and height.
 */
export function fitCanvas(canvas: HTMLCanvasElement): {
  context: CanvasRenderingContext2D;
  width: number;
  height: number;
} {
  const ratio = globalThis.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  const pixelWidth = Math.max(1, Math.round(width * ratio));
  const pixelHeight = Math.max(1, Math.round(height * ratio));
  if (canvas.width !== pixelWidth || canvas.height !== pixelHeight) {
    canvas.width = pixelWidth;
    canvas.height = pixelHeight;
  }
  const context = canvas.getContext("2d")!;
  context.setTransform(pixelWidth / width || 1, 0, 0, pixelHeight / height || 1, 0, 0);
  return { context, width, height };
}

/**
 * Paints a region grid into `image` (size × size RGBA): each class's colour mixed with white,
 * stronger where the network is sure (from 1/classes at the palest to 1).
 */
export function paintRegions(grid: RegionGrid, classes: number, image: ImageData): void {
  const floor = 1 / classes;
  for (let i = 0; i < grid.classes.length; i++) {
    const color = CLASS_COLORS[grid.classes[i]] ?? CLASS_COLORS[0];
    const sure = Math.max(0, (grid.confidence[i] / 255 - floor) / (1 - floor));
    const strength = 0.15 + 0.5 * sure;
    for (let c = 0; c < 3; c++) {
      image.data[i * 4 + c] = Math.round(255 + (color[c] - 255) * strength);
    }
    image.data[i * 4 + 3] = 255;
  }
}

function drawPoints(
  context: CanvasRenderingContext2D,
  x: Float32Array,
  y: Int32Array,
  toPixel: (v: number, axis: 0 | 1) => number,
  ring: boolean,
  radius: number,
): void {
  context.lineWidth = ring ? 2 : 1;
  for (let i = 0; i < y.length; i++) {
    const color = rgb(CLASS_COLORS[y[i]] ?? CLASS_COLORS[0]);
    context.beginPath();
    context.arc(toPixel(x[i * 2], 0), toPixel(x[i * 2 + 1], 1), radius, 0, 2 * Math.PI);
    context.fillStyle = ring ? "#fff" : color;
    context.strokeStyle = ring ? color : "#fff";
    context.fill();
    context.stroke();
  }
}

/** Draws the decision regions (scaled up from `regions`, an image of the grid) and the points. */
export function drawRegions(
  canvas: HTMLCanvasElement,
  regions: HTMLCanvasElement | undefined,
  data: PlaygroundData | undefined,
): void {
  const { context, width, height } = fitCanvas(canvas);
  context.fillStyle = "#fff";
  context.fillRect(0, 0, width, height);
  if (regions) {
    context.imageSmoothingEnabled = true;
    context.drawImage(regions, 0, 0, width, height);
  }
  if (!data) return;
  const side = Math.min(width, height);
  // Data coordinates [-extent, extent] onto the canvas, y upwards.
  const toPixel = (v: number, axis: 0 | 1) =>
    axis === 0 ? (v / data.extent + 1) / 2 * width : (1 - (v / data.extent + 1) / 2) * height;
  const radius = Math.max(2.5, side / 110);
  drawPoints(context, data.trainX, data.trainY, toPixel, false, radius);
  drawPoints(context, data.valX, data.valY, toPixel, true, radius);
}

/** A growing per-epoch series of figures, starting at some epoch. */
export class Curve {
  #values = new Float32Array(1024);
  /** Values held. */
  length = 0;

  /** Appends the values. */
  push(values: Float32Array): void {
    if (this.length + values.length > this.#values.length) {
      const grown = new Float32Array(
        Math.max(this.#values.length * 2, this.length + values.length),
      );
      grown.set(this.#values.subarray(0, this.length));
      this.#values = grown;
    }
    this.#values.set(values, this.length);
    this.length += values.length;
  }

  /** The value at index `i`. */
  at(i: number): number {
    return this.#values[i];
  }

  /** Forgets every value. */
  clear(): void {
    this.length = 0;
  }

  /** The largest finite value, or `fallback` when there is none. */
  max(fallback: number): number {
    let largest = -Infinity;
    for (let i = 0; i < this.length; i++) {
      if (Number.isFinite(this.#values[i])) largest = Math.max(largest, this.#values[i]);
    }
    return Number.isFinite(largest) ? largest : fallback;
  }
}

const PAD = { left: 34, right: 8, top: 8, bottom: 18 };

/**
 * Draws a training and a validation curve over the epochs since `firstEpoch`, with the
 * value axis from 0 to `top` (or the curves' largest value when `top` is omitted).
 */
export function drawCurves(
  canvas: HTMLCanvasElement,
  train: Curve,
  validation: Curve,
  firstEpoch: number,
  top?: number,
): void {
  const { context, width, height } = fitCanvas(canvas);
  context.fillStyle = "#fff";
  context.fillRect(0, 0, width, height);
  const plotWidth = width - PAD.left - PAD.right;
  const plotHeight = height - PAD.top - PAD.bottom;
  // The scale follows the training curve and the first validation value, so that a
  // validation loss climbing as the model overfits runs along the top, not squashing the rest.
  const ceiling = top ??
    Math.max(train.max(1), validation.length ? validation.at(0) || 0 : 0) * 1.05;
  const count = Math.max(train.length, 2);
  context.strokeStyle = "#ccc";
  context.lineWidth = 1;
  context.strokeRect(PAD.left, PAD.top, plotWidth, plotHeight);
  context.fillStyle = "#444";
  context.font = "11px system-ui, sans-serif";
  context.textAlign = "right";
  context.textBaseline = "middle";
  context.fillText(ceiling.toPrecision(2), PAD.left - 4, PAD.top);
  context.fillText("0", PAD.left - 4, PAD.top + plotHeight);
  context.textBaseline = "top";
  context.fillText(
    `epoch ${firstEpoch + train.length}`,
    PAD.left + plotWidth,
    PAD.top + plotHeight + 3,
  );
  context.textAlign = "left";
  context.fillText(String(firstEpoch), PAD.left, PAD.top + plotHeight + 3);
  const columns = Math.max(1, Math.floor(plotWidth));
  for (
    const [curve, color, dash] of [[validation, VALIDATION_COLOR, [5, 3]], [
      train,
      TRAIN_COLOR,
      [],
    ]] as const
  ) {
    if (curve.length === 0) continue;
    context.strokeStyle = color;
    context.lineWidth = 2;
    context.setLineDash(dash);
    context.beginPath();
    // One point per column at most: a long run is drawn by striding over it.
    const points = Math.min(curve.length, columns);
    let drawing = false;
    for (let p = 0; p < points; p++) {
      const i = points === 1 ? 0 : Math.round(p * (curve.length - 1) / (points - 1));
      const value = Math.min(curve.at(i), ceiling);
      if (!Number.isFinite(value)) {
        drawing = false; // no validation points: nothing to draw
        continue;
      }
      const px = PAD.left + (i / (count - 1)) * plotWidth;
      const py = PAD.top + plotHeight * (1 - value / ceiling);
      if (drawing) context.lineTo(px, py);
      else context.moveTo(px, py);
      drawing = true;
    }
    context.stroke();
  }
  context.setLineDash([]);
}
