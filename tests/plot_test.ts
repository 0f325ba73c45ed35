import assert from "node:assert/strict";
import {
  combineSvg,
  decisionBoundaryPlot,
  Dense,
  History,
  historyPlot,
  Sequential,
  Tensor,
} from "../mod.ts";
import { findAll, parseXml } from "./_xml.ts";

function sampleHistory(epochs: number, validation = true): History {
  const history = new History();
  for (let e = 0; e < epochs; e++) {
    const logs: Record<string, number> = {
      loss: 1 / (e + 1),
      regularizationLoss: 0.01,
      accuracy: e / epochs,
    };
    if (validation) Object.assign(logs, { valLoss: 1.2 / (e + 1), valAccuracy: e / epochs / 2 });
    history.record(e, logs as { loss: number; regularizationLoss: number });
  }
  return history;
}

function points(polyline: { attributes: Record<string, string> }): number[][] {
  return polyline.attributes.points.split(" ").map((p) => p.split(",").map(Number));
}

Deno.test("the XML checker rejects malformed documents", () => {
  for (
    const bad of [
      "<svg><g></svg>",
      '<svg a="1" a="2"/>',
      "<svg>&nbsp;</svg>",
      "<svg>x < y</svg>",
      '<svg a="x<y"/>',
      "<svg/><svg/>",
      "<svg",
      '<svg a="1"b="2"/>',
    ]
  ) {
    assert.throws(() => parseXml(bad), SyntaxError, bad);
  }
  assert.equal(
    parseXml('<?xml version="1.0"?><svg a="&amp;"><g/>t&#955;</svg>').children.length,
    1,
  );
});

Deno.test("historyPlot", async (t) => {
  await t.step("draws loss and accuracy panels, training and validation series", () => {
    const svg = parseXml(historyPlot(sampleHistory(12)));
    assert.equal(svg.name, "svg");
    assert.equal(svg.attributes.xmlns, "http://www.w3.org/2000/svg");
    const panels = findAll(svg, "g").filter((g) => g.attributes.class === "panel");
    assert.deepEqual(panels.map((p) => p.attributes["data-panel"]), ["loss", "accuracy"]);
    const series = findAll(svg, "polyline").map((p) => p.attributes["data-series"]);
    assert.deepEqual(series, ["loss", "valLoss", "accuracy", "valAccuracy"]);
    for (const line of findAll(svg, "polyline")) assert.equal(points(line).length, 12);
    // Each panel's x runs left to right with the epochs; loss falls, so its y (down) grows.
    const loss = points(findAll(svg, "polyline")[0]);
    for (let i = 1; i < loss.length; i++) {
      assert.ok(loss[i][0] > loss[i - 1][0]);
      assert.ok(loss[i][1] > loss[i - 1][1]);
    }
    // The accuracy panel sits to the right of the loss panel.
    assert.ok(points(findAll(svg, "polyline")[2])[0][0] > 420);
  });

  await t.step("without validation draws one series per panel", () => {
    const svg = parseXml(historyPlot(sampleHistory(3, false)));
    const series = findAll(svg, "polyline").map((p) => p.attributes["data-series"]);
    assert.deepEqual(series, ["loss", "accuracy"]);
  });

  await t.step("thins long series but keeps their spikes", () => {
    const history = new History();
    for (let e = 0; e < 10000; e++) {
      history.record(e, { loss: e === 5003 ? 9 : 1, regularizationLoss: 0 });
    }
    const svg = parseXml(historyPlot(history));
    const line = points(findAll(svg, "polyline")[0]);
    assert.ok(line.length < 2000, `${line.length} points`);
    const top = Math.min(...line.map((p) => p[1]));
    const flat = Math.max(...line.map((p) => p[1]));
    assert.ok(top < flat, "the spike to 9 is drawn");
  });

  await t.step("a single epoch is drawn as a dot", () => {
    const svg = parseXml(historyPlot(sampleHistory(1)));
    assert.equal(findAll(svg, "circle").length, 4);
  });

  await t.step("rejects an empty history and unknown series", () => {
    assert.throws(() => historyPlot(new History()), /historyPlot: the history holds no epochs/);
    assert.throws(
      () => historyPlot(sampleHistory(2), { series: ["f1"] }),
      /no series "f1"; recorded: loss, regularizationLoss, accuracy, valLoss, valAccuracy/,
    );
  });
});

