import assert from "node:assert/strict";
import { Dense, ProgressBar, Sequential, SGD, SoftmaxCrossEntropy, spiralData } from "../mod.ts";

const ERASE = "\x1b[K";

// Trains 2 epochs of 30 samples in batches of 4 (8 steps), the clock advancing 50 ms a step.
function train(options: { live: boolean; interval?: number; columns?: number }): string[] {
  const writes: string[] = [];
  let clock = 0;
  const { x, y } = spiralData(10, 3);
  const tick = { onBatchEnd: () => clock += 50 };
  new Sequential([new Dense(2, 3, { seed: 1 })]).fit(x, y, {
    loss: new SoftmaxCrossEntropy(),
    optimizer: new SGD(),
    epochs: 2,
    batchSize: 4,
    callbacks: [
      tick,
      new ProgressBar({ ...options, write: (s) => writes.push(s), now: () => clock }),
    ],
  });
  return writes;
}

Deno.test("ProgressBar", async (t) => {
  await t.step("not live: one plain line per epoch", () => {
    const writes = train({ live: false });
    assert.equal(writes.length, 2);
    assert.match(
      writes[0],
      /^Epoch 1\/2 - 8\/8 steps - 0\.4s - 75 samples\/s - loss: \d\.\d{4} - accuracy: 0\.\d{4}\n$/,
    );
    assert.match(writes[1], /^Epoch 2\/2 /);
  });

  await t.step("live: a bar redrawn in place, then the epoch's line", () => {
    const writes = train({ live: true, interval: 0 });
    // 8 redraws and a final line per epoch.
    assert.equal(writes.length, 18);
    for (const w of writes) assert.ok(w.startsWith("\r") && !w.slice(1).includes("\r"));
    // After step 2 of 8, 100 ms in: 8 samples / 0.1 s, 6 steps of 50 ms to go.
    // Each redraw ends by erasing the rest of the line (ESC [K).
    assert.ok(writes.every((w) => w.replace("\n", "").endsWith(ERASE)));
    assert.match(
      writes[1].replace(ERASE, ""),
      /^\rEpoch 1\/2 \[======>\.{17}\] 2\/8 - 80 samples\/s - ETA 0\.3s - loss: \d\.\d{4} - accuracy: [\d.]+$/,
    );
    assert.match(writes[7], /\[={24}\] 8\/8 - .* - ETA 0\.0s/);
    assert.match(writes[8].replace(ERASE, ""), /^\rEpoch 1\/2 - 8\/8 steps - .*\n$/);
    assert.ok(writes.slice(0, 8).every((w) => !w.includes("\n")));
  });

  await t.step("live redraws are throttled, and the last batch is always drawn", () => {
    const writes = train({ live: true, interval: 120 });
    // Steps end at 50, 100, …, 400 ms: drawn at 50, 200, 350 and the last one (400).
    assert.deepEqual(
      writes.slice(0, 5).map((w) => w.match(/\] (\d)\/8/)?.[1] ?? "end"),
      ["1", "4", "7", "8", "end"],
    );
  });

  await t.step("a live line fits the terminal width", () => {
    const writes = train({ live: true, interval: 0, columns: 40 });
    for (const w of writes.slice(0, 8)) assert.equal(w.replace(ERASE, "").length, 40);
  });

  await t.step("interrupt ends a half-drawn live line, and only then", () => {
    const writes: string[] = [];
    const bar = new ProgressBar({ live: true, write: (s) => writes.push(s), now: () => 0 });
    bar.interrupt();
    assert.deepEqual(writes, []);
    const state = { steps: 2, batchSize: 1, samples: 2, epochs: 1 } as never;
    bar.onEpochBegin(0);
    bar.onBatchEnd(0, {
      size: 1,
      batchLoss: 1,
      batchRegularizationLoss: 0,
      loss: 1,
      regularizationLoss: 0,
    }, state);
    bar.interrupt();
    assert.equal(writes.at(-1), "\n");
    assert.equal(writes.length, 2);
  });
});
