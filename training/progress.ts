import type { BatchLogs, Callback, TrainingState } from "./callback.ts";
import type { EpochLogs } from "./history.ts";

/** Options of {@linkcode ProgressBar}. */
export interface ProgressOptions {
  /** Where the text goes; standard output when omitted. */
  write?: (text: string) => void;
  /**
   * Redraw a live bar in place after each batch (true) or print one line per epoch (false);
   * true when standard output is a terminal.
   */
  live?: boolean;
  /** Milliseconds between redraws of the live bar; 100 when omitted. */
  interval?: number;
  /** Width the live bar must fit in; the terminal's, or 100. */
  columns?: number;
  /** The clock, in milliseconds; `performance.now` when omitted. */
  now?: () => number;
}

const HIDDEN = new Set(["size", "batchLoss", "batchRegularizationLoss"]);
const BAR = 24;

/**
 * The progress output of `fit` (`verbose: 1` or `2`), as a callback: on a terminal a bar
 * per epoch redrawn in place (batches done, samples/s, ETA, running loss and metrics); else
 * one plain line per epoch.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Adam, Dense, ProgressBar, Sequential, SoftmaxCrossEntropy } from "@chainrule/nn";
 *
 * let text = "";
 * const model = new Sequential([new Dense(2, 2, { seed: 1 })]);
 * model.fit([[0, 1], [1, 0]], [0, 1], {
 *   loss: new SoftmaxCrossEntropy(),
 *   optimizer: new Adam(),
 *   epochs: 2,
 *   callbacks: [new ProgressBar({ live: false, write: (s) => text += s })],
 * });
 * assert.match(text, /^Epoch 1\/2 - 1\/1 steps - .* - loss: \d\.\d{4} - accuracy: [\d.]+\nEpoch 2\/2/);
 * ```
 */
export class ProgressBar implements Callback {
  #write: (text: string) => void;
  #live: boolean;
  #interval: number;
  #columns: number;
  #now: () => number;
  #epoch = 0;
  #started = 0;
  #lastDraw = -Infinity;
  #trained = 0; // when the epoch's last training step ended (validation comes after)
  #open = false; // a live line is on screen without its newline

  /** Creates the progress output. */
  constructor(options: ProgressOptions = {}) {
    this.#write = options.write ?? writeStdout;
    this.#live = options.live ?? stdoutIsTerminal();
    this.#interval = options.interval ?? 100;
    this.#columns = options.columns ?? terminalColumns();
    this.#now = options.now ?? (() => performance.now());
  }

  /** Starts the epoch's clock. */
  onEpochBegin(epoch: number): void {
    this.#epoch = epoch;
    this.#started = this.#now();
    this.#lastDraw = -Infinity;
  }

  /** Redraws the live bar (at most every `interval` ms, and after the last batch). */
  onBatchEnd(batch: number, logs: BatchLogs, state: TrainingState): void {
    const now = this.#now();
    this.#trained = now;
    if (!this.#live) return;
    const done = batch + 1;
    if (done < state.steps && now - this.#lastDraw < this.#interval) return;
    this.#lastDraw = now;
    const seconds = (now - this.#started) / 1000;
    const filled = Math.floor((BAR * done) / state.steps);
    const bar = "=".repeat(filled) + (filled < BAR ? ">" + ".".repeat(BAR - filled - 1) : "");
    const eta = done < state.steps ? seconds / done * (state.steps - done) : 0;
    const line = [
      `${this.#title(state)} [${bar}] ${done}/${state.steps}`,
      rate(Math.min(done * state.batchSize, state.samples), seconds),
      `ETA ${duration(eta)}`,
      ...figures(logs),
    ].join(" - ");
    this.#write(`\r${line.slice(0, this.#columns - 1)}\x1b[K`);
    this.#open = true;
  }

  /** Prints the epoch's final line, with the validation figures. */
  onEpochEnd(_epoch: number, logs: EpochLogs, state: TrainingState): void {
    const seconds = (this.#now() - this.#started) / 1000;
    const line = [
      this.#title(state),
      `${state.steps}/${state.steps} steps`,
      duration(seconds),
      rate(state.samples, (this.#trained - this.#started) / 1000),
      ...figures(logs),
    ].join(" - ");
    this.#write(this.#live ? `\r${line}\x1b[K\n` : `${line}\n`);
    this.#open = false;
  }

  /** Ends a half-drawn live line, so that an error message starts on a line of its own. */
  interrupt(): void {
    if (this.#open) this.#write("\n");
    this.#open = false;
  }

  /** `ProgressBar(live)` or `ProgressBar(lines)` */
  toString(): string {
    return `ProgressBar(${this.#live ? "live" : "lines"})`;
  }

  #title(state: TrainingState): string {
    return `Epoch ${this.#epoch + 1}/${state.epochs}`;
  }
}

// "loss: 0.4123", …; a zero regularization loss is left out as noise.
function figures(logs: Record<string, number>): string[] {
  return Object.entries(logs)
    .filter(([name, value]) => !HIDDEN.has(name) && !(value === 0 && /egularization/.test(name)))
    .map(([name, value]) => `${name}: ${number(value)}`);
}

function number(value: number): string {
  const size = Math.abs(value);
  if (!Number.isFinite(value)) return String(value);
  return size !== 0 && (size < 1e-3 || size >= 1e4) ? value.toExponential(3) : value.toFixed(4);
}

function rate(samples: number, seconds: number): string {
  if (seconds <= 0) return "- samples/s";
  const digits = String(Math.round(samples / seconds)).replace(/\B(?=(\d{3})+$)/g, ",");
  return `${digits} samples/s`;
}

function duration(seconds: number): string {
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

const encoder = new TextEncoder();

function writeStdout(text: string): void {
  if (typeof Deno === "undefined") {
    console.log(text.replace(/\n$/, ""));
    return;
  }
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
}

// Neither check needs a permission; both are false outside Deno.
function stdoutIsTerminal(): boolean {
  try {
    return typeof Deno !== "undefined" && Deno.stdout.isTerminal();
  } catch {
    return false;
  }
}

function terminalColumns(): number {
  try {
    return typeof Deno !== "undefined" ? Deno.consoleSize().columns : 100;
  } catch {
    return 100;
  }
}
