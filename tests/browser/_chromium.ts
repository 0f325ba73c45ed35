// Headless Chromium driven over the DevTools protocol (CDP) through a WebSocket: enough to
// open pages, run scripts in them, press keys, collect console errors and take screenshots.
// No npm package: the protocol is JSON messages, https://chromedevtools.github.io/devtools-protocol/

/** Where to look for Chromium: $CHROMIUM first, then Debian's and the usual names. */
const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The Chromium executable to use, or undefined when there is none. Reads $CHROMIUM if allowed. */
export function findChromium(): string | undefined {
  const allowed = Deno.permissions.querySync({ name: "env", variable: "CHROMIUM" });
  const fromEnv = allowed.state === "granted" ? Deno.env.get("CHROMIUM") : undefined;
  for (const path of fromEnv ? [fromEnv] : CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not there: try the next one
    }
  }
  return undefined;
}

// Flags for a headless run on a machine without network: the background services would
// otherwise try to reach Google and log connection errors.
const FLAGS = [
  "--headless",
  "--no-sandbox", // CI runs as root, where the sandbox refuses to start
  "--disable-gpu",
  // WebGPU on Linux is behind this flag; with it, even with --disable-gpu and no GPU driver,
  // navigator.gpu.requestAdapter() gives SwiftShader's software Vulkan adapter.
  "--enable-unsafe-webgpu",
  "--disable-quic",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
  "--mute-audio",
  "--hide-scrollbars",
  "--remote-debugging-port=0",
];

type Json = Record<string, unknown>;
interface Message {
  id?: number;
  method?: string;
  params?: Json;
  result?: Json;
  error?: { message: string };
  sessionId?: string;
}

/** A CDP connection: commands with answers, and events to listeners. */
class Connection {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, { resolve(r: Json): void; reject(e: Error): void }>();
  readonly #listeners = new Set<(message: Message) => void>();
  #next = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data) as Message;
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) pending?.reject(new Error(message.error.message));
        else pending?.resolve(message.result ?? {});
      } else {
        for (const listener of this.#listeners) listener(message);
      }
    };
    socket.onclose = () => {
      for (const { reject } of this.#pending.values()) reject(new Error("CDP connection closed"));
      this.#pending.clear();
    };
  }

  static open(url: string): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.onopen = () => resolve(new Connection(socket));
      socket.onerror = () => reject(new Error(`cannot open the DevTools socket ${url}`));
    });
  }

  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, {
        resolve,
        reject: (error) => reject(new Error(`${method}: ${error.message}`)),
      });
      this.#socket.send(JSON.stringify({ id, method, params, sessionId }));
    });
  }

  on(listener: (message: Message) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#socket.close();
  }
}

/** Something a page's scripts, or its workers', printed as an error. */
export interface ConsoleError {
  /** Where: `page` or the worker's URL. */
  source: string;
  /** The text. */
  text: string;
}

/** One tab, attached with its dedicated workers. */
export class Page {
  readonly #connection: Connection;
  readonly #sessionId: string;
  /** Console errors, uncaught exceptions and failed loads, of the page and its workers. */
  readonly errors: ConsoleError[] = [];
  /** Every console message of the page and its workers, as `type: text`. */
  readonly messages: string[] = [];
  readonly #workers = new Map<string, string>(); // session id → worker URL

