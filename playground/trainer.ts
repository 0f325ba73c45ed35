// One playground run: the data, the model and its optimizer, trained an epoch at a time
// through the library's public API (Sequential.trainBatch, predict, softmax), or on the GPU
// in one Sequential.fitAsync call.
import {
  Adam,
  argmaxRows,
  type Callback,
  Dense,
  Dropout,
  type Layer,
  LeakyReLU,
  type Optimizer,
  RandomState,
  ReLU,
  RMSprop,
  Sequential,
  SGD,
  Sigmoid,
  softmax,
  SoftmaxCrossEntropy,
  Tanh,
  Tensor,
} from "../mod.ts";
import { makeData, type PlaygroundData } from "./datasets.ts";
import type { ActivationName, Settings } from "./settings.ts";

/** What one epoch measured, on the training and the validation points. */
export interface EpochFigures {
  /** Mean data loss over the epoch's training batches (dropout active). */
  loss: number;
  /** Fraction of training points classified right during the epoch. */
  accuracy: number;
  /** Loss on the validation points at inference, NaN without any. */
  valLoss: number;
  /** Accuracy on the validation points, NaN without any. */
  valAccuracy: number;
}

/** How {@linkcode Trainer.trainOnGpu} runs. */
export interface GpuRun {
  /** Epochs to run at most. */
  epochs: number;
  /** Asked before each epoch: true stops the run there. */
  stop(): boolean;
  /** Told each epoch's figures when it ends, the model holding that epoch's weights. */
  onEpoch(figures: EpochFigures): void;
}

/** The decision regions on a square grid over the data: each cell's class and confidence. */
export interface RegionGrid {
  /** Cells per side; rows run from the top (largest y) down. */
  size: number;
  /** Predicted class of each cell, `[size·size]`. */
  classes: Uint8Array;
  /** The predicted class's probability, scaled to 0–255. */
  confidence: Uint8Array;
}

function activation(name: ActivationName): Layer {
  switch (name) {
    case "ReLU":
      return new ReLU();
    case "LeakyReLU":
      return new LeakyReLU();
    case "Tanh":
      return new Tanh();
    case "Sigmoid":
      return new Sigmoid();
  }
}

/**
 * The model `settings` describe for `classes` outputs: each hidden Dense (He init for the
 * ReLUs, Glorot for Tanh and Sigmoid) with its activation and dropout, then the output Dense.
 */
export function buildModel(settings: Settings, classes: number, random: RandomState): Sequential {
  const init = settings.activation.endsWith("ReLU") ? "he" : "glorot";
  const penalty = { weightRegularizerL2: settings.l2, biasRegularizerL2: settings.l2 };
  const layers: Layer[] = [];
  let inputs = 2;
  for (const units of settings.hidden) {
    layers.push(new Dense(inputs, units, { init, random, ...penalty }));
    layers.push(activation(settings.activation));
    if (settings.dropout > 0) layers.push(new Dropout(settings.dropout, { random }));
    inputs = units;
  }
  layers.push(new Dense(inputs, classes, { init: "glorot", random }));
  return new Sequential(layers);
}

/** A fresh optimizer as `settings` describe it. */
export function buildOptimizer(settings: Settings): Optimizer {
  const { learningRate } = settings;
  switch (settings.optimizer) {
    case "SGD":
      return new SGD({ learningRate, momentum: settings.momentum });
    case "RMSprop":
      return new RMSprop({ learningRate });
    case "Adam":
      return new Adam({ learningRate });
  }
}

/** Data, model and optimizer of one run, and the epochs it has had. */
export class Trainer {
  /** The settings the data and the model were made from. */
  readonly settings: Settings;
  /** The points. */
  readonly data: PlaygroundData;
  /** The network. */
  readonly model: Sequential;
  /** Updates the model; replaced by {@linkcode Trainer.setOptimizer}. */
  optimizer: Optimizer;
  /** Epochs run so far. */
  epoch = 0;
  readonly #loss = new SoftmaxCrossEntropy();
  readonly #valLoss = new SoftmaxCrossEntropy();
  readonly #trainX: Tensor; // [n, 2]
  readonly #valX: Tensor; // [m, 2]
  #grid?: Tensor; // [size·size, 2], the cell centres

  /**
   * Draws the data and the initial weights from one generator seeded with `settings.seed`,
   * or takes a loaded `model` (and optimizer) instead of new ones.
   */
  constructor(settings: Settings, loaded?: { model: Sequential; optimizer?: Optimizer }) {
    this.settings = settings;
    const random = new RandomState(settings.seed);
    this.data = makeData(settings, random);
    this.model = loaded?.model ?? buildModel(settings, this.data.classes, random);
    this.optimizer = loaded?.optimizer ?? buildOptimizer(settings);
    this.#trainX = new Tensor(this.data.trainX, [this.data.trainY.length, 2]);
    this.#valX = new Tensor(this.data.valX, [this.data.valY.length, 2]);
  }

