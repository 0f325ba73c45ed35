// The messages between the page and the training worker. The worker owns the model; the
// page only draws what the worker reports and sends what the user asks for.
import type { PlaygroundData } from "./datasets.ts";
import type { Settings } from "./settings.ts";
import type { RegionGrid } from "./trainer.ts";

/** What the page asks the worker. */
export type Command =
  /** New settings: new data and model when the data or the network changed, else a new optimizer. */
  | { type: "settings"; settings: Settings }
  /** Train until paused. */
  | { type: "start" }
  /** Stop after the epoch running now. */
  | { type: "pause" }
  /** Pause and run exactly one epoch. */
  | { type: "step" }
  /** Pause, then new data and a new model from the current settings. */
  | { type: "reset" }
  /** Send the model as safetensors bytes. */
  | { type: "save" }
  /** Replace the model with the one in these safetensors bytes. */
  | { type: "load"; bytes: Uint8Array; name: string }
  /** Train on the GPU (`fitAsync` on `"webgpu"`) or on the CPU from the next epoch on. */
  | { type: "device"; gpu: boolean };

/** Per-epoch figures of a run of consecutive epochs. */
export interface FigureSeries {
  /** Training loss. */
  loss: Float32Array;
  /** Training accuracy. */
  accuracy: Float32Array;
  /** Validation loss (NaN without validation points). */
  valLoss: Float32Array;
  /** Validation accuracy (NaN without validation points). */
  valAccuracy: Float32Array;
}

/** What the worker tells the page. */
export type Report =
  /** The worker is up; `backend` is the library's active backend (`"wasm"`). */
  | { type: "ready"; backend: string }
  /**
   * What `webgpuStatus()` found in the worker: whether the GPU switch may be turned on, and
   * the adapter's name, or why not.
   */
  | { type: "gpu"; available: boolean; detail: string }
  /**
   * A new run: its data, settings and model; the curves start again at `epoch`. The page
   * leaves its form alone (the user may be editing the next field), except after `loaded`.
   */
  | { type: "run"; data: PlaygroundData; settings: Settings; model: string; epoch: number }
  /**
   * Epochs `epoch − figures.loss.length … epoch − 1` ran; `regions`, when present, are the
   * decision regions after epoch `epoch − 1`.
   */
  | { type: "progress"; epoch: number; figures: FigureSeries; regions?: RegionGrid }
  /** Training started or stopped (pause, step, reset); `epoch` is the count at that moment. */
  | { type: "state"; running: boolean; epoch: number }
  /** The model as safetensors bytes, with a suggested file name. */
  | { type: "saved"; bytes: Uint8Array; name: string }
  /** A model file was loaded (its `run` report came just before) with these settings. */
  | { type: "loaded"; name: string; settings: Settings }
  /** Something the user asked for failed; the message says what and why. */
  | { type: "error"; message: string };
