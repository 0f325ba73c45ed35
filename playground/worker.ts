// The training worker's entry: a PlaygroundSession wired to the worker's message port, told
// whether WebGPU is available here.
// Bundled by `deno task playground` into worker.js.
import { webgpuStatus } from "../mod.ts";
import type { Command } from "./protocol.ts";
import { PlaygroundSession } from "./session.ts";

// The few members of a dedicated worker's global scope that this file uses (the project
// type-checks against Deno's window types, not the webworker library).
interface WorkerScope {
  postMessage(message: unknown, transfer: Transferable[]): void;
  onmessage: ((event: MessageEvent<Command>) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;

// A MessageChannel yields to the queue without setTimeout's 4 ms clamp on nested timers.
const channel = new MessageChannel();
const tasks: (() => void)[] = [];
channel.port1.onmessage = () => tasks.shift()?.();

const session = new PlaygroundSession(
  (report, transfer) => scope.postMessage(report, transfer),
  (task) => {
    tasks.push(task);
    channel.port2.postMessage(null);
  },
  webgpuStatus, // WebGPU where it trains: in the worker
);
scope.onmessage = (event) => session.handle(event.data);
