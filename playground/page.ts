/// <reference lib="dom" />
// The page: sends what the user asks for to the training worker and draws what it reports,
// once per animation frame, so that drawing never waits on training and the reverse.
import type { PlaygroundData } from "./datasets.ts";
import { Curve, drawCurves, drawRegions, paintRegions } from "./draw.ts";
import { readSettings, updateApplicable, useBookLearningRate, writeSettings } from "./form.ts";
import type { Command, FigureSeries, Report } from "./protocol.ts";
import type { RegionGrid } from "./trainer.ts";

/** What the page shows, readable from tests and the console as `chainrulePlayground`. */
export interface PlaygroundView {
  /** The library's backend in the worker (`"wasm"`), once it has reported. */
  readonly backend: string | undefined;
  /** Whether the worker reports that it is training. */
  readonly running: boolean;
  /** Epochs run. */
  readonly epoch: number;
  /** Training accuracy of the last epoch (NaN before any). */
  readonly trainAccuracy: number;
  /** Validation accuracy of the last epoch (NaN without validation). */
  readonly valAccuracy: number;
  /** Epochs per second over the last second of training. */
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
  settingsError: HTMLElement;
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
    settingsError: get("settings-error", HTMLElement),
    backend: get("backend", HTMLElement),
  };
}

const percent = (value: number) => Number.isFinite(value) ? value.toFixed(3) : "–";

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

/**
 * Starts the playground in `document`: the worker at `workerUrl`, the controls, the drawing
 * loop. Returns the live view of what the page shows.
 */
