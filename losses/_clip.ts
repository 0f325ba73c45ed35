// The book clips probabilities to [1e-7, 1 − 1e-7] before taking a log, so that a
// probability of 0 or 1 gives a large finite loss instead of infinity.
import { f32Bits } from "../core/gpu.ts";

/** The lower clipping bound; the upper one is `1 − CLIP`. */
export const CLIP = 1e-7;

/** `p` clipped to [CLIP, 1 − CLIP]. */
export function clip(p: number): number {
  return p < CLIP ? CLIP : p > 1 - CLIP ? 1 - CLIP : p;
}

/** Whether `p` lies inside the clipping range, where the clipped value's derivative is 1. */
export function unclipped(p: number): boolean {
  return p >= CLIP && p <= 1 - CLIP;
}

// The float32 bounds as WGSL, given by their bits so that no shader compiler rounds them:
// the nearest float32 to 1e-7 lies above it, the nearest to 1 − 1e-7 below it, and no
// float32 lies in between, so they decide every float32 `p` as the float64 bounds do.
const LOW_WGSL = `bitcast<f32>(${f32Bits(CLIP)}u)`;
const HIGH_WGSL = `bitcast<f32>(${f32Bits(1 - CLIP)}u)`;

/** WGSL of {@linkcode unclipped} for the float32 expression `p` (evaluated more than once). */
export function unclippedWgsl(p: string): string {
  return `(${p} >= ${LOW_WGSL} && ${p} <= ${HIGH_WGSL})`;
}

/**
 * WGSL of `log(clip(p))` for the float32 expression `p`. The logs of the bounds are taken
 * in float64 here, as the CPU takes them.
 */
export function logClipWgsl(p: string): string {
  return `select(select(log(${p}), ${Math.log(1 - CLIP)}, ${p} > ${HIGH_WGSL}), ${
    Math.log(CLIP)
  }, ${p} < ${LOW_WGSL})`;
}

/**
 * WGSL of `log(1 − clip(p))` for the float32 expression `p`: at the upper bound it is
 * log(1e-7) as on the CPU, where `1 − (1 − CLIP)` in float32 would give log(1.19e-7).
 */
export function logClipComplementWgsl(p: string): string {
  return `select(select(log(1.0 - ${p}), ${Math.log(CLIP)}, ${p} > ${HIGH_WGSL}), ${
    Math.log(1 - CLIP)
  }, ${p} < ${LOW_WGSL})`;
}

/** WGSL functions `unclipped(q)` and `logClip(q)` for the losses' kernels. */
export const CLIP_WGSL: string = /* wgsl */ `
fn unclipped(q: f32) -> bool { return ${unclippedWgsl("q")}; }
fn logClip(q: f32) -> f32 { return ${logClipWgsl("q")}; }`;
