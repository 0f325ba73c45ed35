// What the GPU page (gpu_page.ts) runs and reports, shared with tests/browser/gpu_test.ts.

/** Training options both runs share. */
export const RUN = { samplesPerClass: 100, classes: 3, epochs: 10, batchSize: 32 } as const;

/** What one run measured. */
export interface RunFigures {
  loss: number[];
  accuracy: number[];
  /** Milliseconds from the call to each epoch's end. */
  epochMs: number[];
}

/** What the page reports. */
export type GpuReport =
  | { available: false; reason: string }
  | {
    available: true;
    /** The adapter's `info`: vendor and architecture (`google`, `swiftshader`). */
    adapter: { vendor: string; architecture: string; description: string };
    /** Per-epoch training loss and accuracy of each run, and the time at each epoch's end. */
    gpu: RunFigures;
    cpu: RunFigures;
    /** Largest |a − b| / max(max |b|, 1) over every param, GPU-trained against CPU-trained. */
    weightsError: number;
    /** The same for predictAsync on "webgpu" against predict, on the GPU-trained model. */
    predictError: number;
    /** The shape predictAsync returned. */
    predictShape: number[];
  }
  | { available: true; error: string };
