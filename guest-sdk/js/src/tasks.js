// Tasks (Prefect's `@task`): orchestrated calls, futures, maps, retries, caching.

import { iface, onHost, currentFrame } from "./host.js";
import { canonicalJson, sha256Hex } from "./hash.js";
import { Options } from "./options.js";
import { bind, parameterNames, parametersSchema, positional } from "./params.js";
import { FailedRun, State, StateType } from "./states.js";
import { register } from "./registry.js";

/** Passes one value to every run of a map (Prefect's `unmapped`). */
export class Unmapped {
  constructor(value) {
    this.value = value;
  }
}

/** `task.map(items, unmapped(factor))`: `factor` goes to every run. */
export function unmapped(value) {
  return new Unmapped(value);
}

/** Lets a task run although the upstream run it depends on failed (Prefect's `allow_failure`). */
export class AllowFailure {
  constructor(value) {
    this.value = value;
  }
}

/** `waitFor: [allowFailure(future)]`: run even if `future`'s run failed. */
export function allowFailure(value) {
  return new AllowFailure(value);
}

/** A cache key from the task and its inputs (Prefect's `task_input_hash`). */
export function taskInputHash(context, parameters) {
  return sha256Hex(canonicalJson([context.task.taskKey, parameters]));
}

const WIT_STATES = {
  scheduled: StateType.SCHEDULED,
  pending: StateType.PENDING,
  running: StateType.RUNNING,
  paused: StateType.PAUSED,
  completed: StateType.COMPLETED,
  failed: StateType.FAILED,
  cancelling: StateType.CANCELLING,
  cancelled: StateType.CANCELLED,
  crashed: StateType.CRASHED,
};

/** The state a WIT `state-type` names. */
export function stateType(wit) {
  return WIT_STATES[wit] ?? StateType.FAILED;
}

/** A host task or flow outcome as a `State`. */
export function stateOf(outcome) {
  let failure = null;
  if (outcome.failure) {
    const f = outcome.failure;
    let details = f.details ?? null;
    if (typeof details === "string") {
      try {
        details = JSON.parse(details);
      } catch {
        // Kept as text.
      }
    }
    failure = { kind: f.kind, message: f.message, retryable: f.retryable ?? null, details };
  }
  const type = stateType(outcome.state.type);
  const data = outcome.value === undefined || outcome.value === null ? undefined : JSON.parse(outcome.value);
  return new State(type, {
    name: outcome.state.name,
    message: outcome.state.message ?? null,
    data,
    failure,
    runId: outcome.taskRunId ?? outcome.flowRunId ?? null,
  });
}

/** A failure that happened in the caller, before the host was asked. */
export function localFailure(error, kind = "error") {
  const message = messageOf(error);
  return new State(StateType.FAILED, {
    message,
    data: error,
    failure: { kind, message, retryable: false, details: null },
  });
}

/** An error's message as a run's state shows it: `TypeError: x is not a function`. */
export function messageOf(error) {
  if (error instanceof FailedRun) return error.message;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  try {
    return typeof error === "string" ? error : JSON.stringify(error);
  } catch {
    return String(error);
  }
}

/** A submitted task run (Prefect's `PrefectFuture`). */
export class TaskFuture {
  constructor(taskName, handle, state) {
    this.taskName = taskName;
    this._handle = handle ?? null;
    this._state = state ?? null;
  }

  /** The task run's id (`null` for a call that failed before reaching the host). */
  get taskRunId() {
    if (this._state?.runId) return this._state.runId;
    return this._handle ? this._handle.taskRunId() : null;
  }

  /** Waits until the task run is final. */
  wait() {
    if (this._state === null) {
      this._state = stateOf(this._handle.wait());
    }
    return this._state;
  }

  /** The task run's final state (waits for it). */
  get state() {
    return this.wait();
  }

  /** The task run's value (waits for it); throws when it did not complete. */
  result({ raiseOnFailure = true } = {}) {
    return this.wait().result({ raiseOnFailure });
  }
}

/** Futures of a map, with `result()` and `wait()` over them all. */
export class TaskFutureList extends Array {
  static get [Symbol.species]() {
    return Array;
  }

  wait() {
    for (const f of this) f.wait();
  }

  result({ raiseOnFailure = true } = {}) {
    return Array.from(this, (f) => f.result({ raiseOnFailure }));
  }
}

