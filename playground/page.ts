/// <reference lib="dom" />
// The page: sends what the user asks for to the training worker and draws what it reports,
// once per animation frame, so that drawing never waits on training and the reverse.
import type { PlaygroundData } from "./datasets.ts";
import { Curve, drawCurves, drawRegions, paintRegions } from "./draw.ts";
import { readSettings, updateApplicable, useBookLearningRate, writeSettings } from "./form.ts";
import type { Command, FigureSeries, Report } from "./protocol.ts";
import { DEFAULT_SETTINGS } from "./settings.ts";
import type { RegionGrid } from "./trainer.ts";

/** What the page shows, readable from tests and the console as `chainrulePlayground`. */
export interface PlaygroundView {
  /** The library's backend in the worker (`"wasm"`), once it has reported. */
  readonly backend: string | undefined;
  /**
   * What `webgpuStatus()` found in the worker, once it has reported: whether the GPU switch
   * may be turned on, and the adapter's name or why not.
   */
  readonly gpu: { available: boolean; detail: string } | undefined;
  /** Where the worker trains: `"webgpu"` while the GPU switch is on, else `"cpu"`. */
  readonly device: "cpu" | "webgpu";
  /** Whether the worker reports that it is training. */
  readonly running: boolean;
  /** Epochs run. */
  readonly epoch: number;
  /** Training loss of the last epoch (NaN before any). */
  readonly trainLoss: number;
  /** Training accuracy of the last epoch (NaN before any). */
  readonly trainAccuracy: number;
  /** Validation accuracy of the last epoch (NaN without validation). */
  readonly valAccuracy: number;
  /** Epochs per second over the last half second of training. */
  readonly epochsPerSecond: number;
  /** Frames painted since the page loaded. */
  readonly frames: number;
  /** Time from the last click on Pause to the worker's confirmation, in ms. */
  readonly pauseLatencyMs: number;
}

interface Elements {
  start: HTMLButtonElement;
  pause: HTMLButtonElement;
  step: HTMLButtonElement;
  reset: HTMLButtonElement;
  download: HTMLButtonElement;
  load: HTMLButtonElement;
  loadFile: HTMLInputElement;
  epoch: HTMLOutputElement;
  rate: HTMLOutputElement;
  trainAccuracy: HTMLOutputElement;
  valAccuracy: HTMLOutputElement;
  status: HTMLElement;
  regions: HTMLCanvasElement;
  loss: HTMLCanvasElement;
  accuracy: HTMLCanvasElement;
  model: HTMLElement;
  settings: HTMLFormElement;
  gpu: HTMLInputElement;
  gpuHelp: HTMLElement;
  backend: HTMLElement;
}

function find(document: Document): Elements {
  const get = <T extends HTMLElement>(id: string, type: { new (): T }): T => {
    const element = document.getElementById(id);
    if (!(element instanceof type)) {
      throw new TypeError(`chainrule playground: the page has no ${type.name} #${id}`);
    }
    return element;
  };
  return {
    start: get("start", HTMLButtonElement),
    pause: get("pause", HTMLButtonElement),
    step: get("step", HTMLButtonElement),
    reset: get("reset", HTMLButtonElement),
    download: get("download", HTMLButtonElement),
    load: get("load", HTMLButtonElement),
    loadFile: get("load-file", HTMLInputElement),
    epoch: get("epoch", HTMLOutputElement),
    rate: get("rate", HTMLOutputElement),
    trainAccuracy: get("train-accuracy", HTMLOutputElement),
    valAccuracy: get("val-accuracy", HTMLOutputElement),
    status: get("status", HTMLElement),
    regions: get("regions", HTMLCanvasElement),
    loss: get("loss", HTMLCanvasElement),
    accuracy: get("accuracy", HTMLCanvasElement),
    model: get("model", HTMLElement),
    settings: get("settings", HTMLFormElement),
    gpu: get("gpu", HTMLInputElement),
    gpuHelp: get("gpu-help", HTMLElement),
    backend: get("backend", HTMLElement),
  };
}

