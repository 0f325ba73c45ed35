/**
 * What one epoch of `fit` measured: `loss` (mean data loss), `regularizationLoss` (mean
 * penalty per step), one entry per metric (e.g. `accuracy`), and with validation the same
 * keys prefixed `val` (`valLoss`, `valRegularizationLoss`, `valAccuracy`).
 */
export interface EpochLogs {
  /** Mean data loss over the epoch's samples. */
  loss: number;
  /** Mean regularization penalty over the epoch's steps. */
  regularizationLoss: number;
  /** Metrics and validation figures, by name. */
  [name: string]: number;
}

/**
 * The per-epoch figures of a `fit` run, one series per logged name.
 *
 * `history.loss`, `history.accuracy`, `history.valLoss` … are the series as arrays;
 * {@linkcode History.get} reads any series by name, {@linkcode History.series} holds them all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { History } from "@chainrule/nn";
 *
 * const history = new History();
 * history.record(0, { loss: 1.1, regularizationLoss: 0, accuracy: 0.4, valLoss: 1.2 });
 * history.record(1, { loss: 0.7, regularizationLoss: 0, accuracy: 0.7, valLoss: 0.9 });
 * assert.deepEqual(history.loss, [1.1, 0.7]);
 * assert.deepEqual(history.get("valLoss"), [1.2, 0.9]);
 * assert.deepEqual(history.epochs, [0, 1]);
 * ```
 */
export class History {
  /** The epoch number (0-based) of each entry, in the order the epochs ran. */
  readonly epochs: number[] = [];
  /** Every series by name; a value missing from an epoch's logs is recorded as NaN. */
  readonly series: Record<string, number[]> = { loss: [], regularizationLoss: [] };

  /** Mean data loss per epoch. */
  get loss(): number[] {
    return this.series.loss;
  }

  /** Mean regularization penalty per epoch. */
  get regularizationLoss(): number[] {
    return this.series.regularizationLoss;
  }

  /** Training accuracy per epoch (empty when no metric is named `accuracy`). */
  get accuracy(): number[] {
    return this.series.accuracy ?? [];
  }

  /** Validation data loss per epoch (empty without validation). */
  get valLoss(): number[] {
    return this.series.valLoss ?? [];
  }

  /** Validation accuracy per epoch (empty without validation or accuracy). */
  get valAccuracy(): number[] {
    return this.series.valAccuracy ?? [];
  }

  /** The names of the recorded series. */
  names(): string[] {
    return Object.keys(this.series);
  }

  /**
   * The series called `name`.
   *
   * @throws {RangeError} naming the recorded series when there is none by that name.
   */
  get(name: string): number[] {
    const values = Object.hasOwn(this.series, name) ? this.series[name] : undefined;
    if (!values) {
      throw new RangeError(
        `History.get: no series "${name}"; recorded: ${this.names().join(", ")}`,
      );
    }
    return values;
  }

  /** Appends one epoch's logs. */
  record(epoch: number, logs: EpochLogs): void {
    const count = this.epochs.length;
    for (const [name, value] of Object.entries(logs)) {
      (this.series[name] ??= new Array<number>(count).fill(NaN)).push(value);
    }
    for (const values of Object.values(this.series)) if (values.length === count) values.push(NaN);
    this.epochs.push(epoch);
  }
}

/**
 * The log name of a validation figure: `loss` → `valLoss`, `accuracy` → `valAccuracy`.
 */
export function validationName(name: string): string {
  return `val${name[0].toUpperCase()}${name.slice(1)}`;
}
