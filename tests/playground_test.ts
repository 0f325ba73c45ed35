// The playground's logic without a browser: settings, data sets, the trainer, the worker's
// session and the server's handler. tests/browser/ drives the page itself in Chromium.
import assert from "node:assert/strict";
import { Adam, Dense, modelToBytes, ReLU, Sequential, spiralData } from "../mod.ts";
import { RandomState } from "../mod.ts";
import {
  blobPoints,
  circlePoints,
  makeData,
  spiralPoints,
  xorPoints,
} from "../playground/datasets.ts";
import { parseHidden } from "../playground/form.ts";
import type { Report } from "../playground/protocol.ts";
import { directoryHandler, RESPONSE_HEADERS } from "../playground/server.ts";
import { PlaygroundSession, SETTINGS_KEY } from "../playground/session.ts";
import {
  checkSettings,
  DEFAULT_SETTINGS,
  needsRebuild,
  type Settings,
} from "../playground/settings.ts";
import { Trainer } from "../playground/trainer.ts";

const settings = (changes: Partial<Settings> = {}): Settings => ({
  ...DEFAULT_SETTINGS,
  ...changes,
});

Deno.test("playground settings", async (t) => {
  await t.step("the defaults are the book's spiral network, and valid", () => {
    assert.deepEqual(checkSettings(settings()), settings());
    assert.deepEqual(settings().hidden, [64]);
  });
  await t.step("a bad field is named, with what it accepts and what it got", () => {
    assert.throws(() => checkSettings(settings({ classes: 7 })), {
      name: "TypeError",
      message: "checkSettings: classes must be an integer in [2, 5], got 7",
    });
    assert.throws(
      () => checkSettings({ ...settings(), hidden: [64, 0] }),
      /hidden must be a list of at most 6 layer sizes, each 1–256, got \[64,0\]/,
    );
    assert.throws(() => checkSettings(null), /settings must be an object/);
  });
  await t.step("only data and network changes need a rebuild", () => {
    assert.equal(needsRebuild(settings(), settings({ learningRate: 0.01, batchSize: 32 })), false);
    assert.equal(needsRebuild(settings(), settings({ hidden: [16, 16] })), true);
    assert.equal(needsRebuild(settings(), settings({ dataset: "xor" })), true);
  });
  await t.step("the hidden-layers field parses a list of units", () => {
    assert.deepEqual(parseHidden(" 16, 8 "), [16, 8]);
    assert.deepEqual(parseHidden("32 32"), [32, 32]);
    assert.deepEqual(parseHidden(""), []);
    assert.ok(parseHidden("16, x").some(Number.isNaN));
  });
});

Deno.test("playground data sets", async (t) => {
  await t.step("the spiral at noise 0.2 is the book's spiralData, bit for bit", () => {
    const ours = spiralPoints(100, 3, 0.2, new RandomState(0));
    const book = spiralData(100, 3);
    assert.deepEqual(ours.x, book.x.data);
    assert.deepEqual(ours.y, book.y);
  });
  await t.step("circles, XOR and blobs have the labels they promise", () => {
    const circles = circlePoints(100, 0, new RandomState(1));
    for (let i = 0; i < 100; i++) {
      const radius = Math.hypot(circles.x[i * 2], circles.x[i * 2 + 1]);
      assert.ok(Math.abs(radius - (circles.y[i] === 0 ? 1 : 0.5)) < 1e-6);
    }
    const xor = xorPoints(200, 0, new RandomState(2));
    for (let i = 0; i < 200; i++) {
      assert.equal(xor.y[i], xor.x[i * 2] * xor.x[i * 2 + 1] > 0 ? 0 : 1);
    }
    const blobs = blobPoints(250, 5, 0.2, new RandomState(3));
    assert.deepEqual([...new Set(blobs.y)], [0, 1, 2, 3, 4]);
  });
  await t.step("makeData splits off the validation points, the same for the same seed", () => {
    const data = makeData(settings({ points: 300, validation: 0.2 }), new RandomState(0));
    assert.equal(data.trainY.length, 240);
    assert.equal(data.valY.length, 60);
    assert.equal(data.trainX.length, 480);
    assert.equal(data.classes, 3);
    assert.deepEqual(new Set(data.valY), new Set([0, 1, 2]), "shuffled before the split");
    const again = makeData(settings({ points: 300, validation: 0.2 }), new RandomState(0));
    assert.deepEqual(again.valX, data.valX);
    for (const v of [...data.trainX, ...data.valX]) assert.ok(Math.abs(v) < data.extent);
  });
  await t.step("circles and XOR have 2 classes whatever the classes field says", () => {
    for (const dataset of ["circles", "xor"] as const) {
      const data = makeData(settings({ dataset, classes: 4 }), new RandomState(0));
      assert.equal(data.classes, 2);
      assert.deepEqual(new Set(data.trainY), new Set([0, 1]));
    }
  });
});

