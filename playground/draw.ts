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
  /** The smallest positive finite value held (Infinity when none). */
  lowest = Infinity;
  /** The largest finite value held (-Infinity when none). */
  highest = -Infinity;

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
    for (const value of values) {
      if (!Number.isFinite(value)) continue;
      if (value > 0) this.lowest = Math.min(this.lowest, value);
      this.highest = Math.max(this.highest, value);
    }
  }

  /** The value at index `i`. */
  at(i: number): number {
    return this.#values[i];
  }

  /** Forgets every value. */
  clear(): void {
    this.length = 0;
    this.lowest = Infinity;
    this.highest = -Infinity;
  }
}

/** How values map to heights: linear from 0 to 1, or logarithmic over the values held. */
export type CurveScale = "unit" | "log";

const PAD = { left: 38, right: 8, top: 8, bottom: 18 };

// Heights in [0, 1] for values, and the labels of the bottom and the top.
function axis(scale: CurveScale, curves: Curve[]) {
  if (scale === "unit") {
    return { height: (v: number) => v, bottom: "0", top: "1" };
  }
  // Losses fall over decades; a log axis shows the start and the end, and spikes, at once.
  let low = Math.min(...curves.map((curve) => curve.lowest));
  let high = Math.max(...curves.map((curve) => curve.highest));
  if (!(low < high)) {
    [low, high] = Number.isFinite(high) && high > 0 ? [high / 2, high * 2] : [0.1, 1];
  }
  const span = Math.log(high / low);
  return {
    height: (v: number) => v > 0 ? Math.log(v / low) / span : NaN,
    bottom: low.toPrecision(2),
    top: high.toPrecision(2),
  };
}

function plotCurve(
  context: CanvasRenderingContext2D,
  curve: Curve,
  height: (value: number) => number,
  box: { x: number; y: number; width: number; height: number; epochs: number },
): void {
  context.beginPath();
  // One point per pixel column at most: a long run is drawn by striding over it.
  const points = Math.min(curve.length, Math.max(1, Math.floor(box.width)));
  let drawing = false;
  for (let p = 0; p < points; p++) {
    const i = points === 1 ? 0 : Math.round(p * (curve.length - 1) / (points - 1));
    const h = height(curve.at(i));
    if (!Number.isFinite(h)) {
      drawing = false; // no validation points: nothing to draw
      continue;
    }
    const x = box.x + (i / Math.max(1, box.epochs - 1)) * box.width;
    const y = box.y + box.height * (1 - h);
    if (drawing) context.lineTo(x, y);
    else context.moveTo(x, y);
    drawing = true;
  }
  context.stroke();
}

/**
 * Draws a training and a validation curve over the epochs since `firstEpoch`: accuracy on a
 * 0–1 scale (`"unit"`), loss on a log scale (`"log"`) spanning the values drawn.
 */
export function drawCurves(
  canvas: HTMLCanvasElement,
  train: Curve,
  validation: Curve,
  firstEpoch: number,
  scale: CurveScale,
): void {
  const { context, width, height } = fitCanvas(canvas);
  context.fillStyle = "#fff";
  context.fillRect(0, 0, width, height);
  const box = {
    x: PAD.left,
    y: PAD.top,
    width: width - PAD.left - PAD.right,
    height: height - PAD.top - PAD.bottom,
    epochs: train.length,
  };
  const { height: toHeight, bottom, top } = axis(scale, [train, validation]);
  context.strokeStyle = "#ccc";
  context.lineWidth = 1;
  context.strokeRect(box.x, box.y, box.width, box.height);
  context.fillStyle = "#444";
  context.font = "11px system-ui, sans-serif";
  context.textAlign = "right";
  context.textBaseline = "middle";
  context.fillText(top, box.x - 4, box.y);
  context.fillText(bottom, box.x - 4, box.y + box.height);
  context.textBaseline = "top";
  const below = box.y + box.height + 3;
  context.fillText(`epoch ${firstEpoch + train.length}`, box.x + box.width, below);
  context.textAlign = "left";
  context.fillText(String(firstEpoch), box.x, below);
  context.lineWidth = 2;
  context.strokeStyle = VALIDATION_COLOR;
  context.setLineDash([5, 3]);
  plotCurve(context, validation, toHeight, box);
  context.strokeStyle = TRAIN_COLOR;
  context.setLineDash([]);
  plotCurve(context, train, toHeight, box);
}