const fraction = (value: number) => Number.isFinite(value) ? value.toFixed(3) : "–";

/** The four curves of a run and the epoch they start at. */
class Curves {
  readonly loss = new Curve();
  readonly accuracy = new Curve();
  readonly valLoss = new Curve();
  readonly valAccuracy = new Curve();
  firstEpoch = 0;

  push(figures: FigureSeries): void {
    for (const key of ["loss", "accuracy", "valLoss", "valAccuracy"] as const) {
      this[key].push(figures[key]);
    }
  }

  restart(epoch: number): void {
    for (const curve of [this.loss, this.accuracy, this.valLoss, this.valAccuracy]) curve.clear();
    this.firstEpoch = epoch;
  }
}

/** The page's side of the playground: controls in, worker reports in, a frame drawn out. */
class PlaygroundPage implements PlaygroundView {
  readonly #el: Elements;
  readonly #document: Document;
  readonly #worker: Worker;
  readonly #curves = new Curves();
  readonly #regionImage: HTMLCanvasElement; // the latest region grid, one pixel per cell
  #data?: PlaygroundData;
  #regions?: RegionGrid;
  #backend?: string;
  #gpu?: { available: boolean; detail: string };
  #running = false;
  #epoch = 0;
  #frames = 0;
  #dirty = true;
  #pauseClickedAt = NaN;
  #pauseLatencyMs = NaN;
  #rateMark = { time: performance.now(), epoch: 0 };
  #epochsPerSecond = NaN;