class Dependencies {
  constructor() {
    this.waitFor = [];
    // Futures whose values the host puts in the arguments: { taskRunId, pointer }.
    this.inputs = [];
    this.failed = null;
  }

  depend(state, allowed) {
    if (state.runId) this.waitFor.push({ taskRunId: state.runId, allowFailure: allowed });
    if (!allowed && !state.isCompleted() && this.failed === null) this.failed = state;
  }

  wit() {
    return [
      ...this.waitFor.map((d) => ({ taskRunId: d.taskRunId, allowFailure: d.allowFailure, argument: undefined })),
      ...this.inputs.map((d) => ({ taskRunId: d.taskRunId, allowFailure: false, argument: d.pointer })),
    ];
  }
}

// The JSON Pointer of `key` under `path` (`null`: the place has none).
function pointer(path, key) {
  return path === null ? null : `${path}/${String(key).replaceAll("~", "~0").replaceAll("/", "~1")}`;
}

// `value` with futures and states replaced by their values, the runs they stand for
// recorded as dependencies. A future still running at a place with a JSON Pointer (`path`)
// is left to the host, which starts the new run with its value once it completed, so the
// flow does not wait (as in Prefect); any other is waited for.
function resolve(value, deps, allowed = false, path = null) {
  if (value instanceof AllowFailure) return resolve(value.value, deps, true);
  if (value instanceof TaskFuture) {
    if (path !== null && !allowed && value._state === null && value._handle) {
      deps.inputs.push({ taskRunId: value.taskRunId, pointer: path });
      return null;
    }
    value = value.state;
  }
  if (value instanceof State) {
    deps.depend(value, allowed);
    return value.isCompleted() ? value.data : null;
  }
  if (Array.isArray(value)) return value.map((v, i) => resolve(v, deps, allowed, pointer(path, i)));
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, deps, allowed, pointer(path, k))]));
  }
  return value;
}

function waitOn(waitFor, deps) {
  for (const upstream of waitFor ?? []) {
    const allowed = upstream instanceof AllowFailure;
    let target = allowed ? upstream.value : upstream;
    if (target instanceof TaskFuture) {
      // Ordering only: the host waits for the run, the flow need not.
      if (target._state === null && target._handle) {
        deps.waitFor.push({ taskRunId: target.taskRunId, allowFailure: allowed });
        continue;
      }
      target = target.state;
    }
    if (target instanceof State) deps.depend(target, allowed);
  }
}

/** JSON text for a value crossing to the host (`undefined` is `null`). */
export function toJson(value, what) {
  let text;
  try {
    text = JSON.stringify(value === undefined ? null : value);
  } catch (error) {
    throw new TypeError(`${what} cannot cross to the host as JSON: ${error.message}`);
  }
  if (text === undefined) throw new TypeError(`${what} cannot cross to the host as JSON (a function?)`);
  return text;
}

/** A task: call it inside a flow to run it through the host. */
export class Task {
  constructor(options, fn) {
    if (typeof fn !== "function") throw new TypeError("task(options, fn): fn must be a function");
    const name = options.name ?? fn.name;
    if (typeof name !== "string" || name === "") {
      throw new TypeError("task(): an anonymous function needs a name: task({ name: \"extract\" }, ...)");
    }
    const what = `task ${name}`;
    this.fn = fn;
    this.name = name;
    this.description = options.description;
    this.version = options.version;
    this.options = new Options("task", options, what);
    this.params = parameterNames(fn);
    this.schema = parametersSchema(this.params, options.parameters, what);
    this.taskKey = `${name}-${sha256Hex(Function.prototype.toString.call(fn)).slice(0, 16)}`;
    this.isAsync = fn.constructor?.name === "AsyncFunction";
  }

  /** Runs the task: inside a flow through the host (the value, or throws); elsewhere the plain function. */
  call(args, { returnState = false, waitFor, ...overrides } = {}) {
    if (!this.throughHost()) return this.local(args, returnState);
    const state = this.runState(args, waitFor, overrides);
    return returnState ? state : state.result();
  }

  /** Whether calls go through the host: in a flow; a task's calls of tasks run in it. */
  throughHost() {
    return onHost() && currentFrame().kind === "flow";
  }

  local(args, returnState) {
    if (!returnState) return this.fn(...args);
    try {
      return new State(StateType.COMPLETED, { data: this.fn(...args) });
    } catch (error) {
      return localFailure(error);
    }
  }

