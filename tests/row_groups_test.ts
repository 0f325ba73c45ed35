// Inputs whose rows repeat (an Embedding's outputs): the tag, its check, the grouped products
// of the recurrent layers against their ungrouped path, and the group sums handed back.
import assert from "node:assert/strict";
import {
  checkGradients,
  Dense,
  Embedding,
  GRU,
  type Layer,
  LSTM,
  type Param,
  Residual,
  Sequential,
  Tensor,
} from "../mod.ts";
import {
  copyRowsByGroup,
  groupSumsOf,
  rowGroupsOf,
  sameRows,
  sumRowsByGroup,
  wasmBackend,
} from "../plugin.ts";
import { assertSameBits, onThreadCounts, resident, threads } from "./_threads.ts";

// A third-party layer that passes its inputs on as a copy: the tag stays behind.
class Untag implements Layer {
  readonly kind = "Untag";
  forward(inputs: Tensor): Tensor {
    return new Tensor(inputs.data.slice(), inputs.shape);
  }
  backward(dvalues: Tensor): Tensor {
    return dvalues;
  }
  params(): Param[] {
    return [];
  }
  config(): Record<string, never> {
    return {};
  }
  toString(): string {
    return "Untag()";
  }
}

type Kind = "lstm" | "gru";
const V = 5, E = 6, H = 7;

function recurrent(kind: Kind, dtype: "float32" | "float64", input = E): LSTM | GRU {
  const options = { seed: 3, dtype };
  return kind === "lstm" ? new LSTM(input, H, options) : new GRU(input, H, options);
}

// [batch, T] ids in [0, V), every id used, deterministic.
function ids(batch: number, steps: number): Tensor {
  return new Tensor(
    Float64Array.from({ length: batch * steps }, (_, i) => (i * 7 + (i >> 3)) % V),
    [batch, steps],
  );
}

// A model's outputs, dvalues of its own and the gradients after one training pass.
function pass(model: Sequential, x: Tensor): { outputs: Float64Array; grads: Float64Array[] } {
  const outputs = model.forward(x, { training: true });
  const d = new Tensor(outputs.data.map((_, i) => Math.sin(i) / 4), outputs.shape);
  model.backward(d, { inputGradient: false });
  return {
    outputs: Float64Array.from(outputs.data),
    grads: model.params().map((p: Param) => Float64Array.from(p.grad.data)),
  };
}

Deno.test("Embedding tags its outputs with its ids' groups, by first appearance", () => {
  const embed = new Embedding(10, 3, { seed: 1 });
  for (const training of [false, true]) {
    const outputs = embed.forward([[7, 3], [7, 7], [0, 3]], { training });
    const groups = rowGroupsOf(outputs)!;
    assert.equal(groups.rows, 6);
    assert.equal(groups.count, 3);
    assert.deepEqual([...groups.group], [0, 1, 0, 0, 2, 1]);
    assert.deepEqual([...groups.first.subarray(0, 3)], [0, 1, 4]);
    assert.ok(sameRows(outputs.data, 3, groups));
    outputs.data[3 * 3 + 1] += 1; // row 3 (id 7) changed in place
    assert.equal(sameRows(outputs.data, 3, groups), false);
  }
  assert.equal(rowGroupsOf(new Dense(3, 2).forward(Tensor.from([[1, 2, 3]]))), undefined);
});

Deno.test("the group sums and copies, and the wasm backend's sums on resident rows, bit for bit", () => {
  const group = Int32Array.from([2, 0, 2, 1, 0]);
  const rows = Float32Array.from({ length: 5 * 3 }, (_, i) => Math.fround(Math.sqrt(i + 0.3)));
  const sums = new Float32Array(3 * 3);
  sumRowsByGroup(rows, sums, 3, group, 3);
  const want = [0, 1, 2].map((j) => Math.fround(rows[3 + j] + rows[12 + j]));
  assert.deepEqual([...sums.subarray(0, 3)], want);
  const wide = 256, many = 300, groupOf = Int32Array.from({ length: many }, (_, r) => (r * 5) % 7);
  const data = Float32Array.from({ length: many * wide }, (_, i) => Math.sin(i) * 1e3);
  const js = new Float32Array(7 * wide), wasm = new Float32Array(7 * wide);
  sumRowsByGroup(data, js, wide, groupOf, 7);
  threads(); // the shared memory that holds resident buffers
  wasmBackend.sumRowsByGroup!(resident([many, wide], data).data, wasm, wide, groupOf, 7);
  assertSameBits(wasm, js, "sumRowsByGroup on resident rows");
  const wide64 = wasmBackend.allocate!("float64", many * wide)!;
  assert.ok(wide64 instanceof Float64Array, "no resident float64 buffer");
  wide64.forEach((_, i) => wide64[i] = Math.sin(i) * 1e3);
  const js64 = new Float64Array(7 * wide), wasm64 = new Float64Array(7 * wide);
  sumRowsByGroup(wide64, js64, wide, groupOf, 7);
  wasmBackend.sumRowsByGroup!(wide64, wasm64, wide, groupOf, 7);
  assertSameBits(wasm64, js64, "sumRowsByGroup on resident float64 rows");
  const copies = new Float32Array(5 * 3);
  copyRowsByGroup([0, 1, 2].map((g) => sums.subarray(3 * g, 3 * g + 3)), copies, group);
  assert.deepEqual([...copies.subarray(0, 3)], [...sums.subarray(6, 9)]);
});

