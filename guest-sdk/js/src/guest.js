// The exported `weir:flow/guest` interface: the manifest, and flows, tasks, retry
// conditions and hooks run on the host's behalf. A guest-visible failure is thrown as
// `{ payload: failure }`, which the component turns into the WIT `result`'s error.

import { iface, inFrame, isThenable } from "./host.js";
import { finalState, isStateLike } from "./flows.js";
import { allFlows, allTasks } from "./registry.js";
import { FailedRun, State, StateType } from "./states.js";
import { getRunLogger } from "./runtime.js";
import { hookName } from "./options.js";
import { messageOf, stateType, toJson } from "./tasks.js";
import { Transaction } from "./transactions.js";

export const SDK = "weir-js/0.1.0";

function failure(error, kind) {
  let message = messageOf(error);
  let failureKind = kind;
  if (error instanceof FailedRun && error.state?.failure) {
    failureKind = failureKind ?? error.state.failure.kind;
  }
  if (error instanceof RangeError && /call stack|too much recursion/i.test(error.message)) {
    message = `${message} (the recursion went too deep)`;
  }
  const details = {
    exception: { type: error?.name ?? typeof error, message: error?.message ?? String(error) },
    traceback: typeof error?.stack === "string" ? error.stack.slice(0, 16000) : null,
  };
  const retryable = ["invalid-parameters", "unknown", "invalid-result"].includes(failureKind) ? false : undefined;
  return { kind: failureKind ?? "error", message, retryable, details: JSON.stringify(details) };
}

function fail(error, kind) {
  return { payload: failure(error, kind) };
}

function unknown(what, name, known) {
  const listed = [...known.keys()].sort().join(", ") || "none";
  return {
    payload: {
      kind: "unknown",
      message: `this component has no ${what} named \`${name}\` (it has: ${listed})`,
      retryable: false,
      details: undefined,
    },
  };
}

function parse(text) {
  let value;
  try {
    value = text ? JSON.parse(text) : null;
  } catch (error) {
    throw fail(new TypeError(`parameters are not valid JSON: ${error.message}`), "invalid-parameters");
  }
  if (value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw fail(new TypeError("parameters must be a JSON object keyed by parameter name"), "invalid-parameters");
  }
  return value;
}

function witState(state) {
  return { type: state.type.toLowerCase(), name: state.name, message: state.message ?? undefined };
}

function definition(item) {
  return {
    name: item.name,
    // Flows are named by their names, which the registry keeps unique.
    function: undefined,
    description: item.description ?? undefined,
    version: item.version ?? undefined,
    parametersSchema: JSON.stringify(item.schema),
    options: item.options.toWit(),
  };
}

function runHooks(hooks, item, run, state) {
  for (const hook of hooks) {
    try {
      const value = hook(item, run, state);
      if (isThenable(value)) value.catch((error) => hookFailed(hook, error));
    } catch (error) {
      hookFailed(hook, error);
    }
  }
}

function hookFailed(hook, error) {
  getRunLogger().error(`hook ${hookName(hook)} failed: ${messageOf(error)}`);
}

// Names the run with its run-name function, as Prefect does when a run starts (the
// function reads `flowRun` / `taskRun`).
function nameRun(item) {
  const nameFn = item.options.runName;
  if (typeof nameFn !== "function") return;
  let name;
  try {
    name = String(nameFn());
  } catch (error) {
    getRunLogger().warning(`the run name function failed: ${messageOf(error)}`);
    return;
  }
  try {
    iface("context").setRunName(name);
  } catch (error) {
    getRunLogger().warning(`the run could not be named ${JSON.stringify(name)}: ${messageOf(error)}`);
  }
}

function runningHooks(item, params) {
  nameRun(item);
  if (!item.options.onRunning.length) return;
  runHooks(item.options.onRunning, item, { name: item.name, parameters: params }, new State(StateType.RUNNING));
}

// Calls `body`; its value (awaited when a promise) goes through `done`, its error through
// `failed`, both of which throw or return what the export returns.
function settle(body, done) {
  let value;
  try {
    value = body();
  } catch (error) {
    throw fail(error);
  }
  if (isThenable(value)) {
    return Promise.resolve(value).then(
      (v) => {
        try {
          return done(v);
        } catch (error) {
          throw error?.payload ? error : fail(error);
        }
      },
      (error) => {
        throw fail(error);
      },
    );
  }
  return done(value);
}