  constructor(document: Document, workerUrl: URL) {
    this.#document = document;
    this.#el = find(document);
    this.#regionImage = document.createElement("canvas");
    writeSettings(this.#el.settings, DEFAULT_SETTINGS); // the worker starts from these too
    this.#worker = new Worker(workerUrl, { type: "module" });
    this.#worker.onmessage = (event: MessageEvent<Report>) => this.#onReport(event.data);
    this.#worker.onerror = (event) => {
      // A crash of the worker itself, not a user's mistake: it belongs in the console too.
      console.error("chainrule playground: the training worker failed:", event.message);
      this.#setStatus(`The training worker failed: ${event.message}`, true);
    };
    this.#bindControls();
    this.#bindSettings();
    const paint = (now: number) => {
      requestAnimationFrame(paint);
      this.#paint(now);
    };
    requestAnimationFrame(paint);
    // A canvas whose box changes (a rotated phone, a resized window) is repainted, paused too.
    const resized = new ResizeObserver(() => this.#dirty = true);
    for (const canvas of [this.#el.regions, this.#el.loss, this.#el.accuracy]) {
      resized.observe(canvas);
    }
  }

  get backend(): string | undefined {
    return this.#backend;
  }
  get gpu(): { available: boolean; detail: string } | undefined {
    return this.#gpu && { ...this.#gpu };
  }
  get device(): "cpu" | "webgpu" {
    return this.#el.gpu.checked ? "webgpu" : "cpu";
  }
  get running(): boolean {
    return this.#running;
  }
  get epoch(): number {
    return this.#epoch;
  }
  get trainLoss(): number {
    return lastOf(this.#curves.loss);
  }
  get trainAccuracy(): number {
    return lastOf(this.#curves.accuracy);
  }
  get valAccuracy(): number {
    return lastOf(this.#curves.valAccuracy);
  }
  get epochsPerSecond(): number {
    return this.#epochsPerSecond;
  }
  get frames(): number {
    return this.#frames;
  }
  get pauseLatencyMs(): number {
    return this.#pauseLatencyMs;
  }

  #send(command: Command, transfer: Transferable[] = []): void {
    this.#worker.postMessage(command, transfer);
  }

  #setStatus(text: string, isError = false): void {
    this.#el.status.textContent = text;
    this.#el.status.classList.toggle("error", isError);
  }

  // Disabled buttons drop focus; hand it to the button that does the opposite.
  #showRunning(running: boolean): void {
    const { start, pause } = this.#el;
    const focused = this.#document.activeElement;
    start.disabled = running;
    pause.disabled = !running;
    if (focused === start && running) pause.focus();
    if (focused === pause && !running) start.focus();
  }

  #onReport(report: Report): void {
    switch (report.type) {
      case "ready":
        this.#backend = report.backend;
        this.#el.backend.textContent =
          `Training on chainrule's ${report.backend} backend in a Web Worker` +
          (globalThis.crossOriginIsolated ? " (cross-origin isolated)." : ".");
        this.#setStatus("Ready: press Start.");
        return;
      case "gpu":
        return this.#onGpu(report);
      case "run":
        return this.#onRun(report);
      case "progress":
        return this.#onProgress(report);
      case "state":
        return this.#onState(report);
      case "saved":
        download(this.#document, report.bytes, report.name);
        this.#setStatus(`Saved ${report.name}.`);
        return;
      case "loaded":
        writeSettings(this.#el.settings, report.settings);
        this.#setStatus(`Loaded ${report.name}: press Start to train on.`);
        return;
      case "error":
        this.#setStatus(report.message, true);
        return;
    }
  }

  // The switch is offered where the worker found WebGPU; else it is disabled and says why.
  #onGpu(report: Extract<Report, { type: "gpu" }>): void {
    const { gpu, gpuHelp } = this.#el;
    this.#gpu = { available: report.available, detail: report.detail };
    gpu.disabled = !report.available;
    if (report.available) {
      gpu.title = `Train with fitAsync on the GPU through WebGPU (${report.detail})`;
      gpuHelp.textContent = `Trains on ${report.detail} through WebGPU. The first epoch waits ` +
        "for the GPU's kernels to compile; a pause takes effect at the next epoch.";
    } else {
      gpu.checked = false;
      gpu.title = `WebGPU is not available: ${report.detail}`;
      gpuHelp.textContent = `Unavailable: ${report.detail}`;
    }
  }

  #trainingText(): string {
    return this.device === "webgpu" ? "Training on the GPU…" : "Training…";
  }

  #onRun(report: Extract<Report, { type: "run" }>): void {
    this.#data = report.data;
    this.#epoch = report.epoch;
    this.#curves.restart(report.epoch);
    this.#rateMark = { time: performance.now(), epoch: report.epoch };
    this.#el.model.textContent = report.model;
    // A message about an invalid field stays until the field is fixed.
    if (!this.#running && !this.#el.settings.querySelector("[aria-invalid]")) {
      this.#setStatus("Ready: press Start.");
    }
    this.#dirty = true;
  }

  #onProgress(report: Extract<Report, { type: "progress" }>): void {
    this.#epoch = report.epoch;
    this.#curves.push(report.figures);
    if (report.regions) {
      this.#regions = report.regions;
      const grid = report.regions;
      this.#regionImage.width = grid.size;
      this.#regionImage.height = grid.size;
      const context = this.#regionImage.getContext("2d")!;
      const image = context.createImageData(grid.size, grid.size);
      paintRegions(grid, this.#data?.classes ?? 2, image);
      context.putImageData(image, 0, 0);
    }
    this.#dirty = true;
  }

  #onState(report: Extract<Report, { type: "state" }>): void {
    this.#running = report.running;
    this.#epoch = report.epoch;
    this.#showRunning(report.running);
    this.#rateMark = { time: performance.now(), epoch: report.epoch };
    if (report.running) {
      this.#setStatus(this.#trainingText());
    } else {
      if (!Number.isNaN(this.#pauseClickedAt)) {
        this.#pauseLatencyMs = performance.now() - this.#pauseClickedAt;
      }
      this.#pauseClickedAt = NaN;
      this.#setStatus(`Paused at epoch ${report.epoch}.`);
    }
    this.#dirty = true;
  }