Deno.test("decisionBoundaryPlot", async (t) => {
  // Class 1 where x₁ > 0, class 0 where x₁ < 0.
  const model = new Sequential([new Dense(2, 2, { weights: [[-1, 1], [0, 0]] })]);
  const x = [[-1, -1], [-0.5, 1], [0.5, 0], [1, 1]];
  const y = [0, 0, 1, 1];

  await t.step("colours each side by the model's class, and draws every point", () => {
    const svg = parseXml(decisionBoundaryPlot(model, x, y, { resolution: 20 }));
    const circles = findAll(svg, "circle").filter((c) => c.attributes.class === "point");
    assert.deepEqual(circles.map((c) => c.attributes["data-class"]), ["0", "0", "1", "1"]);
    // Points sit inside the frame, left to right as x₁ grows.
    const cx = circles.map((c) => Number(c.attributes.cx));
    assert.ok(cx[0] < cx[1] && cx[1] < cx[2] && cx[2] < cx[3]);
    const regions = findAll(svg, "g").find((g) => g.attributes.class === "regions")!;
    // 20 rows, each split once at x₁ = 0: two rects per row.
    assert.equal(regions.children.length, 40);
    const fills = new Set(regions.children.map((r) => r.attributes.fill));
    assert.equal(fills.size, 2);
    const [left, right] = regions.children;
    assert.ok(Number(left.attributes.x) < Number(right.attributes.x));
    assert.notEqual(left.attributes.fill, right.attributes.fill);
    // The left region has class 0's colour #1f77b4 = (31, 119, 180) at 35% on white:
    // 255 − (255 − c)·0.35 → (177, 207, 229) = #b1cfe5.
    assert.equal(circles[0].attributes.fill, "#1f77b4");
    assert.equal(left.attributes.fill, "#b1cfe5");
  });

  await t.step("a single-output model splits at the threshold", () => {
    const single = new Sequential([new Dense(2, 1, { weights: [[1], [0]] })]);
    const svg = parseXml(decisionBoundaryPlot(single, x, y, { resolution: 10, threshold: 0 }));
    const regions = findAll(svg, "g").find((g) => g.attributes.class === "regions")!;
    assert.equal(regions.children.length, 20);
  });

  await t.step("one-hot targets and labels", () => {
    const oneHot = Tensor.from([[1, 0], [1, 0], [0, 1], [0, 1]]);
    const svg = decisionBoundaryPlot(model, x, oneHot, { resolution: 4, labels: ["cat", "dog"] });
    assert.match(svg, />dog</);
    assert.equal(parseXml(svg).name, "svg");
  });

  await t.step("rejects points that are not 2-D and labels that do not match", () => {
    assert.throws(
      () => decisionBoundaryPlot(model, [[1, 2, 3]], [0]),
      /decisionBoundaryPlot: x must be \[samples, 2\] points, got shape \[1, 3\]/,
    );
    assert.throws(
      () => decisionBoundaryPlot(model, x, [0, 1]),
      /y must hold one class per point \(\[4\]\), got shape \[2\]/,
    );
    assert.throws(() => decisionBoundaryPlot(model, x, [0, 1, 2, -1]), /y\[3\] = -1/);
  });
});

Deno.test("combineSvg nests figures side by side in one well-formed document", () => {
  const a = historyPlot(sampleHistory(3));
  const b = decisionBoundaryPlot(
    new Sequential([new Dense(2, 2, { seed: 1 })]),
    [[0, 0], [1, 1]],
    [0, 1],
    { resolution: 5 },
  );
  const svg = parseXml(combineSvg([b, a]));
  assert.equal(svg.attributes.width, String(480 + 840));
  assert.equal(svg.attributes.height, "500");
  assert.deepEqual(svg.children.map((c) => [c.name, c.attributes.x]), [["svg", "0"], [
    "svg",
    "480",
  ]]);
  const grid = parseXml(combineSvg([a, a, a], { columns: 2 }));
  assert.deepEqual(grid.children.map((c) => [c.attributes.x, c.attributes.y]), [
    ["0", "0"],
    ["840", "0"],
    ["0", "320"],
  ]);
  assert.throws(() => combineSvg(["<svg/>"]), /combineSvg: figure 0 has no <svg> root/);
});
