// Weir's JavaScript SDK: Prefect's flows and tasks, built into a component with
// `weir build flows.js -o flows.wasm`.
//
//   import { flow, task } from "weir";
//   const greet = task({ name: "greet" }, (name) => `Hello, ${name}!`);
//   export const hello = flow({ name: "hello", logPrints: true }, (name = "world") => greet(name));
//
// Inside a component, calling a task in a flow runs it through the host (its own
// sandbox, retries, timeout, cache); outside (node, a test) flows and tasks run as plain
// functions.

export { flow, flowName } from "./flows.js";
export {
  task, unmapped, allowFailure, taskInputHash, TaskFuture, TaskFutureList,
} from "./tasks.js";
export { plugin } from "./plugins.js";
export { INPUTS, NONE, CachePolicy, exponentialBackoff } from "./options.js";
export {
  concurrency, rateLimit, ConcurrencySlotAcquisitionError, AcquireConcurrencySlotTimeoutError,
} from "./concurrency.js";
export { ThreadPoolTaskRunner, SequentialTaskRunner } from "./task_runners.js";
export {
  transaction, getTransaction, Transaction, IsolationLevel, CommitMode,
} from "./transactions.js";
export {
  State, StateType, FailedRun, Completed, Failed, Cancelled, Crashed, Pending, Running, Scheduled,
} from "./states.js";
export {
  getRunLogger, createMarkdownArtifact, createTableArtifact, createLinkArtifact,
  createProgressArtifact, updateProgressArtifact, Variable, Secret, runtime, flowRun, taskRun,
  pauseFlowRun, suspendFlowRun, runDeployment,
} from "./runtime.js";
