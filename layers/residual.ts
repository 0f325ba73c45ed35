import { getBackend } from "../backends/selection.ts";
import { describeKind } from "../core/_describe.ts";
import { Chain } from "../core/chain.ts";
import type { BackwardOptions, ForwardOptions, Layer } from "../core/layer.ts";
import { Scratch } from "../core/_scratch.ts";
import { formatShape, Tensor } from "../core/tensor.ts";
import type { GpuBackwardOptions, GpuContext, GpuForwardOptions, GpuTensor } from "../core/gpu.ts";
import { gpuMap } from "../backends/webgpu_ops.ts";

/**
 * A skip connection around a stack of layers: `outputs = inputs + layers(inputs)`, the block
 * of every transformer and ResNet.
 *
 * Shapes: the inner layers must give back the shape they were given (`[batch, T, dim]` →
 * `[batch, T, dim]`). The inner layers are a nested model: they save and load like a nested
 * `Sequential`, and PyTorch names them like one (`<index>.<inner index>.weight`, as an
 * `nn.Sequential` subclass whose forward adds its input).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, Residual, Tensor } from "@chainrule/nn";
 *
 * const block = new Residual([new Dense(2, 2, { weights: [[1, 0], [0, 2]] })]);
 * const out = block.forward(Tensor.from([[1, 1]]));
 * assert.deepEqual(out.toArray(), [[2, 3]]); // [1, 1] + [1, 2]
 * ```
 */
export class Residual extends Chain {
  /** Registry name. */
  override readonly kind: string = "Residual";
  #outputs = new Scratch(); // [batch, …], reused by training forwards
  #dinputs = new Scratch(); // [batch, …], reused by training backwards
  #shape?: readonly number[]; // the last forward's inputs' shape
  #training = false;
  #gpuShape?: readonly number[]; // the last gpuForward's inputs' shape

  /**
   * Wraps `layers`, run in order between the skip connection's ends.
   *
   * @throws {TypeError} when `layers` is not an array of layers.
   */
  constructor(layers: Layer[]) {
    super(layers);
  }

  /** `inputs` [batch, …] → `inputs + layers(inputs)` [batch, …] */
  override forward(inputs: Tensor, options: ForwardOptions = {}): Tensor {
    // The inputs are added back below, and the first inner layer may keep them.
    const innerOptions = options.reuseInputs ? { ...options, reuseInputs: false } : options;
    const inner = super.forward(inputs, innerOptions); // [batch, …]
    if (!sameShape(inner, inputs)) {
      throw new TypeError(
        `Residual.forward: the inner layers turned ${inputs.dtype} ${
          formatShape(inputs.shape)
        } into ${inner.dtype} ${
          formatShape(inner.shape)
        }; a residual block must keep the shape and dtype to add its input back`,
      );
    }
    this.#shape = inputs.shape;
    this.#training = options.training === true;
    const outputs = this.#training
      ? this.#outputs.get(inputs.dtype, inputs.shape, getBackend())
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    const x = inputs.data, f = inner.data, out = outputs.data;
    for (let i = 0; i < out.length; i++) out[i] = x[i] + f[i];
    return outputs;
  }

  // dinputs = dvalues + d(layers)/d(inputs)ᵀ·dvalues
  /** `dvalues` [batch, …] → dinputs [batch, …]; the inner layers accumulate their gradients. */
  override backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const shape = this.#shape;
    if (!shape) throw new Error("Residual.backward: call forward first");
    if (!(dvalues instanceof Tensor) || !sameShape(dvalues, { shape, dtype: dvalues.dtype })) {
      throw new TypeError(
        `Residual.backward: dvalues has shape ${
          dvalues instanceof Tensor ? formatShape(dvalues.shape) : describeKind(dvalues)
        }, expected ${formatShape(shape)} like the last forward's outputs`,
      );
    }
    // The inner layers' d(inputs) is added to dvalues below, so it must be shaped like them,
    // and dvalues must be left for that.
    const innerOptions = options?.groupSums || options?.reuseDvalues
      ? { ...options, groupSums: false, reuseDvalues: false }
      : options;
    const inner = super.backward(dvalues, innerOptions); // [batch, …]
    if (options?.inputGradient === false) return inner;
    // Each element is read before it is written: dinputs may lie over dvalues.
    const dinputs = options?.reuseDvalues
      ? dvalues
      : this.#training
      ? this.#dinputs.get(dvalues.dtype, shape, getBackend())
      : Tensor.zeros(shape, { dtype: dvalues.dtype });
    const d = dvalues.data, di = inner.data, out = dinputs.data;
    for (let i = 0; i < out.length; i++) out[i] = d[i] + di[i];
    return dinputs;
  }

  /**
   * {@linkcode Residual.forward} on the device: `inputs` [batch, …] → `inputs +
   * layers(inputs)`, every inner layer's `gpuForward` in order.
   */
  override gpuForward(
    ctx: GpuContext,
    inputs: GpuTensor,
    options?: GpuForwardOptions,
  ): GpuTensor {
    const inner = super.gpuForward(ctx, inputs, options); // [batch, …]
    if (!sameGpuShape(inner, inputs)) {
      throw new TypeError(
        `Residual.gpuForward: the inner layers turned ${inputs.dtype} ${
          formatShape(inputs.shape)
        } into ${inner.dtype} ${
          formatShape(inner.shape)
        }; a residual block must keep the shape and dtype to add its input back`,
      );
    }
    const outputs = ctx.buffer(this, "outputs", inputs.shape); // [batch, …]
    addOnGpu(ctx, this, "forward", inputs, inner, outputs);
    this.#gpuShape = inputs.shape;
    return outputs;
  }

  // dinputs = dvalues + d(layers)/d(inputs)ᵀ·dvalues
  /**
   * {@linkcode Residual.backward} on the device: `dvalues` [batch, …] → dinputs [batch, …];
   * the inner layers accumulate their gradients.
   */
  override gpuBackward(
    ctx: GpuContext,
    dvalues: GpuTensor,
    options?: GpuBackwardOptions,
  ): GpuTensor {
    const shape = this.#gpuShape;
    if (!shape) throw new Error("Residual.gpuBackward: call gpuForward first");
    if (!sameGpuShape(dvalues, { shape, dtype: dvalues.dtype })) {
      throw new TypeError(
        `Residual.gpuBackward: dvalues has shape ${formatShape(dvalues.shape)}, expected ${
          formatShape(shape)
        } like the last gpuForward's outputs`,
      );
    }
    const inner = super.gpuBackward(ctx, dvalues, options); // [batch, …]
    if (options?.inputGradient === false) return inner;
    const dinputs = ctx.buffer(this, "dinputs", shape); // [batch, …]
    addOnGpu(ctx, this, "backward", dvalues, inner, dinputs);
    return dinputs;
  }
}

// out = a + b on the device; 2·a when b is a itself (no buffer is bound twice).
function addOnGpu(
  ctx: GpuContext,
  owner: object,
  key: string,
  a: GpuTensor,
  b: GpuTensor,
  out: GpuTensor,
): void {
  if (a.buffer === b.buffer) gpuMap(ctx, owner, key, "2.0 * x0", [a], out, a.size);
  else gpuMap(ctx, owner, key, "x0 + x1", [a, b], out, a.size);
}

function sameGpuShape(a: GpuTensor, b: Pick<GpuTensor, "shape" | "dtype">): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length &&
    a.shape.every((d, i) => d === b.shape[i]);
}

function sameShape(a: Tensor, b: Pick<Tensor, "shape" | "dtype">): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length &&
    a.shape.every((d, i) => d === b.shape[i]);
}