  /** @internal use {@linkcode Browser.newPage}. */
  constructor(connection: Connection, sessionId: string) {
    this.#connection = connection;
    this.#sessionId = sessionId;
    connection.on((message) => this.#onEvent(message));
  }

  #onEvent({ method, params, sessionId }: Message): void {
    const source = sessionId === this.#sessionId ? "page" : this.#workers.get(sessionId ?? "");
    if (!source || !params) return;
    if (method === "Runtime.consoleAPICalled") {
      const args = params.args as { value?: unknown; description?: string }[];
      const text = args.map((arg) => arg.description ?? String(arg.value)).join(" ");
      this.messages.push(`${source} ${params.type}: ${text}`);
      if (params.type === "error" || params.type === "assert") this.errors.push({ source, text });
    } else if (method === "Runtime.exceptionThrown") {
      const details = params.exceptionDetails as {
        text: string;
        exception?: { description?: string };
      };
      this.errors.push({ source, text: details.exception?.description ?? details.text });
    } else if (method === "Log.entryAdded") {
      const entry = params.entry as { level: string; text: string; url?: string };
      if (entry.level === "error") {
        this.errors.push({ source, text: `${entry.text} ${entry.url ?? ""}`.trim() });
      }
    } else if (method === "Target.attachedToTarget") {
      const info = params.targetInfo as { type: string; url: string };
      const child = params.sessionId as string;
      this.#workers.set(child, info.url);
      // Workers wait for this before running, so that none of their errors is missed.
      void this.#enable(child).then(() =>
        this.#connection.send("Runtime.runIfWaitingForDebugger", {}, child)
      ).catch(() => {});
    }
  }

  async #enable(sessionId: string): Promise<void> {
    await this.#connection.send("Runtime.enable", {}, sessionId);
    await this.#connection.send("Log.enable", {}, sessionId).catch(() => {}); // not in workers
    await this.#connection.send(
      "Target.setAutoAttach",
      { autoAttach: true, waitForDebuggerOnStart: true, flatten: true },
      sessionId,
    ).catch(() => {}); // a worker without workers of its own may not support it
  }

  /** Sends a CDP command to this page. */
  send(method: string, params: Json = {}): Promise<Json> {
    return this.#connection.send(method, params, this.#sessionId);
  }

  /** @internal turns on the domains the page's methods rely on. */
  async init(): Promise<void> {
    await this.send("Page.enable");
    await this.#enable(this.#sessionId);
  }

  /** Opens `url` and waits for its load event. */
  async goto(url: string, timeoutMs = 30_000): Promise<void> {
    let off = () => {};
    const loaded = new Promise<void>((resolve) => {
      off = this.#connection.on(({ method, sessionId }) => {
        if (method === "Page.loadEventFired" && sessionId === this.#sessionId) resolve();
      });
    });
    try {
      const result = await this.send("Page.navigate", { url });
      if (result.errorText) throw new Error(`Page.goto(${url}): ${result.errorText}`);
      await withTimeout(loaded, timeoutMs, `Page.goto(${url}): no load event`);
    } finally {
      off();
    }
  }

  /**
   * The value of a JavaScript expression in the page, promises awaited.
   *
   * @throws {Error} with the page's exception when the expression throws.
   */
  async evaluate<T>(expression: string): Promise<T> {
    const result = await this.send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
      userGesture: true,
    });
    const details = result.exceptionDetails as
      | { text: string; exception?: { description?: string } }
      | undefined;
    if (details) {
      throw new Error(`evaluate: ${details.exception?.description ?? details.text}`);
    }
    return (result.result as { value: T }).value;
  }

  /** Polls `expression` until it is truthy and returns its value. */
  async waitFor<T>(expression: string, timeoutMs: number, what = expression): Promise<T> {
    const until = performance.now() + timeoutMs;
    while (true) {
      const value = await this.evaluate<T>(expression);
      if (value) return value;
      if (performance.now() > until) {
        throw new Error(`waitFor: ${what} not true after ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Presses and releases a key as a keyboard would: `"Tab"`, `"Enter"`, `" "`, `"Shift+Tab"`. */
  async press(key: string): Promise<void> {
    const shift = key.startsWith("Shift+");
    const name = shift ? key.slice(6) : key;
    const codes: Record<string, [string, number, string?]> = {
      Tab: ["Tab", 9],
      Enter: ["Enter", 13, "\r"],
      " ": ["Space", 32, " "],
    };
    const [code, keyCode, text] = codes[name] ?? [name, 0];
    const base = { key: name, code, windowsVirtualKeyCode: keyCode, modifiers: shift ? 8 : 0 };
    await this.send("Input.dispatchKeyEvent", { type: "keyDown", ...base, text });
    await this.send("Input.dispatchKeyEvent", { type: "keyUp", ...base });
  }

  /** Chooses `files` in the file input that `selector` finds, as a user would (fires `change`). */
  async setInputFiles(selector: string, files: string[]): Promise<void> {
    const { result } = await this.send("Runtime.evaluate", {
      expression: `document.querySelector(${JSON.stringify(selector)})`,
    }) as { result: { objectId?: string } };
    if (!result.objectId) throw new Error(`setInputFiles: no element matches ${selector}`);
    await this.send("DOM.setFileInputFiles", { files, objectId: result.objectId });
  }

  /** Sizes the viewport as a device of that CSS size would. */
  async setViewport(
    width: number,
    height: number,
    options: { mobile?: boolean; scale?: number } = {},
  ): Promise<void> {
    await this.send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: options.scale ?? 1,
      mobile: options.mobile ?? false,
    });
  }

  /** A PNG of the viewport, or of the whole page with `fullPage`. */
  async screenshot(options: { fullPage?: boolean } = {}): Promise<Uint8Array> {
    const { data } = await this.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: options.fullPage ?? false,
    }) as { data: string };
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }
}

/** A running headless Chromium. */
export class Browser {
  readonly #process: Deno.ChildProcess;
  readonly #connection: Connection;
  readonly #profile: string;
  readonly #downloads: string;

  private constructor(
    process: Deno.ChildProcess,
    connection: Connection,
    profile: string,
    downloads: string,
  ) {
    this.#process = process;
    this.#connection = connection;
    this.#profile = profile;
    this.#downloads = downloads;
  }

  /**
   * Starts Chromium at `path` headless, with a fresh profile in a temporary directory.
   * Needs --allow-run, --allow-read, --allow-write and --allow-net (to 127.0.0.1).
   */
  static async launch(path: string): Promise<Browser> {
    const profile = await Deno.makeTempDir({ prefix: "chainrule-chromium-" });
    const process = new Deno.Command(path, {
      args: [...FLAGS, `--user-data-dir=${profile}`, "about:blank"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      const url = await withTimeout(
        devtoolsUrl(process.stderr),
        30_000,
        `${path} printed no DevTools address`,
      );
      const connection = await Connection.open(url);
      return new Browser(process, connection, profile, `${profile}/downloads`);
    } catch (error) {
      try {
        process.kill("SIGKILL");
      } catch {
        // already gone
      }
      await process.status;
      await Deno.remove(profile, { recursive: true });
      throw error;
    }
  }

  /** The directory that downloads go into. */
  get downloads(): string {
    return this.#downloads;
  }

  /** Opens a new tab, attached with its workers; downloads go to {@linkcode Browser.downloads}. */
  async newPage(): Promise<Page> {
    const { targetId } = await this.#connection.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.#connection.send("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    const page = new Page(this.#connection, sessionId as string);
    await page.init();
    await this.#connection.send("Browser.setDownloadBehavior", {
      behavior: "allow",
      downloadPath: this.#downloads,
      eventsEnabled: true,
    });
    return page;
  }

  /** Closes Chromium (killing it if it does not exit within 5 s) and removes its profile. */
  async close(): Promise<void> {
    try {
      await withTimeout(this.#connection.send("Browser.close"), 5_000, "Browser.close");
    } catch {
      // killed below
    }
    this.#connection.close();
    const exited = await withTimeout(this.#process.status, 5_000, "exit").then(
      () => true,
      () => false,
    );
    if (!exited) {
      this.#process.kill("SIGKILL");
      await this.#process.status;
    }
    await Deno.remove(this.#profile, { recursive: true });
  }
}

// Reads Chromium's stderr up to "DevTools listening on ws://…", then keeps draining it (a
// full pipe would block Chromium).
async function devtoolsUrl(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stderr.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Chromium exited before listening:\n${text}`);
    text += decoder.decode(value, { stream: true });
    const match = text.match(/DevTools listening on (ws:\/\/\S+)/);
    if (match) {
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })().catch(() => {});
      return match[1];
    }
  }
}

/** `promise`, or a rejection naming `what` after `ms` milliseconds. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} (after ${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
