// What the normalization layers and the per-channel sums share on the device: a workgroup's
// tree reduction through workgroup memory, and the walk over one channel of an
// [N, channels, positions] batch. WGSL snippets, private to the layers.

/**
 * WGSL declaring `partial` (workgroup memory of `size` values of `type`) and
 * `fn reduce(lid: u32, value: type) -> type`: the sum of every invocation's value over a
 * workgroup of `size` invocations (a power of two), returned to all of them, with `partial`
 * free for reuse afterwards. Call it in uniform control flow.
 */
export function workgroupReduce(size: number, type = "f32"): string {
  return /* wgsl */ `
var<workgroup> partial: array<${type}, ${size}>;
// Σ over the workgroup of every invocation's value, for all of them.
fn reduce(lid: u32, value: ${type}) -> ${type} {
  partial[lid] = value;
  workgroupBarrier();
  for (var width = ${size / 2}u; width > 0u; width >>= 1u) {
    if (lid < width) { partial[lid] += partial[lid + width]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier(); // everyone has read it before partial is reused
  return total;
}`;
}

/**
 * WGSL `fn channelAt(f: u32, m: u32, channels: u32, positions: u32) -> u32`: the flat index
 * of the `m`-th value (sample n = m / positions, then position) of channel `f` in a
 * row-major `[N, channels, positions]` batch.
 */
export const CHANNEL_AT: string = /* wgsl */ `
fn channelAt(f: u32, m: u32, channels: u32, positions: u32) -> u32 {
  let n = m / positions;
  return (n * channels + f) * positions + m - n * positions;
}`;
