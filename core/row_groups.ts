import type { FloatArray, Tensor } from "./tensor.ts";

/**
 * The rows of a tensor (its elements over the last dimension) that fall into groups of equal
 * rows, as an `Embedding`'s outputs do: each is the table row of its id. A layer that
 * multiplies its inputs by weights may then multiply one row of each group and copy the
 * results, and sum its gradients over each group first (see {@linkcode rowGroupsOf}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Embedding } from "@chainrule/nn";
 * import { rowGroupsOf } from "@chainrule/nn/plugin";
 *
 * const outputs = new Embedding(10, 4, { seed: 1 }).forward([[7, 3, 7, 7]]);
 * const groups = rowGroupsOf(outputs)!;
 * assert.equal(groups.count, 2); // ids 7 and 3
 * assert.deepEqual([...groups.group], [0, 1, 0, 0]);
 * assert.deepEqual([...groups.first.subarray(0, groups.count)], [0, 1]);
 * ```
 */
export interface RowGroups {
  /** Rows of the tensor. */
  readonly rows: number;
  /** Groups: at most `rows`. */
  readonly count: number;
  /** The group of each row, in [0, count), numbered by first appearance. `[rows]` */
  readonly group: Int32Array;
  /** The first row of each group, ascending. `[count]` (may be longer; read `count`) */
  readonly first: Int32Array;
}

// Tags on tensors, not fields: a Tensor stays a plain value, and a tag dies with its tensor.
const groupsOfRows = new WeakMap<Tensor, RowGroups>();
const groupsOfSums = new WeakMap<Tensor, RowGroups>();

/**
 * Tags `tensor` (of `groups.rows` rows) as having equal rows within each group, or clears
 * the tag (`undefined`). A layer that makes such outputs tags them in each forward.
 */
export function setRowGroups(tensor: Tensor, groups: RowGroups | undefined): void {
  if (groups) groupsOfRows.set(tensor, groups);
  else groupsOfRows.delete(tensor);
}

/**
 * The groups of equal rows `tensor` was tagged with by the layer that made it, if any. A tag
 * is a claim, not a proof: a layer relying on it checks it first ({@linkcode sameRows}),
 * since the tensor may have been changed in place after it was tagged.
 */
export function rowGroupsOf(tensor: Tensor): RowGroups | undefined {
  return groupsOfRows.get(tensor);
}

/**
 * Tags `sums` `[count, features]` as d(loss)/d(inputs) summed over each of `groups`: what a
 * layer returns from `backward` in place of its d(inputs) when its caller asks for it
 * (`BackwardOptions.groupSums`) and its inputs had row groups.
 */
export function markGroupSums(sums: Tensor, groups: RowGroups): void {
  groupsOfSums.set(sums, groups);
}

/**
 * The groups that `dvalues` holds sums over (see {@linkcode markGroupSums}), if any: the
 * layer that tagged its outputs with these groups then takes `dvalues` `[count, features]`
 * in place of a gradient shaped like its outputs.
 */
export function groupSumsOf(dvalues: Tensor): RowGroups | undefined {
  return groupsOfSums.get(dvalues);
}

/**
 * Whether every row of `data` (`[groups.rows, width]`) has the bits of its group's first
 * row: the check of a {@linkcode RowGroups} tag before relying on it. It reads each element
 * once, where the product it saves reads each one per output column.
 */
export function sameRows(data: FloatArray, width: number, groups: RowGroups): boolean {
  if (data.length !== groups.rows * width) return false;
  const words = data instanceof Float64Array ? 2 * width : width;
  const bits = new Int32Array(data.buffer, data.byteOffset, groups.rows * words);
  const { group, first } = groups;
  for (let r = 0; r < groups.rows; r++) {
    const from = first[group[r]] * words, at = r * words;
    if (from === at) continue;
    for (let j = 0; j < words; j++) if (bits[at + j] !== bits[from + j]) return false;
  }
  return true;
}

/**
 * `out[g, :] = Σ data[r, :]` over the rows r with `group[r] = g`, in row order, for `count`
 * groups.
 */
export function sumRowsByGroup(
  data: FloatArray, // [rows, width]
  out: FloatArray, // [count, width]
  width: number,
  group: Int32Array, // [rows]
  count: number,
): void {
  out.fill(0, 0, count * width);
  for (let r = 0; r < group.length; r++) {
    const from = r * width, to = group[r] * width;
    for (let j = 0; j < width; j++) out[to + j] += data[from + j];
  }
}

/**
 * `out[r, :] = rows[group[r]]` for every row r: each group's result copied to its rows, with
 * `rows` the groups' results as views made once (a step then allocates nothing).
 */
export function copyRowsByGroup(
  rows: readonly FloatArray[], // count × [width]
  out: FloatArray, // [group.length, width]
  group: Int32Array, // [group.length]
): void {
  const width = rows[0]?.length ?? 0;
  for (let r = 0; r < group.length; r++) out.set(rows[group[r]], r * width);
}