  #bindControls(): void {
    const el = this.#el;
    el.start.addEventListener("click", () => {
      this.#showRunning(true);
      this.#send({ type: "start" });
    });
    el.pause.addEventListener("click", () => {
      this.#pauseClickedAt = performance.now();
      this.#showRunning(false);
      this.#send({ type: "pause" });
    });
    el.step.addEventListener("click", () => this.#send({ type: "step" }));
    el.reset.addEventListener("click", () => this.#send({ type: "reset" }));
    el.download.addEventListener("click", () => this.#send({ type: "save" }));
    el.load.addEventListener("click", () => el.loadFile.click());
    el.loadFile.addEventListener("change", async () => {
      const file = el.loadFile.files?.[0];
      if (!file) return;
      const bytes = new Uint8Array(await file.arrayBuffer());
      el.loadFile.value = "";
      this.#send({ type: "load", bytes, name: file.name }, [bytes.buffer]);
    });
  }

  #bindSettings(): void {
    const form = this.#el.settings;
    form.addEventListener("change", (event) => {
      if (event.target === this.#el.gpu) return; // not a setting: see below
      if ((event.target as HTMLElement).id === "optimizer") useBookLearningRate(form);
      updateApplicable(form);
      const reading = readSettings(form);
      if (reading.invalid) {
        this.#setStatus(reading.message, true);
        return;
      }
      if (this.#el.status.classList.contains("error")) {
        this.#setStatus(this.#running ? this.#trainingText() : "Ready: press Start.");
      }
      this.#send({ type: "settings", settings: reading.settings });
    });
    // The GPU switch changes where the worker trains, not what: the run goes on.
    this.#el.gpu.addEventListener("change", () => {
      this.#send({ type: "device", gpu: this.#el.gpu.checked });
      if (this.#running) this.#setStatus(this.#trainingText());
    });
    // Enter in a field commits it (a change event) rather than reloading the page.
    form.addEventListener("submit", (event) => event.preventDefault());
  }

  // Once per animation frame: every frame while training, else only after a change.
  #paint(now: number): void {
    if (this.#running && now - this.#rateMark.time >= 500) {
      const { time, epoch } = this.#rateMark;
      this.#epochsPerSecond = (this.#epoch - epoch) * 1000 / (now - time);
      this.#rateMark = { time: now, epoch: this.#epoch };
    }
    if (!this.#dirty && !this.#running) return;
    this.#dirty = false;
    this.#frames++;
    const el = this.#el;
    const curves = this.#curves;
    el.epoch.value = String(this.#epoch);
    el.rate.value = this.#running && Number.isFinite(this.#epochsPerSecond)
      ? String(Math.round(this.#epochsPerSecond))
      : "–";
    el.trainAccuracy.value = fraction(this.trainAccuracy);
    el.valAccuracy.value = fraction(this.valAccuracy);
    drawRegions(el.regions, this.#regions ? this.#regionImage : undefined, this.#data);
    drawCurves(el.loss, curves.loss, curves.valLoss, curves.firstEpoch, "log");
    drawCurves(el.accuracy, curves.accuracy, curves.valAccuracy, curves.firstEpoch, "unit");
  }
}

const lastOf = (curve: Curve) => curve.length > 0 ? curve.at(curve.length - 1) : NaN;

/**
 * Starts the playground in `document`: the worker at `workerUrl`, the controls, the drawing
 * loop. Returns the live view of what the page shows.
 */
export function startPage(document: Document, workerUrl: URL): PlaygroundView {
  return new PlaygroundPage(document, workerUrl);
}

// Saves bytes as a file through a temporary link.
function download(document: Document, bytes: Uint8Array, name: string): void {
  const url = URL.createObjectURL(
    new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }),
  );
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
