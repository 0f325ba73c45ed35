// What the two Fashion-MNIST examples share: where the data is, how it is read, what the
// classes are called, and the check that an output file may be written.
import { type IdxDataset, idxDataset, type IdxDatasetOptions, readIdx } from "../mod.ts";

/** Where Debian's `dataset-fashion-mnist` puts the four IDX files. */
export const DEFAULT_DATA = "/usr/share/datasets/fashion-mnist";

/** The files of the training and the test set. */
export const FILES = {
  trainImages: "train-images-idx3-ubyte.gz",
  trainLabels: "train-labels-idx1-ubyte.gz",
  testImages: "t10k-images-idx3-ubyte.gz",
  testLabels: "t10k-labels-idx1-ubyte.gz",
};

/** The names of the ten classes, by label. */
export const CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

// Reads `file` from `dir`, or the same name without .gz (an unpacked copy).
async function readFile(dir: string, file: string) {
  const path = `${dir.replace(/\/$/, "")}/${file}`;
  try {
    return await readIdx(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    return await readIdx(path.replace(/\.gz$/, "")).catch(() => Promise.reject(error));
  }
}

/**
 * The training and test sets from `dir`, each pixel (0–255) passed through `scale`; exits
 * saying how to install the data when a file is missing.
 */
export async function loadFashion(
  program: string,
  dir: string,
  scale: (pixel: number) => number,
  options: IdxDatasetOptions = {},
): Promise<{ train: IdxDataset; test: IdxDataset }> {
  const load = async (images: string, labels: string) => {
    const data = idxDataset(await readFile(dir, images), await readFile(dir, labels), options);
    const x = data.x.data;
    for (let i = 0; i < x.length; i++) x[i] = scale(x[i]);
    return data;
  };
  try {
    return {
      train: await load(FILES.trainImages, FILES.trainLabels),
      test: await load(FILES.testImages, FILES.testLabels),
    };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    console.error(
      `${program}: ${(error as Error).message}\n\nThe example needs the four Fashion-MNIST ` +
        `IDX files (${Object.values(FILES).join(", ")}) in ${dir}.\n` +
        `Install them with:  sudo apt-get install dataset-fashion-mnist\n` +
        `(they go to ${DEFAULT_DATA}), or pass --data DIR for a folder that has them.`,
    );
    Deno.exit(1);
  }
}

/**
 * Asks for write access to each `--flag FILE` given, before training, so that a long run does
 * not fail at its end; exits with a hint otherwise.
 */
export function requireWrite(program: string, files: [flag: string, path?: string][]): void {
  for (const [flag, path] of files) {
    if (path && Deno.permissions.requestSync({ name: "write", path }).state !== "granted") {
      console.error(
        `${program}: --${flag} needs write access: deno run --allow-read --allow-write examples/${program}.ts ...`,
      );
      Deno.exit(2);
    }
  }
}