  /** A call's arguments keyed by the names the host passes them by. */
  bindArgs(args) {
    return bind(this.params, args, this.name);
  }

  prepare(args, waitFor, deps = new Dependencies(), hostInputs = true) {
    const params = this.bindArgs(args);
    // A key computed here from the values needs them here.
    const hostResolves = hostInputs && !this.options.cacheKeyFn;
    for (const key of Object.keys(params)) {
      params[key] = resolve(params[key], deps, false, hostResolves ? pointer("", key) : null);
    }
    waitOn(waitFor, deps);
    return { params, deps };
  }

  callOptions(params, deps, overrides = {}) {
    const o = witOverrides(overrides, this.name);
    // A call that turns caching off does not send the task's custom key.
    const cacheKey = o.cachePolicy === "none" ? undefined : this.cacheKey(params);
    return { waitFor: deps.wit(), cacheKey, tags: [...(overrides.tags ?? [])], overrides: o };
  }

  cacheKey(params) {
    const keyFn = this.options.cacheKeyFn;
    if (!keyFn) return undefined;
    const key = keyFn({ task: this }, params);
    return key === null || key === undefined ? undefined : String(key);
  }

  // The host call's arguments, or the failed state of a call that cannot be made.
  request(args, waitFor, overrides, hostInputs = true) {
    try {
      const { params, deps } = this.prepare(args, waitFor, new Dependencies(), hostInputs);
      if (deps.failed !== null && !deps.failed.runId) {
        return localFailure(new FailedRun(`an upstream task did not complete: ${deps.failed.message}`), "upstream");
      }
      return {
        json: toJson(params, `the arguments of ${this.name}`),
        options: this.callOptions(params, deps, overrides),
      };
    } catch (error) {
      return localFailure(error, "invalid-parameters");
    }
  }

  runState(args, waitFor, overrides) {
    const request = this.request(args, waitFor, overrides);
    if (request instanceof State) return request;
    return stateOf(iface("tasks").call(this.name, request.json, request.options));
  }

  /** Starts a task run concurrently with the flow; returns its future. */
  submit(args, { waitFor, returnState: _ignored, ...overrides } = {}) {
    if (!this.throughHost()) return new TaskFuture(this.name, null, this.local(args, true));
    const request = this.request(args, waitFor, overrides);
    if (request instanceof State) return new TaskFuture(this.name, null, request);
    return new TaskFuture(this.name, iface("tasks").submit(this.name, request.json, request.options));
  }

  /**
   * Starts a background run of the task (Prefect's `task.delay()`): a run of its own,
   * outside this flow run, with the task's options. Returns the new run's id at once.
   */
  delay(args) {
    if (!onHost()) throw new Error("delay() needs the Weir server: call it inside a flow run of a deployment");
    // A background run is outside this flow run: futures are waited for here.
    const request = this.request(args, undefined, {}, false);
    if (request instanceof State) throw new Error(request.message ?? "invalid arguments");
    try {
      return iface("tasks").delay(this.name, request.json);
    } catch (error) {
      throw new Error(`cannot start task '${this.name}' in the background: ${error?.payload ?? error?.message ?? error}`);
    }
  }

  /** One task run per element of the array arguments (`unmapped(x)` passes `x` to every run). */
  map(args, { waitFor, returnState: _ignored, ...overrides } = {}) {
    return this.mapCalls(this.zip(args), waitFor, overrides);
  }

  // Each run's positional arguments: element n of every array argument, the others as
  // they are (an `unmapped(x)` as `x`).
  zip(args) {
    const lengths = new Map();
    args.forEach((value, i) => {
      if (Array.isArray(value)) lengths.set(i, value.length);
    });
    if (lengths.size === 0) {
      throw new TypeError(`${this.name}.map() needs at least one array argument; wrap constants in unmapped()`);
    }
    const counts = new Set(lengths.values());
    if (counts.size > 1) {
      throw new RangeError(`${this.name}.map(): the mapped arrays must have the same length (${[...lengths.values()].join(", ")})`);
    }
    const count = [...counts][0];
    const calls = [];
    for (let n = 0; n < count; n++) {
      calls.push(args.map((value, i) => (lengths.has(i) ? value[n] : value instanceof Unmapped ? value.value : value)));
    }
    return calls;
  }