export function startPage(document: Document, workerUrl: URL): PlaygroundView {
  const el = find(document);
  const worker = new Worker(workerUrl, { type: "module" });
  const send = (command: Command, transfer: Transferable[] = []) =>
    worker.postMessage(command, transfer);
  const curves = new Curves();
  const regionImage = document.createElement("canvas");
  let data: PlaygroundData | undefined;
  let regions: RegionGrid | undefined;
  let backend: string | undefined;
  let running = false;
  let epoch = 0;
  let frames = 0;
  let dirty = true;
  let pauseClickedAt = NaN;
  let pauseLatencyMs = NaN;
  let rateMark = { time: performance.now(), epoch: 0 };
  let epochsPerSecond = NaN;

  const setStatus = (text: string, isError = false) => {
    el.status.textContent = text;
    el.status.classList.toggle("error", isError);
  };

  // Disabled buttons drop focus; hand it to the button that does the opposite.
  const showRunning = (now: boolean) => {
    const focused = document.activeElement;
    el.start.disabled = now;
    el.pause.disabled = !now;
    if (focused === el.start && now) el.pause.focus();
    if (focused === el.pause && !now) el.start.focus();
  };

  const paintRegionImage = (grid: RegionGrid) => {
    regionImage.width = grid.size;
    regionImage.height = grid.size;
    const context = regionImage.getContext("2d")!;
    const image = context.createImageData(grid.size, grid.size);
    paintRegions(grid, data?.classes ?? 2, image);
    context.putImageData(image, 0, 0);
  };

  const onReport = (report: Report) => {
    switch (report.type) {
      case "ready":
        backend = report.backend;
        el.backend.textContent = `Training on chainrule's ${backend} backend in a Web Worker` +
          (globalThis.crossOriginIsolated ? " (cross-origin isolated)." : ".");
        setStatus("Ready: press Start.");
        return;
      case "run":
        data = report.data;
        epoch = report.epoch;
        curves.restart(report.epoch);
        writeSettings(el.settings, report.settings);
        el.model.textContent = report.model;
        dirty = true;
        return;
      case "progress":
        epoch = report.epoch;
        curves.push(report.figures);
        if (report.regions) {
          regions = report.regions;
          paintRegionImage(regions);
        }
        dirty = true;
        return;
      case "state":
        running = report.running;
        epoch = report.epoch;
        showRunning(running);
        rateMark = { time: performance.now(), epoch };
        if (running) {
          setStatus("Training…");
        } else {
          if (!Number.isNaN(pauseClickedAt)) pauseLatencyMs = performance.now() - pauseClickedAt;
          pauseClickedAt = NaN;
          setStatus(`Paused at epoch ${epoch}.`);
        }
        dirty = true;
        return;
      case "saved":
        download(document, report.bytes, report.name);
        setStatus(`Saved ${report.name}.`);
        return;
      case "loaded":
        setStatus(`Loaded ${report.name}: press Start to train on.`);
        return;
      case "error":
        setStatus(report.message, true);
        return;
    }
  };
  worker.onmessage = (event: MessageEvent<Report>) => onReport(event.data);
  worker.onerror = (event) => {
    // A crash of the worker itself, not a user's mistake: it belongs in the console too.
    console.error("chainrule playground: the training worker failed:", event.message);
    setStatus(`The training worker failed: ${event.message}`, true);
  };

  el.start.addEventListener("click", () => {
    showRunning(true);
    send({ type: "start" });
  });
  el.pause.addEventListener("click", () => {
    pauseClickedAt = performance.now();
    showRunning(false);
    send({ type: "pause" });
  });
  el.step.addEventListener("click", () => send({ type: "step" }));
  el.reset.addEventListener("click", () => send({ type: "reset" }));
  el.download.addEventListener("click", () => send({ type: "save" }));
  el.load.addEventListener("click", () => el.loadFile.click());
  el.loadFile.addEventListener("change", async () => {
    const file = el.loadFile.files?.[0];
    if (!file) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    el.loadFile.value = "";
    send({ type: "load", bytes, name: file.name }, [bytes.buffer]);
  });

  const onSettingsChange = (event: Event) => {
    const target = event.target as HTMLElement;
    if (target.id === "optimizer") useBookLearningRate(el.settings);
    updateApplicable(el.settings);
    const reading = readSettings(el.settings);
    el.settingsError.textContent = reading.invalid ? reading.message : "";
    if (!reading.invalid) send({ type: "settings", settings: reading.settings });
  };
  el.settings.addEventListener("change", onSettingsChange);
  // Enter in a field commits it (a change event) rather than reloading the page.
  el.settings.addEventListener("submit", (event) => event.preventDefault());

  const paint = (now: number) => {
    requestAnimationFrame(paint);
    if (running && now - rateMark.time >= 1000) {
      epochsPerSecond = (epoch - rateMark.epoch) * 1000 / (now - rateMark.time);
      rateMark = { time: now, epoch };
    }
    if (!dirty && !running) return;
    dirty = false;
    frames++;
    el.epoch.value = String(epoch);
    el.rate.value = running && Number.isFinite(epochsPerSecond)
      ? String(Math.round(epochsPerSecond))
      : "–";
    const last = curves.accuracy.length - 1;
    el.trainAccuracy.value = percent(last >= 0 ? curves.accuracy.at(last) : NaN);
    el.valAccuracy.value = percent(last >= 0 ? curves.valAccuracy.at(last) : NaN);
    drawRegions(el.regions, regions ? regionImage : undefined, data);
    drawCurves(el.loss, curves.loss, curves.valLoss, curves.firstEpoch);
    drawCurves(el.accuracy, curves.accuracy, curves.valAccuracy, curves.firstEpoch, 1);
  };
  requestAnimationFrame(paint);
  // A canvas whose box changes (a rotated phone, a resized window) is repainted, paused too.
  const resized = new ResizeObserver(() => dirty = true);
  for (const canvas of [el.regions, el.loss, el.accuracy]) resized.observe(canvas);

  return {
    get backend() {
      return backend;
    },
    get running() {
      return running;
    },
    get epoch() {
      return epoch;
    },
    get trainAccuracy() {
      const last = curves.accuracy.length - 1;
      return last >= 0 ? curves.accuracy.at(last) : NaN;
    },
    get valAccuracy() {
      const last = curves.valAccuracy.length - 1;
      return last >= 0 ? curves.valAccuracy.at(last) : NaN;
    },
    get epochsPerSecond() {
      return epochsPerSecond;
    },
    get frames() {
      return frames;
    },
    get pauseLatencyMs() {
      return pauseLatencyMs;
    },
  };
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
