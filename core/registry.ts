import { describe, describeKind } from "./_describe.ts";
import type { JsonObject } from "./json.ts";

/** Builds a plugin from its `config()`. */
export type Factory<T> = (config: JsonObject) => T;

/**
 * Plugins of one kind by name: the mechanism behind `registerLayer`/`createLayer` and their
 * siblings. The built-ins come from a function called on first use, so that the core never
 * names a concrete plugin and importing runs no registration code.
 */
export class Registry<T> {
  #factories?: Map<string, Factory<T>>;

  /** `what` names the plugin kind in errors ("layer"); `builtins` lists the built-ins. */
  constructor(readonly what: string, readonly builtins: () => [string, Factory<T>][]) {}

  /** The factories by kind, filled with the built-ins on first use. */
  get factories(): Map<string, Factory<T>> {
    this.#factories ??= new Map(this.builtins());
    return this.#factories;
  }

  /** Adds or replaces the factory of `kind`; `where` names the caller in errors. */
  register(kind: string, factory: Factory<T>, where: string): void {
    if (typeof kind !== "string" || kind === "") {
      throw new TypeError(`${where}: kind must be a non-empty string, got ${describe(kind)}`);
    }
    if (typeof factory !== "function") {
      throw new TypeError(
        `${where}: factory for "${kind}" must be a function, got ${describeKind(factory)}`,
      );
    }
    this.factories.set(kind, factory);
  }

  /** Builds a `kind` from `config`; `how` is the register function an error suggests. */
  create(kind: string, config: JsonObject, where: string, how: string): T {
    const factory = this.factories.get(kind);
    if (!factory) {
      throw new RangeError(
        `${where}: unknown ${this.what} kind "${kind}"; known kinds: ${this.kinds().join(", ")}. ` +
          `Register it first with ${how}("${kind}", (config) => new ${kind}(...))`,
      );
    }
    return factory(config);
  }

  /** The registered kinds, sorted. */
  kinds(): string[] {
    return [...this.factories.keys()].sort();
  }
}
