// The book clips probabilities to [1e-7, 1 − 1e-7] before taking a log, so that a
// probability of 0 or 1 gives a large finite loss instead of infinity.

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
