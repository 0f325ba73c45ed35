// The book's spiral setup: np.random.seed(0), spiral_data(100, 3), then two 0.01·randn layers.
import { Dense, type DType, RandomState, ReLU, Sequential, spiralData } from "../mod.ts";

export function bookSpiral(
  dtype: DType = "float32",
): ReturnType<typeof spiralData> & { model: Sequential } {
  const random = new RandomState(0);
  const data = spiralData(100, 3, { random, dtype });
  const model = new Sequential([
    new Dense(2, 64, { init: "nnfs", random, dtype }),
    new ReLU(),
    new Dense(64, 3, { init: "nnfs", random, dtype }),
  ]);
  return { ...data, model };
}