Deno.test("playground trainer", async (t) => {
  await t.step("learns the book's spiral to ≥ 0.9 training accuracy in 1500 epochs", () => {
    const trainer = new Trainer(settings());
    let accuracy = 0;
    while (trainer.epoch < 1500 && accuracy < 0.9) accuracy = trainer.runEpoch().accuracy;
    assert.ok(accuracy >= 0.9, `accuracy ${accuracy} after ${trainer.epoch} epochs`);
  });
  await t.step("builds the network the settings describe", () => {
    const trainer = new Trainer(
      settings({ hidden: [8, 4], activation: "Tanh", dropout: 0.1, l2: 1e-4 }),
    );
    assert.equal(
      trainer.model.toString(),
      "Sequential(Dense(in=2, out=8, weightRegularizerL2=0.0001, biasRegularizerL2=0.0001) → " +
        "Tanh() → Dropout(rate=0.1) → " +
        "Dense(in=8, out=4, weightRegularizerL2=0.0001, biasRegularizerL2=0.0001) → " +
        "Tanh() → Dropout(rate=0.1) → Dense(in=4, out=3))",
    );
  });
  await t.step("mini-batches and no validation: finite loss, NaN validation figures", () => {
    const trainer = new Trainer(
      settings({ batchSize: 32, validation: 0, optimizer: "SGD", learningRate: 1 }),
    );
    const figures = trainer.runEpoch();
    assert.ok(Number.isFinite(figures.loss) && figures.accuracy >= 0 && figures.accuracy <= 1);
    assert.ok(Number.isNaN(figures.valLoss) && Number.isNaN(figures.valAccuracy));
  });
  await t.step("regions: one class and one confidence per grid cell", () => {
    const grid = new Trainer(settings({ classes: 5 })).regions(16);
    assert.equal(grid.classes.length, 256);
    assert.ok(grid.classes.every((c) => c < 5));
    assert.ok(grid.confidence.every((c) => c >= Math.floor(255 / 5)));
  });
});

// A session whose scheduled slices run when the test says so.
function harness() {
  const reports: Report[] = [];
  const tasks: (() => void)[] = [];
  const session = new PlaygroundSession(
    (report) => reports.push(report),
    (task) => tasks.push(task),
  );
  const last = <T extends Report["type"]>(type: T) =>
    reports.findLast((report) => report.type === type) as Extract<Report, { type: T }> | undefined;
  return { session, reports, tasks, last };
}

