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
  readOutputSide,
  winogradGradOutputsTask,
  winogradInputsTask,
  winogradOutputsTask,
  zeroWrapped,
} from "./_conv_tasks.ts";
import { floatView, maxPoolBackwardTask, maxPoolForwardTask } from "./_pool_tasks.ts";
import { adamTask } from "./_adam_task.ts";
import {
  addStepGradientRows,
  lstmBackwardTask,
  lstmForwardTask,
  readRecurrent,
  recurrentScratch,
} from "./_recurrent_tasks.ts";
import { gruBackwardRows, gruBackwardTask, gruForwardRows, gruForwardTask } from "./_gru_tasks.ts";
import {
  attentionBackwardTask,
  attentionForwardTask,
  attentionScratch,
  readAttention,
  softmaxRows,
  softmaxRowsBackward,
} from "./_attention_tasks.ts";
import { fastMathSource, sigmoid, tanh } from "../core/_fast_math.ts";
import { POOLING_FUNCTIONS } from "./_pooling.ts";
import { taskBuffer } from "./_task_buffer.ts";
import { batchNormTask } from "./_batch_norm_tasks.ts";
import {
  readWinograd,
  transformInputs,
  winogradConvScratch,
  winogradConvTask,
  winogradPlaneScratch,
  winogradWeightsScratch,
  winogradWeightsTask,
} from "./_winograd_tasks.ts";
import {
  JS_TASK_NAMES,
  type JsTask,
  type JsTaskName,
  type TaskContext,
  type TaskHost,
} from "./_task_context.ts";

/** The tasks, in the order of `JS_TASK_NAMES` (backends/_task_context.ts). */
export function jsTasks(): JsTask[] {
  return [
    convForwardTask,
    convBackwardTask,
    maxPoolForwardTask,
    maxPoolBackwardTask,
    adamTask,
    winogradInputsTask,
    winogradOutputsTask,
    lstmForwardTask,
    lstmBackwardTask,
    attentionForwardTask,
    attentionBackwardTask,
    gruForwardTask,
    gruBackwardTask,
    winogradConvTask,
    winogradWeightsTask,
    batchNormTask,
    winogradGradOutputsTask,
  ] as JsTask[];
}

/**
 * The tasks' source for a worker: every function they call, then `JS_TASKS`, the tasks in
 * the order of `JS_TASK_NAMES` (backends/_task_context.ts).
 */
export function jsTaskSource(): string {
  const functions = [
    taskBuffer,
    floatView,
    ...POOLING_FUNCTIONS,
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
    readOutputSide,
    recurrentScratch,
    readRecurrent,
    softmaxRows,
    softmaxRowsBackward,
    attentionScratch,
    readAttention,
    sigmoid,
    tanh,
    addStepGradientRows,
    gruForwardRows,
    gruBackwardRows,
    winogradPlaneScratch,
    winogradConvScratch,
    winogradWeightsScratch,
    readWinograd,
    transformInputs,
    ...jsTasks(),
  ];
  const names = jsTasks().map((task) => task.name).join(", ");
  const source = functions.map(String).join("\n");
  return `${fastMathSource()}${source}\nconst JS_TASKS = [${names}];\n`;
}

/** [first, count] pairs covering [0, total) in steps of `step`. */
export function spans(total: number, step: number): [number, number][] {
  const groups: [number, number][] = [];
  for (let first = 0; first < total; first += step) {
    groups.push([first, Math.min(step, total - first)]);
  }
  return groups;
}

/** A job of `task` over `groups` on the host's pool, or its tasks one by one on this thread. */
export function runTasks(
  host: TaskHost,
  task: JsTaskName,
  descriptor: number,
  groups: [number, number][],
): void {
  if (host.runJob(task, descriptor, groups)) return;
  const context: TaskContext = { memory: host.memory, exports: [host.exports, host.exports] };
  const fn = jsTasks()[JS_TASK_NAMES.indexOf(task)];
  for (const [first, count] of groups) fn(context, 0, descriptor, first, count);
}
