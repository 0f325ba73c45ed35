// The tasks that the worker pool runs in JavaScript (task module JS_MODULE), on the
// calling thread and in every worker. The workers get them as source text: each task's
// function, and every function it calls, copied with `String(fn)` into the worker's source
// (backends/_worker_source.ts). So the task files (backends/_conv_tasks.ts) and what they
// call (backends/_lowering.ts) hold only self-contained function declarations: they call
// each other and read their arguments, never an import or a module-level constant.
import { col2im, im2col, rangeEnd, rangeFirst, shiftedCopy } from "./_lowering.ts";
import {
  convBackwardTask,
  convForwardTask,
  convScratch,
  foldSample,
  forEachShift,
  lowerSample,
  readConv,
  zeroWrapped,
} from "./_conv_tasks.ts";
import type { JsTask } from "./_task_context.ts";

/** The tasks, in the order of `JS_TASK_NAMES` (backends/_task_context.ts). */
export function jsTasks(): JsTask[] {
  return [convForwardTask, convBackwardTask] as JsTask[];
}

/**
 * The tasks' source for a worker: every function they call, then `JS_TASKS`, the tasks in
 * the order of `JS_TASK_NAMES` (backends/_task_context.ts).
 */
export function jsTaskSource(): string {
  const functions = [
    rangeFirst,
    rangeEnd,
    shiftedCopy,
    im2col,
    col2im,
    convScratch,
    readConv,
    forEachShift,
    zeroWrapped,
    lowerSample,
    foldSample,
    ...jsTasks(),
  ];
  const names = jsTasks().map((task) => task.name).join(", ");
  return `${functions.map(String).join("\n")}\nconst JS_TASKS = [${names}];\n`;
}