Deno.test("playground session (the worker's side)", async (t) => {
  await t.step("reports ready on the wasm backend and a first run with its regions", () => {
    const { reports, last } = harness();
    assert.deepEqual(reports[0], { type: "ready", backend: "wasm" });
    assert.equal(last("run")?.epoch, 0);
    assert.equal(last("progress")?.regions?.size, 96);
  });
  await t.step("trains in slices until paused; a pause stops the slices", () => {
    const { session, tasks, last } = harness();
    session.handle({ type: "start" });
    assert.deepEqual(last("state"), { type: "state", running: true, epoch: 0 });
    tasks.shift()!();
    tasks.shift()!();
    const epoch = session.epoch;
    assert.ok(epoch > 0);
    assert.equal(last("progress")?.epoch, epoch);
    assert.equal(last("progress")?.figures.loss.length! > 0, true);
    session.handle({ type: "pause" });
    assert.deepEqual(last("state"), { type: "state", running: false, epoch });
    for (const task of tasks.splice(0)) task(); // a slice already queued does nothing
    assert.equal(session.epoch, epoch);
  });
  await t.step("step runs one epoch; reset starts over", () => {
    const { session, last } = harness();
    session.handle({ type: "step" });
    session.handle({ type: "step" });
    assert.equal(session.epoch, 2);
    assert.equal(last("progress")?.figures.loss.length, 1);
    session.handle({ type: "reset" });
    assert.equal(session.epoch, 0);
  });
  await t.step(
    "a new learning rate keeps the weights and the count; a new data set does not",
    () => {
      const { session, reports } = harness();
      session.handle({ type: "step" });
      const runs = () => reports.filter((report) => report.type === "run").length;
      session.handle({ type: "settings", settings: settings({ learningRate: 0.01 }) });
      assert.equal(session.epoch, 1);
      assert.equal(runs(), 1);
      session.handle({ type: "settings", settings: settings({ dataset: "circles" }) });
      assert.equal(session.epoch, 0);
      assert.equal(runs(), 2);
    },
  );
  await t.step("save, then load: the same weights, settings and epoch", () => {
    const first = harness();
    first.session.handle({ type: "settings", settings: settings({ hidden: [8], seed: 5 }) });
    for (let i = 0; i < 3; i++) first.session.handle({ type: "step" });
    first.session.handle({ type: "save" });
    const saved = first.last("saved")!;
    assert.equal(saved.name, "chainrule-spiral-epoch-3.safetensors");

    const second = harness();
    second.session.handle({ type: "load", bytes: saved.bytes, name: saved.name });
    assert.deepEqual(second.last("loaded"), {
      type: "loaded",
      name: saved.name,
      settings: settings({ hidden: [8], seed: 5 }),
    });
    const run = second.last("run")!;
    assert.equal(run.epoch, 3);
    assert.deepEqual(run.settings, settings({ hidden: [8], seed: 5 }));
    assert.deepEqual(second.last("progress")?.regions, first.last("progress")?.regions);
  });
  await t.step("loads a model saved elsewhere, reading the settings off its layers", () => {
    const model = new Sequential([new Dense(2, 32), new ReLU(), new Dense(32, 4)]);
    const bytes = modelToBytes(model, { optimizer: new Adam({ learningRate: 0.02 }) });
    const { session, last } = harness();
    session.handle({ type: "load", bytes, name: "elsewhere.safetensors" });
    const run = last("run")!;
    assert.deepEqual(
      [
        run.settings.hidden,
        run.settings.classes,
        run.settings.optimizer,
        run.settings.learningRate,
      ],
      [[32], 4, "Adam", 0.02],
    );
    assert.equal(run.model, model.toString());
  });
  await t.step("refuses a model the playground cannot show, saying why", () => {
    const { session, last } = harness();
    session.handle({ type: "step" });
    const model = new Sequential([new Dense(3, 2)]);
    session.handle({ type: "load", bytes: modelToBytes(model), name: "three.safetensors" });
    assert.match(last("error")!.message, /needs a model of 2 inputs and 2–5 classes/);
    session.handle({ type: "load", bytes: new Uint8Array([1, 2, 3]), name: "junk" });
    assert.match(last("error")!.message, /^modelFromBytes/);
    const tampered = modelToBytes(new Sequential([new Dense(2, 3)]), {
      metadata: { [SETTINGS_KEY]: JSON.stringify({ ...settings(), points: 1 }) },
    });
    session.handle({ type: "load", bytes: tampered, name: "tampered" });
    assert.match(last("error")!.message, /points must be an integer in \[20, 2000\], got 1/);
    const mismatched = modelToBytes(new Sequential([new Dense(2, 4)]), {
      metadata: { [SETTINGS_KEY]: JSON.stringify(settings()) },
    });
    session.handle({ type: "load", bytes: mismatched, name: "mismatched" });
    assert.match(last("error")!.message, /the settings give 3 classes, the model 4/);
    const garbled = modelToBytes(new Sequential([new Dense(2, 3)]), {
      metadata: { [SETTINGS_KEY]: "{" },
    });
    session.handle({ type: "load", bytes: garbled, name: "garbled" });
    assert.match(last("error")!.message, /playground.settings is not JSON/);
    assert.equal(session.epoch, 1, "a refused file changes nothing");
  });
});

Deno.test("playground server: files with COOP/COEP, nothing outside the build", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/index.html`, "<!doctype html>");
    await Deno.writeTextFile(`${dir}/app.js`, "export {};");
    const handle = directoryHandler(dir);
    const index = await handle(new Request("http://localhost/"));
    assert.equal(index.status, 200);
    assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
    for (const [name, value] of Object.entries(RESPONSE_HEADERS)) {
      assert.equal(index.headers.get(name), value);
    }
    assert.equal(await index.text(), "<!doctype html>");
    const script = await handle(new Request("http://localhost/app.js"));
    assert.equal(script.headers.get("content-type"), "text/javascript; charset=utf-8");
    await script.body?.cancel();
    for (const path of ["/../deno.json", "/%2e%2e/deno.json", "/.hidden", "/missing.js"]) {
      const response = await handle(new Request(`http://localhost${path}`));
      assert.equal(response.status, 404, path);
      await response.body?.cancel();
    }
    const post = await handle(new Request("http://localhost/", { method: "POST" }));
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
