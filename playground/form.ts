/// <reference lib="dom" />
// The settings form: reads the fields into Settings and writes Settings back into them.
import {
  BOOK_LEARNING_RATES,
  describeSetting,
  hasClassChoice,
  invalidField,
  type OptimizerName,
  type Settings,
} from "./settings.ts";

const NUMBER_FIELDS = [
  "classes",
  "noise",
  "points",
  "validation",
  "seed",
  "learningRate",
  "momentum",
  "l2",
  "dropout",
  "batchSize",
] as const;
const TEXT_FIELDS = ["dataset", "activation", "optimizer"] as const;

function field(form: HTMLFormElement, name: string): HTMLInputElement | HTMLSelectElement {
  const element = form.elements.namedItem(name);
  if (!(element instanceof HTMLInputElement || element instanceof HTMLSelectElement)) {
    throw new TypeError(`playground form: no field named "${name}"`);
  }
  return element;
}

/** `"16, 16"` → `[16, 16]`; `""` → `[]`; anything that is not a number list → `[NaN]`. */
export function parseHidden(text: string): number[] {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  return trimmed.split(/[\s,]+/).map((part) => /^\d+$/.test(part) ? Number(part) : NaN);
}

/** What the form holds: its settings, or the first invalid field and why. */
export type FormReading =
  | { settings: Settings; invalid?: undefined }
  | { invalid: keyof Settings; message: string };

/** Reads the form; marks the first invalid field (`aria-invalid`) and clears the others. */
export function readSettings(form: HTMLFormElement): FormReading {
  const record: Record<string, unknown> = {};
  for (const name of NUMBER_FIELDS) {
    const value = field(form, name).value.trim();
    record[name] = value === "" ? NaN : Number(value);
  }
  for (const name of TEXT_FIELDS) record[name] = field(form, name).value;
  record.hidden = parseHidden(field(form, "hidden").value);
  const invalid = invalidField(record);
  for (const element of form.querySelectorAll("[aria-invalid]")) {
    element.removeAttribute("aria-invalid");
  }
  if (invalid) {
    field(form, invalid).setAttribute("aria-invalid", "true");
    return { invalid, message: `${labelOf(form, invalid)} must be ${describeSetting(invalid)}.` };
  }
  return { settings: record as unknown as Settings };
}

function labelOf(form: HTMLFormElement, name: string): string {
  return form.querySelector(`label[for="${name}"]`)?.textContent ?? name;
}

/** Puts `settings` into the form's fields and enables only the fields that apply. */
export function writeSettings(form: HTMLFormElement, settings: Settings): void {
  for (const name of [...NUMBER_FIELDS, ...TEXT_FIELDS]) {
    field(form, name).value = String(settings[name]);
  }
  field(form, "hidden").value = settings.hidden.join(", ");
  updateApplicable(form);
}

/** Disables the fields that the chosen data set and optimizer ignore. */
export function updateApplicable(form: HTMLFormElement): void {
  field(form, "classes").disabled = !hasClassChoice(
    field(form, "dataset").value as Settings["dataset"],
  );
  field(form, "momentum").disabled = field(form, "optimizer").value !== "SGD";
}

/** Sets the learning rate to the book's for the optimizer now chosen. */
export function useBookLearningRate(form: HTMLFormElement): void {
  const optimizer = field(form, "optimizer").value as OptimizerName;
  field(form, "learningRate").value = String(BOOK_LEARNING_RATES[optimizer]);
}
