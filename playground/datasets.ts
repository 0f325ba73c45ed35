// The playground's 2-D classification data sets. Each draws from one seeded generator, so a
// seed gives the same points in every browser and in Deno.
import { RandomState } from "../mod.ts";
import type { DatasetName, Settings } from "./settings.ts";

/** Labelled points split into training and validation parts. */
export interface PlaygroundData {
  /** Classes of the data set. */
  classes: number;
  /** Training points, `[n, 2]` flat. */
  trainX: Float32Array;
  /** Training labels `[n]`. */
  trainY: Int32Array;
  /** Validation points, `[m, 2]` flat (empty without a validation split). */
  valX: Float32Array;
  /** Validation labels `[m]`. */
  valY: Int32Array;
  /** Half the side of the square centred on 0 that holds every point, with a margin. */
  extent: number;
}

interface Points {
  x: Float32Array;
  y: Int32Array;
}

// NumPy's linspace, as the library's spiralData computes it.
function linspace(start: number, stop: number, n: number, i: number): number {
  return i === n - 1 ? stop : i * ((stop - start) / (n - 1)) + start;
}

/**
 * The book's spiral (`nnfs.datasets.spiral_data`) with its angle noise set to `noise`: at
 * 0.2 and seed 0 it gives `spiralData(perClass, classes)` bit for bit.
 */
export function spiralPoints(
  perClass: number,
  classes: number,
  noise: number,
  random: RandomState,
): Points {
  const x = new Float32Array(perClass * classes * 2);
  const y = new Int32Array(perClass * classes);
  const draws = new Float64Array(perClass);
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < perClass; i++) draws[i] = random.randn();
    for (let i = 0; i < perClass; i++) {
      const radius = linspace(0, 1, perClass, i);
      const t = (linspace(c * 4, (c + 1) * 4, perClass, i) + draws[i] * noise) * 2.5;
      const row = c * perClass + i;
      x[row * 2] = radius * Math.sin(t);
      x[row * 2 + 1] = radius * Math.cos(t);
      y[row] = c;
    }
  }
  return { x, y };
}

/** Two concentric rings (outer radius 1 is class 0, inner 0.5 class 1), blurred by `noise`/2. */
export function circlePoints(count: number, noise: number, random: RandomState): Points {
  const x = new Float32Array(count * 2);
  const y = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    y[i] = i < count / 2 ? 0 : 1;
    const radius = y[i] === 0 ? 1 : 0.5;
    const angle = 2 * Math.PI * random.random();
    x[i * 2] = radius * Math.cos(angle) + random.randn() * noise * 0.5;
    x[i * 2 + 1] = radius * Math.sin(angle) + random.randn() * noise * 0.5;
  }
  return { x, y };
}

/**
 * XOR: uniform points in the square [-1, 1]², kept 0.05 away from the axes; class 0 where
 * x·y > 0. Then blurred by `noise`/2, so that a large noise moves points across the axes.
 */
export function xorPoints(count: number, noise: number, random: RandomState): Points {
  const x = new Float32Array(count * 2);
  const y = new Int32Array(count);
  const coordinate = () => {
    const v = random.random() * 1.9 - 0.95;
    return v + (v >= 0 ? 0.05 : -0.05);
  };
  for (let i = 0; i < count; i++) {
    const a = coordinate();
    const b = coordinate();
    y[i] = a * b > 0 ? 0 : 1;
    x[i * 2] = a + random.randn() * noise * 0.5;
    x[i * 2 + 1] = b + random.randn() * noise * 0.5;
  }
  return { x, y };
}

/** Gaussian blobs of standard deviation 0.1 + `noise`/2, their centres on a circle of radius 0.6. */
export function blobPoints(
  count: number,
  classes: number,
  noise: number,
  random: RandomState,
): Points {
  const x = new Float32Array(count * 2);
  const y = new Int32Array(count);
  const spread = 0.1 + noise * 0.5;
  for (let i = 0; i < count; i++) {
    const c = Math.floor((i * classes) / count);
    const angle = Math.PI / 2 + (2 * Math.PI * c) / classes;
    y[i] = c;
    x[i * 2] = 0.6 * Math.cos(angle) + random.randn() * spread;
    x[i * 2 + 1] = 0.6 * Math.sin(angle) + random.randn() * spread;
  }
  return { x, y };
}

/** The number of classes a data set has under `settings`. */
export function classCount(dataset: DatasetName, classes: number): number {
  return dataset === "spiral" || dataset === "blobs" ? classes : 2;
}

function generate(settings: Settings, random: RandomState): Points {
  const { dataset, points, noise } = settings;
  const classes = classCount(dataset, settings.classes);
  switch (dataset) {
    case "spiral":
      return spiralPoints(Math.max(2, Math.round(points / classes)), classes, noise, random);
    case "circles":
      return circlePoints(points, noise, random);
    case "xor":
      return xorPoints(points, noise, random);
    case "blobs":
      return blobPoints(points, classes, noise, random);
  }
}

function gather(points: Points, rows: Int32Array): Points {
  const x = new Float32Array(rows.length * 2);
  const y = new Int32Array(rows.length);
  rows.forEach((row, i) => {
    x[i * 2] = points.x[row * 2];
    x[i * 2 + 1] = points.x[row * 2 + 1];
    y[i] = points.y[row];
  });
  return { x, y };
}

/**
 * The data set `settings` describe, drawn from `random`, shuffled with its own generator
 * (seed + 1, as examples/spiral.ts shuffles) and split: the last `validation` fraction of the
 * shuffled points are held out.
 */
export function makeData(settings: Settings, random: RandomState): PlaygroundData {
  const all = generate(settings, random);
  const count = all.y.length;
  const order = new RandomState(settings.seed + 1).permutation(count);
  const held = Math.round(count * settings.validation);
  const train = gather(all, order.subarray(0, count - held));
  const val = gather(all, order.subarray(count - held));
  let largest = 0;
  for (const v of all.x) largest = Math.max(largest, Math.abs(v));
  return {
    classes: classCount(settings.dataset, settings.classes),
    trainX: train.x,
    trainY: train.y,
    valX: val.x,
    valY: val.y,
    extent: Math.max(1, largest) * 1.1,
  };
}