for (const kind of ["lstm", "gru"] as const) {
  Deno.test(`${kind}: after an Embedding, the grouped path's outputs have the ungrouped bits`, () => {
    for (const dtype of ["float32", "float64"] as const) {
      const x = ids(6, 9);
      const grouped = new Sequential([
        new Embedding(V, E, { seed: 1, dtype }),
        recurrent(kind, dtype),
      ]);
      const plain = new Sequential([
        new Embedding(V, E, { seed: 1, dtype }),
        new Untag(),
        recurrent(kind, dtype),
      ]);
      const a = pass(grouped, x), b = pass(plain, x);
      assertSameBits(a.outputs, b.outputs, `${kind} ${dtype} outputs`);
      // The gradients are summed in another order: equal to rounding.
      const tolerance = dtype === "float64" ? 1e-12 : 1e-5;
      a.grads.forEach((grad, p) => {
        grad.forEach((v, i) => {
          const w = b.grads[p][i];
          assert.ok(
            Math.abs(v - w) <= tolerance * (1 + Math.abs(w)),
            `${kind} ${dtype} param ${p}`,
          );
        });
      });
    }
  });

  Deno.test(`${kind}: hands back d(inputs) summed by group only when asked, tagged`, () => {
    const embed = new Embedding(V, E, { seed: 1, dtype: "float64" });
    const layer = recurrent(kind, "float64");
    const embedded = embed.forward(ids(4, 5), { training: true });
    const outputs = layer.forward(embedded, { training: true });
    const d = new Tensor(outputs.data.map((_, i) => Math.cos(i)), outputs.shape);
    const full = Float64Array.from(layer.backward(d).data); // [4, 5, E]
    const sums = layer.backward(d, { groupSums: true });
    assert.deepEqual(sums.shape, [V, E]);
    const groups = rowGroupsOf(embedded)!;
    assert.equal(groupSumsOf(sums), groups);
    const want = new Float64Array(V * E);
    sumRowsByGroup(full, want, E, groups.group, groups.count);
    sums.data.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-12 * (1 + Math.abs(v))));
    // Without a tag (or with rows changed in place) there is nothing to group.
    embedded.data[0] += 0.5;
    layer.forward(embedded, { training: true });
    assert.deepEqual(layer.backward(d, { groupSums: true }).shape, [4, 5, E]);
  });

  Deno.test(`${kind}: gradient check through Embedding → ${kind} → Dense and in a Residual`, () => {
    const dtype = "float64";
    const x = ids(3, 6);
    for (
      const model of [
        new Sequential([
          new Embedding(V, E, { seed: 1, dtype }),
          recurrent(kind, dtype),
          new Dense(H, 2, { seed: 2, dtype }),
        ]),
        new Sequential([
          new Embedding(V, H, { seed: 1, dtype }),
          new Residual([recurrent(kind, dtype, H)]),
        ]),
      ]
    ) {
      const report = checkGradients(model, x, { checkInputs: false });
      assert.ok(report.maxRelativeError < 1e-6, report.toString());
    }
  });

  Deno.test(`${kind}: the grouped path gives the same bits on 1, 2 and 3 threads`, async () => {
    const x = ids(16, 24);
    const make = () =>
      new Sequential([new Embedding(V, 16, { seed: 1 }), recurrent(kind, "float32", 16)]);
    await onThreadCounts(() => pass(make(), x), (reference, threads) => {
      const got = pass(make(), x);
      assertSameBits(got.outputs, reference.outputs, `${kind} outputs on ${threads} threads`);
      got.grads.forEach((g, p) => assertSameBits(g, reference.grads[p], `${kind} param ${p}`));
    });
  });
}