/** What the component exports (the module `weir build` generates exports it as `guest`). */
export const guest = {
  describe() {
    const sorted = (table) => [...table.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return {
      sdk: SDK,
      flows: sorted(allFlows()).map(definition),
      tasks: sorted(allTasks()).map(definition),
    };
  },

  runFlow(name, parameters) {
    const flow = allFlows().get(name);
    if (!flow) throw unknown("flow", name, allFlows());
    const params = parse(parameters);
    return inFrame("flow", name, params, () => settle(
      () => {
        runningHooks(flow, params);
        return flow.run(params);
      },
      (returned) => {
        const state = finalState(returned);
        const value = toJson(state.data instanceof Error ? null : state.data ?? null, `the result of ${name}`);
        return { value, state: isStateLike(returned) ? witState(state) : undefined };
      },
    ));
  },

  runTask(name, args) {
    const task = allTasks().get(name);
    if (!task) throw unknown("task", name, allTasks());
    const params = parse(args);
    return inFrame("task", name, params, () => settle(
      () => {
        runningHooks(task, params);
        return task.run(params);
      },
      (returned) => {
        const value = returned instanceof State ? returned.result() : returned;
        try {
          return toJson(value, `the result of ${name}`);
        } catch (error) {
          throw fail(error, "invalid-result");
        }
      },
    ));
  },

  retryCondition(taskName, f, attempt) {
    const task = allTasks().get(taskName);
    const condition = task?.options.retryConditionFn;
    if (!condition) return true;
    let details = f.details ?? null;
    if (typeof details === "string") {
      try {
        details = JSON.parse(details);
      } catch {
        // Kept as text.
      }
    }
    const state = new State(StateType.FAILED, {
      message: f.message,
      failure: { kind: f.kind, message: f.message, retryable: f.retryable ?? null, details },
    });
    try {
      return Boolean(condition(task, { name: taskName, runCount: attempt }, state));
    } catch (error) {
      getRunLogger().error(`retryConditionFn of ${taskName} failed: ${messageOf(error)}`);
      return false;
    }
  },

  onTransaction(event) {
    const item = allTasks().get(event.task);
    if (!item) throw { payload: `no task \`${event.task}\` to run transaction hooks for` };
    const hooks = item.options.transactionHooks();
    let values = {};
    try {
      values = JSON.parse(event.values);
    } catch {
      // Left empty.
    }
    let parameters = {};
    try {
      parameters = JSON.parse(event.parameters);
    } catch {
      // Left empty.
    }
    const txn = new Transaction({
      key: event.key ?? null,
      values: values && typeof values === "object" && !Array.isArray(values) ? values : {},
      state: event.commit ? "committed" : "rolled-back",
    });
    inFrame("task", event.task, parameters, () => {
      for (const hookId of event.hooks) {
        const hook = hooks.get(hookId);
        if (!hook) throw { payload: `\`${event.task}\` has no hook named \`${hookId}\`` };
        try {
          hook(txn);
        } catch (error) {
          throw { payload: `hook \`${hookId}\`: ${messageOf(error)}` };
        }
      }
    });
  },

  onState(event) {
    const isFlow = event.kind === "flow";
    const item = (isFlow ? allFlows() : allTasks()).get(event.name);
    if (!item) {
      getRunLogger().warning(`no flow or task \`${event.name}\` to run state hooks for`);
      return;
    }
    const hooks = item.options.hooks();
    const state = new State(stateType(event.state.type), {
      name: event.state.name,
      message: event.state.message ?? null,
    });
    let parameters = {};
    try {
      parameters = JSON.parse(event.parameters);
    } catch {
      // Left empty.
    }
    const run = { id: event.runId, name: event.runName, parameters, state };
    inFrame(isFlow ? "flow" : "task", event.name, parameters, () => {
      for (const hookId of event.hooks) {
        const hook = hooks.get(hookId);
        if (!hook) {
          getRunLogger().warning(`\`${event.name}\` has no hook named \`${hookId}\``);
          continue;
        }
        runHooks([hook], item, run, state);
      }
    });
  },
};
