// The benches of one layer at a workload's shape: a training forward and the backward after
// it, and the forward alone, on each thread count, with the default backend.
import { getBackend, type Layer, setThreads, type Tensor } from "../mod.ts";

/** Registers `layer`'s forward + backward and forward-only benches in `group`, per thread count. */
export function benchLayer(
  layer: Layer,
  x: Tensor,
  dvalues: Tensor,
  group: string,
  threadCounts: Iterable<number>,
): void {
  for (const threads of threadCounts) {
    const on = `${threads} thread${threads === 1 ? "" : "s"}, ${getBackend().name}`;
    Deno.bench({
      name: `${layer.kind} forward + backward, ${on}`,
      group,
      baseline: threads === 1,
      fn(b) {
        setThreads(threads);
        b.start();
        layer.forward(x, { training: true });
        layer.backward(dvalues);
        b.end();
      },
    });
    Deno.bench({
      name: `${layer.kind} forward (training), ${on}`,
      group,
      fn(b) {
        setThreads(threads);
        b.start();
        layer.forward(x, { training: true });
        b.end();
      },
    });
  }
}
