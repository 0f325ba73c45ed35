// The worker's side of the playground: it trains in short slices and yields between them,
// so that a pause arrives within one slice and the page gets a steady stream of figures. With
// the GPU switch on, it trains in one fitAsync(…, { device: "webgpu" }) call instead, which
// stops at an epoch's start when paused or when another command needs the model.
import {
  Dense,
  Dropout,
  getBackend,
  modelFromBytes,
  modelToBytes,
  type Optimizer,
  type Sequential,
  type SGD,
  type WebGpuStatus,
} from "../mod.ts";
import { classCount } from "./datasets.ts";
import type { Command, FigureSeries, Report } from "./protocol.ts";
import {
  type ActivationName,
  ACTIVATIONS,
  checkSettings,
  DEFAULT_SETTINGS,
  needsRebuild,
  type OptimizerName,
  OPTIMIZERS,
  type Settings,
} from "./settings.ts";
import { buildOptimizer, type EpochFigures, Trainer } from "./trainer.ts";

/** Longest run of epochs between two looks at the message queue, in ms (pause latency). */
export const SLICE_MS = 12;
/** Shortest time between two decision-region grids sent to the page, in ms. */
export const REGIONS_MS = 80;
/** Cells per side of the decision-region grid. */
export const GRID_SIZE = 96;
/** Metadata key under which a downloaded model keeps the playground's settings. */
export const SETTINGS_KEY = "playground.settings";

/** Epochs one GPU run may train before it stops by itself: as good as endless. */
export const GPU_RUN_EPOCHS = 1_000_000_000;

/** Sends a report to the page, handing over the buffers listed in `transfer`. */
export type Post = (report: Report, transfer: Transferable[]) => void;
/** Runs `task` soon, after any message already queued. */
export type Schedule = (task: () => void) => void;

function collect(figures: EpochFigures[]): FigureSeries {
  const series = (key: keyof EpochFigures) => Float32Array.from(figures, (f) => f[key]);
  return {
    loss: series("loss"),
    accuracy: series("accuracy"),
    valLoss: series("valLoss"),
    valAccuracy: series("valAccuracy"),
  };
}

// The optimizer fields of the settings, for a loaded optimizer of a kind the form offers.
function optimizerSettings(optimizer: Optimizer | undefined): Partial<Settings> {
  const kind = optimizer?.kind as OptimizerName;
  if (!optimizer || !(OPTIMIZERS as readonly string[]).includes(kind)) return {};
  const { learningRate, momentum } = optimizer as Optimizer & SGD;
  return kind === "SGD"
    ? { optimizer: kind, learningRate, momentum }
    : { optimizer: kind, learningRate };
}

