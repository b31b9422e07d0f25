// Flows (Prefect's `@flow`): a flow run is an instance of the component; calling a flow
// from a flow is a subflow run.

import { iface, onHost, currentFrame } from "./host.js";
import { Options } from "./options.js";
import { bind, parameterNames, parametersSchema, positional } from "./params.js";
import { State, StateType } from "./states.js";
import { TaskFuture, localFailure, stateOf, toJson } from "./tasks.js";
import { register } from "./registry.js";

/** Prefect's flow name for a function: `myFlow` and `my_flow` are `my-flow`. */
export function flowName(fnName) {
  return fnName
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .replace(/_/g, "-")
    .toLowerCase();
}

/** A flow: a run of it is an instance of the component. */
export class Flow {
  constructor(options, fn) {
    if (typeof fn !== "function") throw new TypeError("flow(options, fn): fn must be a function");
    const name = options.name ?? (fn.name ? flowName(fn.name) : undefined);
    if (typeof name !== "string" || name === "") {
      throw new TypeError("flow(): an anonymous function needs a name: flow({ name: \"etl\" }, ...)");
    }
    const what = `flow ${name}`;
    this.fn = fn;
    this.name = name;
    this.description = options.description;
    this.version = options.version;
    this.options = new Options("flow", options, what);
    this.validateParameters = options.validateParameters ?? true;
    this.params = parameterNames(fn);
    this.schema = parametersSchema(this.params, this.validateParameters ? options.parameters : undefined, what);
  }

  /** Inside a flow: a subflow run (its value, or throws); elsewhere the plain function. */
  call(args, { returnState = false } = {}) {
    if (!onHost() || currentFrame().kind !== "flow") {
      if (!returnState) return this.fn(...args);
      try {
        return new State(StateType.COMPLETED, { data: this.fn(...args) });
      } catch (error) {
        return localFailure(error);
      }
    }
    let state;
    try {
      const params = bind(this.params, args, this.name);
      for (const [k, v] of Object.entries(params)) {
        if (v instanceof TaskFuture || v instanceof State) params[k] = v instanceof TaskFuture ? v.result() : v.result();
      }
      const json = toJson(params, `the parameters of ${this.name}`);
      state = stateOf(iface("flows").call(this.name, json));
    } catch (error) {
      state = localFailure(error, "invalid-parameters");
    }
    return returnState ? state : state.result();
  }

  /** Runs the flow's body (the host's `run-flow`). */
  run(values) {
    return this.fn(...positional(this.params, values));
  }
}

/** Whether a flow's return value chooses its state: a state, a future, or an array of them. */
export function isStateLike(value) {
  if (value instanceof State || value instanceof TaskFuture) return true;
  return Array.isArray(value) && value.length > 0
    && value.every((v) => v instanceof State || v instanceof TaskFuture);
}

/**
 * The final state a flow's return value gives it (Prefect's rules): a state is the final
 * state; a future gives its run's state; an array of states or futures fails when any of
 * them did not complete; any other value completes the flow.
 */
export function finalState(returned) {
  if (returned instanceof TaskFuture) returned = returned.state;
  if (returned instanceof State) return returned;
  if (isStateLike(returned)) {
    const states = returned.map((v) => (v instanceof TaskFuture ? v.state : v));
    const bad = states.filter((s) => !s.isCompleted());
    const values = states.map((s) => ({
      task_run_id: s.runId,
      state: { type: s.type.toLowerCase(), name: s.name, message: s.message },
      value: s.isCompleted() ? s.data ?? null : null,
    }));
    if (bad.length) {
      return new State(StateType.FAILED, {
        message: `${bad.length}/${states.length} states failed.`,
        data: values,
        failure: bad[0].failure,
        runId: bad[0].runId,
      });
    }
    return new State(StateType.COMPLETED, { data: values });
  }
  return new State(StateType.COMPLETED, { data: returned });
}

/**
 * Declares a flow: `flow({ name: "etl", retries: 1 }, (n = 5) => ...)`, or `flow(fn)`
 * named after the function (`myFlow` is `my-flow`). Call it inside another flow for a
 * subflow run.
 */
export function flow(options, fn) {
  if (typeof options === "function") [options, fn] = [{}, options];
  const f = new Flow(options ?? {}, fn);
  register("flow", f);
  const call = (...args) => f.call(args);
  Object.defineProperty(call, "name", { value: f.name });
  return Object.assign(call, {
    flow: f,
    with: ({ returnState = false } = {}) => ({ call: (...args) => f.call(args, { returnState }) }),
    fn: f.fn,
  });
}