  // One run per call: mapped by the host at once when none needs more than the shared
  // dependencies, else submitted one by one.
  mapCalls(calls, waitFor, overrides) {
    const futures = new TaskFutureList();
    if (!this.throughHost()) {
      for (const call of calls) futures.push(new TaskFuture(this.name, null, this.local(call, true)));
      return futures;
    }
    const shared = new Dependencies();
    waitOn(waitFor, shared);
    const prepared = calls.map((call) => {
      if (shared.failed !== null && !shared.failed.runId) {
        return localFailure(new FailedRun(`an upstream task did not complete: ${shared.failed.message}`), "upstream");
      }
      const request = this.request(call, undefined, overrides);
      if (request instanceof State) return request;
      request.options.waitFor = [...shared.wit(), ...request.options.waitFor];
      return request;
    });
    const simple = !this.options.cacheKeyFn && prepared.every(
      (p) => !(p instanceof State) && p.options.waitFor.length === shared.waitFor.length,
    );
    if (simple) {
      const handles = iface("tasks").map(this.name, prepared.map((p) => p.json), this.callOptions({}, shared, overrides));
      for (const handle of handles) futures.push(new TaskFuture(this.name, handle));
      return futures;
    }
    for (const p of prepared) {
      if (p instanceof State) futures.push(new TaskFuture(this.name, null, p));
      else futures.push(new TaskFuture(this.name, iface("tasks").submit(this.name, p.json, p.options)));
    }
    return futures;
  }

  /** Runs the task's body for an attempt (the host's `run-task`). */
  run(values) {
    return this.fn(...positional(this.params, values));
  }
}

/**
 * Declares a task: `task({ name: "extract", retries: 2 }, (page) => ...)`, or
 * `task(fn)` with the function's name. Call the result inside a flow to run the task
 * through the host; `.submit(...)` for a future, `.map(...)` over arrays,
 * `.with({ waitFor, returnState })` for call options.
 */
export function task(options, fn) {
  if (typeof options === "function") [options, fn] = [{}, options];
  const t = new Task(options ?? {}, fn);
  register("task", t);
  return callable(t);
}

// Options a call may replace (Prefect's `task.with_options(...)`), by the WIT field
// they set.
const OVERRIDES = {
  name: "name",
  taskRunName: "runNameTemplate",
  retries: "retries",
  retryDelaySeconds: "retryDelaySeconds",
  retryJitterFactor: "retryJitterFactor",
  timeoutSeconds: "timeoutSeconds",
  cachePolicy: "cachePolicy",
  cacheExpiration: "cacheExpirationSeconds",
  refreshCache: "refreshCache",
  persistResult: "persistResult",
  logPrints: "logPrints",
};

/** The WIT `task-overrides` of a call's options; the host checks their bounds. */
export function witOverrides(options, task) {
  const out = {};
  for (const [key, value] of Object.entries(options)) {
    if (key === "tags" || value === undefined) continue;
    const field = OVERRIDES[key];
    if (field === undefined) {
      throw new TypeError(
        `${task}.with(): unknown option ${key}; expected waitFor, returnState, tags or one of ${Object.keys(OVERRIDES).join(", ")}`,
      );
    }
    if (key === "retryDelaySeconds") out[field] = (Array.isArray(value) ? value : [value]).map(Number);
    else if (key === "cachePolicy") out[field] = value.name ?? String(value);
    else if (key === "retries") out[field] = Math.max(0, Math.trunc(Number(value)));
    else if (["name", "taskRunName"].includes(key)) out[field] = String(value);
    else if (["refreshCache", "persistResult", "logPrints"].includes(key)) out[field] = Boolean(value);
    else out[field] = Number(value);
  }
  return out;
}

function callable(t) {
  const call = (...args) => t.call(args);
  const withOptions = (callOptions = {}) => ({
    call: (...args) => t.call(args, callOptions),
    submit: (...args) => t.submit(args, callOptions),
    map: (...args) => t.map(args, callOptions),
  });
  Object.defineProperty(call, "name", { value: t.name });
  return Object.assign(call, {
    task: t,
    submit: (...args) => t.submit(args),
    map: (...args) => t.map(args),
    delay: (...args) => t.delay(args),
    with: withOptions,
    withOptions,
    fn: t.fn,
  });
}