// The playground's own settings, kept in a downloaded model's metadata.
function savedSettings(text: string, classes: number): Settings {
  const where = `Load model: ${SETTINGS_KEY}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TypeError(`${where} is not JSON: ${(error as Error).message}`);
  }
  const settings = checkSettings(parsed, where);
  const expected = classCount(settings.dataset, settings.classes);
  if (expected !== classes) {
    throw new TypeError(`${where}: the settings give ${expected} classes, the model ${classes}`);
  }
  return settings;
}

// Settings read off the layers of a model saved elsewhere; the rest stays as it is.
function inferredSettings(
  model: Sequential,
  dense: Dense[],
  metadata: Record<string, string>,
  optimizer: Optimizer | undefined,
  current: Settings,
): Settings {
  const classes = dense.at(-1)!.outFeatures;
  const activation = model.layers.find((layer) =>
    (ACTIVATIONS as readonly string[]).includes(layer.kind)
  )?.kind as ActivationName | undefined;
  const seed = Number(metadata.seed ?? current.seed);
  const keepsData = current.dataset === "spiral" || current.dataset === "blobs" || classes === 2;
  return checkSettings({
    ...current,
    ...optimizerSettings(optimizer),
    dataset: keepsData ? current.dataset : "spiral",
    classes,
    seed: Number.isSafeInteger(seed) ? seed : current.seed,
    hidden: dense.slice(0, -1).map((layer) => layer.outFeatures),
    activation: activation ?? current.activation,
    dropout: model.layers.find((layer) => layer instanceof Dropout)?.rate ?? 0,
    l2: dense[0].weightRegularizerL2,
  }, "Load model");
}

/**
 * The settings that describe a model from a file: the playground's own (kept in its
 * metadata), else read off the layers of a model saved elsewhere (examples/spiral.ts).
 *
 * @throws {TypeError} when the model does not take 2 inputs and give 2–5 classes, or its
 * saved settings are malformed or do not fit it.
 */
export function settingsOfModel(
  model: Sequential,
  metadata: Record<string, string>,
  optimizer: Optimizer | undefined,
  current: Settings,
): Settings {
  const dense = model.layers.filter((layer) => layer instanceof Dense);
  const classes = dense.at(-1)?.outFeatures ?? 0;
  if (dense[0]?.inFeatures !== 2 || classes < 2 || classes > 5) {
    throw new TypeError(
      `Load model: the playground needs a model of 2 inputs and 2–5 classes, the file holds ${model}`,
    );
  }
  return metadata[SETTINGS_KEY] !== undefined
    ? savedSettings(metadata[SETTINGS_KEY], classes)
    : inferredSettings(model, dense, metadata, optimizer, current);
}

// The `gpu` report for what webgpuStatus() found.
async function gpuReport(status: () => Promise<WebGpuStatus>): Promise<Report & { type: "gpu" }> {
  try {
    const found = await status();
    if (!found.available) return { type: "gpu", available: false, detail: found.reason };
    const { vendor, architecture, description } = found.adapter.info;
    const name = [vendor, architecture, description].filter(Boolean).join(" ");
    return { type: "gpu", available: true, detail: name || "an adapter" };
  } catch (error) {
    return { type: "gpu", available: false, detail: `webgpuStatus() failed: ${error}` };
  }
}

/** A training session driven by {@linkcode Command}s; it answers with {@linkcode Report}s. */
export class PlaygroundSession {
  readonly #post: Post;
  readonly #schedule: Schedule;
  #trainer: Trainer;
  #running = false;
  #told = false; // the running state the page was last told
  #lastRegions = -Infinity;
  #gpu = false; // the GPU switch
  #gpuAvailable = false;
  #fit?: Promise<void>; // a GPU run in flight
  #waiting: Command[] = []; // commands held until the GPU run has stopped

  /**
   * Starts with {@linkcode DEFAULT_SETTINGS} and reports `ready` and the first `run`; with
   * `gpuStatus` (`webgpuStatus` in the worker) it then reports `gpu`: whether the GPU switch
   * can be turned on.
   */
  constructor(post: Post, schedule: Schedule, gpuStatus?: () => Promise<WebGpuStatus>) {
    this.#post = post;
    this.#schedule = schedule;
    this.#trainer = new Trainer({ ...DEFAULT_SETTINGS });
    post({ type: "ready", backend: getBackend().name }, []);
    this.#announce();
    if (gpuStatus) {
      void gpuReport(gpuStatus).then((report) => {
        this.#gpuAvailable = report.available;
        post(report, []);
      });
    }
  }

  /** Epochs run so far. */
  get epoch(): number {
    return this.#trainer.epoch;
  }

  /** Whether it is training. */
  get running(): boolean {
    return this.#running;
  }

  /** Whether it trains on the GPU (the switch is on). */
  get gpu(): boolean {
    return this.#gpu;
  }

  /**
   * Carries out one command; a failure is reported as an `error`, never thrown. While a GPU
   * run is in flight, a pause or start only says whether it goes on past the running epoch;
   * any other command stops it there and runs when it has stopped.
   */
  handle(command: Command): void {
    if (this.#fit) {
      const first = this.#waiting.length === 0; // else it keeps its place in the queue
      if (first && command.type === "pause") {
        this.#running = false; // the page is told when the run has stopped, at its last epoch
      } else if (first && command.type === "start") {
        this.#running = true;
        if (!this.#told) this.#state();
      } else {
        this.#waiting.push(command);
      }
      return;
    }
    try {
      this.#handle(command);
    } catch (error) {
      this.#failed(error);
    }
  }

  #failed(error: unknown): void {
    this.#post({ type: "error", message: (error as Error)?.message ?? String(error) }, []);
  }

  #handle(command: Command): void {
    switch (command.type) {
      case "start":
        if (!this.#running) {
          this.#running = true;
          this.#state();
          this.#schedule(() => this.#slice());
        }
        return;
      case "pause":
        this.#pause();
        return;
      case "step":
        this.#pause();
        if (this.#gpu) this.#trainOnGpu(1);
        else this.#report([this.#trainer.runEpoch()], true);
        return;
      case "reset":
        this.#pause();
        this.#trainer = new Trainer(this.#trainer.settings);
        this.#announce();
        return;
      case "settings":
        return this.#configure(checkSettings(command.settings, "settings"));
      case "save":
        return this.#save();
      case "load":
        return this.#load(command.bytes, command.name);
      case "device":
        if (command.gpu && !this.#gpuAvailable) {
          throw new Error("GPU (WebGPU): not available in this browser's worker");
        }
        this.#gpu = command.gpu; // a running CPU slice loop hands over at its next slice
        return;
    }
  }

  #pause(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#state();
  }

  #state(): void {
    this.#told = this.#running;
    this.#post({ type: "state", running: this.#running, epoch: this.#trainer.epoch }, []);
  }

  #configure(settings: Settings): void {
    if (needsRebuild(this.#trainer.settings, settings)) {
      this.#trainer = new Trainer(settings);
      this.#announce();
    } else {
      // The weights stay; the optimizer starts afresh with the new kind or rate.
      const weights = { model: this.#trainer.model, optimizer: buildOptimizer(settings) };
      const epoch = this.#trainer.epoch;
      this.#trainer = new Trainer(settings, weights);
      this.#trainer.epoch = epoch;
    }
  }

  // Epochs until the slice's time is up, then one report, then a yield to the message queue.
  #slice(): void {
    if (!this.#running || this.#fit) return;
    if (this.#gpu) return this.#trainOnGpu(GPU_RUN_EPOCHS);
    const until = performance.now() + SLICE_MS;
    const figures: EpochFigures[] = [];
    do figures.push(this.#trainer.runEpoch()); while (performance.now() < until);
    this.#report(figures, performance.now() - this.#lastRegions >= REGIONS_MS);
    this.#schedule(() => this.#slice());
  }

  // Trains up to `epochs` epochs in one GPU run (one fitAsync call), reporting as the CPU's
  // slices do: the epochs of each SLICE_MS, regions at most every REGIONS_MS. A run of more
  // than one epoch also stops when paused.
  #trainOnGpu(epochs: number): void {
    const trainer = this.#trainer;
    const endless = epochs > 1;
    const figures: EpochFigures[] = [];
    let lastReport = performance.now();
    const flush = (force: boolean) => {
      const now = performance.now();
      if (figures.length === 0 || (!force && now - lastReport < SLICE_MS)) return;
      this.#report(figures.splice(0), force || now - this.#lastRegions >= REGIONS_MS);
      lastReport = now;
    };
    let failure: { error: unknown } | undefined;
    this.#fit = trainer.trainOnGpu({
      epochs,
      stop: () => this.#waiting.length > 0 || (endless && !this.#running),
      onEpoch: (epoch) => {
        figures.push(epoch);
        flush(false);
      },
    }).catch((error) => void (failure = { error })).finally(() => {
      flush(true);
      this.#fit = undefined;
      if (failure !== undefined) {
        this.#running = false;
        this.#state();
        this.#failed(failure.error);
      }
      for (const command of this.#waiting.splice(0)) this.handle(command);
      if (this.#fit) return; // a held command started another GPU run
      if (this.#running) this.#schedule(() => this.#slice());
      else if (this.#told) this.#state();
    });
  }

  #report(figures: EpochFigures[], withRegions: boolean): void {
    const series = collect(figures);
    const transfer: Transferable[] = Object.values(series).map((array) => array.buffer);
    const regions = withRegions ? this.#trainer.regions(GRID_SIZE) : undefined;
    if (regions) {
      this.#lastRegions = performance.now();
      transfer.push(
        regions.classes.buffer as ArrayBuffer,
        regions.confidence.buffer as ArrayBuffer,
      );
    }
    this.#post(
      { type: "progress", epoch: this.#trainer.epoch, figures: series, regions },
      transfer,
    );
  }

  // A new run: the page gets its data and model, then the initial decision regions.
  #announce(): void {
    const { settings, data, model, epoch } = this.#trainer;
    this.#post({ type: "run", data, settings, model: model.toString(), epoch }, []);
    this.#report([], true);
  }

  #save(): void {
    const { settings, model, optimizer, epoch } = this.#trainer;
    const metadata = {
      [SETTINGS_KEY]: JSON.stringify(settings),
      // The keys examples/spiral.ts --load reads.
      epochs: String(epoch),
      seed: String(settings.seed),
    };
    const bytes = modelToBytes(model, { optimizer, metadata });
    const name = `chainrule-${settings.dataset}-epoch-${epoch}.safetensors`;
    this.#post({ type: "saved", bytes, name }, [bytes.buffer as ArrayBuffer]);
  }

  #load(bytes: Uint8Array, name: string): void {
    const { model, optimizer, metadata } = modelFromBytes(bytes);
    const settings = settingsOfModel(model, metadata, optimizer, this.#trainer.settings);
    this.#pause();
    this.#trainer = new Trainer(settings, { model, optimizer });
    const epochs = Number(metadata.epochs ?? 0);
    this.#trainer.epoch = Number.isSafeInteger(epochs) && epochs > 0 ? epochs : 0;
    this.#announce();
    this.#post({ type: "loaded", name, settings }, []);
  }
}