  /** Switches to a fresh optimizer (new learning rate or kind); the weights stay. */
  setOptimizer(optimizer: Optimizer): void {
    this.optimizer = optimizer;
  }

  /** Runs one epoch over the training points and measures it. */
  runEpoch(): EpochFigures {
    const { trainY } = this.data;
    const count = trainY.length;
    const size = this.settings.batchSize > 0 ? Math.min(this.settings.batchSize, count) : count;
    // Each epoch's order depends only on the seed and the epoch, as fit shuffles.
    const order = size < count
      ? new RandomState((this.settings.seed + this.epoch) % 2 ** 32).permutation(count)
      : undefined;
    const step = { loss: this.#loss, optimizer: this.optimizer };
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < count; start += size) {
      const rows = order?.subarray(start, Math.min(start + size, count));
      const x = rows ? this.#rows(rows) : this.#trainX;
      const y = rows ? rows.map((row) => trainY[row]) : trainY;
      const { loss, outputs } = this.model.trainBatch(x, y, step);
      lossSum += loss * y.length;
      const predicted = argmaxRows(outputs);
      for (let i = 0; i < y.length; i++) if (predicted[i] === y[i]) correct++;
    }
    this.epoch++;
    return { loss: lossSum / count, accuracy: correct / count, ...this.validate() };
  }

  /**
   * Trains on the GPU in one `fitAsync(…, { device: "webgpu" })` call: the epochs
   * {@linkcode Trainer.runEpoch} runs (the same batches, order and loss), until `run.stop()`
   * says so before an epoch or `run.epochs` have run. One call compiles the GPU kernels once;
   * its callback has fitAsync read the weights back at each epoch's end, for the validation
   * figures and the decision regions.
   *
   * @throws {Error} fitAsync's: WebGPU unavailable, a layer without a GPU side, float64.
   */
  async trainOnGpu(run: GpuRun): Promise<void> {
    const count = this.data.trainY.length;
    const size = this.settings.batchSize > 0 ? Math.min(this.settings.batchSize, count) : count;
    const control: Callback = {
      onEpochBegin: (_epoch, state) => {
        if (run.stop()) state.stopTraining = true;
      },
      onEpochEnd: (epoch, logs) => {
        this.epoch = epoch + 1;
        run.onEpoch({ loss: logs.loss, accuracy: logs.accuracy, ...this.validate() });
      },
    };
    await this.model.fitAsync(this.#trainX, this.data.trainY, {
      loss: this.#loss,
      optimizer: this.optimizer,
      initialEpoch: this.epoch,
      epochs: this.epoch + run.epochs,
      batchSize: size,
      seed: this.settings.seed, // fit's order for epoch e: RandomState(seed + e), as runEpoch's
      callbacks: [control],
      device: "webgpu",
    });
  }

  #rows(rows: Int32Array): Tensor {
    const x = new Float32Array(rows.length * 2);
    rows.forEach((row, i) => x.set(this.data.trainX.subarray(row * 2, row * 2 + 2), i * 2));
    return new Tensor(x, [rows.length, 2]);
  }

  /** Loss and accuracy on the validation points at inference; NaN without any. */
  validate(): { valLoss: number; valAccuracy: number } {
    const { valY } = this.data;
    if (valY.length === 0) return { valLoss: NaN, valAccuracy: NaN };
    const outputs = this.model.predict(this.#valX);
    const valLoss = this.#valLoss.forward(outputs, valY);
    const predicted = argmaxRows(outputs);
    let correct = 0;
    for (let i = 0; i < valY.length; i++) if (predicted[i] === valY[i]) correct++;
    return { valLoss, valAccuracy: correct / valY.length };
  }

  /** The model's class and confidence at the centre of each cell of a `size`×`size` grid. */
  regions(size: number): RegionGrid {
    const extent = this.data.extent;
    if (this.#grid?.shape[0] !== size * size) {
      const cells = new Float32Array(size * size * 2);
      for (let row = 0; row < size; row++) {
        for (let col = 0; col < size; col++) {
          const i = row * size + col;
          cells[i * 2] = ((col + 0.5) / size * 2 - 1) * extent;
          cells[i * 2 + 1] = (1 - (row + 0.5) / size * 2) * extent;
        }
      }
      this.#grid = new Tensor(cells, [size * size, 2]);
    }
    const probabilities = softmax(this.model.predict(this.#grid));
    const classes = probabilities.shape[1];
    const best = argmaxRows(probabilities);
    const confidence = new Uint8Array(size * size);
    for (let i = 0; i < best.length; i++) {
      confidence[i] = Math.round(probabilities.data[i * classes + best[i]] * 255);
    }
    return { size, classes: Uint8Array.from(best), confidence };
  }
}
