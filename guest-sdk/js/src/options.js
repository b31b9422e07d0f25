// The orchestration options of flows and tasks (Prefect's decorator arguments, in
// camelCase), checked when a flow or task is declared, and their WIT form.

/** A cache policy: `INPUTS` keys a task's results by its inputs; `NONE` never caches. */
export class CachePolicy {
  constructor(name) {
    this.name = name;
    Object.freeze(this);
  }

  toString() {
    return this.name.toUpperCase();
  }
}

/** Results keyed by the component, the task and its inputs (Prefect's `INPUTS`). */
export const INPUTS = new CachePolicy("inputs");
/** Never cached (the default). */
export const NONE = new CachePolicy("none");

/** Retry delays that double: `backoffFactor * 2 ** n` seconds before retry n + 1. */
export function exponentialBackoff(backoffFactor) {
  const f = seconds(backoffFactor, "exponentialBackoff's backoffFactor");
  const delays = (retries) => {
    const out = [];
    for (let r = 0; r < Math.min(retries, 50); r++) out.push(f * 2 ** r);
    return out;
  };
  return delays;
}

function seconds(value, what) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`${what} must be a number of seconds, not ${describe(value)}`);
  }
  if (value < 0) throw new RangeError(`${what} must not be negative, got ${value}`);
  return value;
}

function describe(value) {
  try {
    return typeof value === "string" ? JSON.stringify(value) : String(value);
  } catch {
    return typeof value;
  }
}

function delays(value, retries) {
  if (value === undefined || value === null) return [];
  if (typeof value === "function") value = value(Math.max(retries, 1));
  if (typeof value === "number") return [seconds(value, "retryDelaySeconds")];
  if (Array.isArray(value)) return value.map((v) => seconds(v, "retryDelaySeconds"));
  throw new TypeError(
    `retryDelaySeconds must be a number, an array of numbers or exponentialBackoff(...), not ${describe(value)}`,
  );
}

function hooks(value, what) {
  if (value === undefined || value === null) return [];
  const list = typeof value === "function" ? [value] : value;
  if (!Array.isArray(list)) throw new TypeError(`${what} must be a function or an array of functions`);
  for (const hook of list) {
    if (typeof hook !== "function") throw new TypeError(`${what} hooks must be functions, not ${describe(hook)}`);
    // Named now, at declaration (in the component's snapshot), so every instance agrees.
    hookName(hook);
  }
  return list;
}

const KNOWN = new Set([
  "name", "description", "version", "tags", "retries", "retryDelaySeconds", "retryJitterFactor",
  "retryConditionFn", "timeoutSeconds", "cachePolicy", "cacheKeyFn", "cacheExpiration",
  "refreshCache", "persistResult", "logPrints", "flowRunName", "taskRunName", "validateParameters",
  "onCompletion", "onFailure", "onCancellation", "onCrashed", "onRunning", "parameters", "taskRunner",
  "onCommit", "onRollback",
]);

const TASK_ONLY = ["retryConditionFn", "cachePolicy", "cacheKeyFn", "cacheExpiration", "refreshCache", "taskRunName",
  "onCommit", "onRollback"];
const FLOW_ONLY = ["flowRunName", "validateParameters", "onCancellation", "onCrashed", "taskRunner"];

/** The checked options of a flow (`kind` "flow") or a task ("task"). */
export class Options {
  constructor(kind, given, what) {
    if (given === null || typeof given !== "object" || Array.isArray(given)) {
      throw new TypeError(`${what}: options must be an object such as { name: "etl", retries: 2 }`);
    }
    for (const key of Object.keys(given)) {
      if (!KNOWN.has(key)) throw new TypeError(`${what}: unknown option \`${key}\``);
      const other = kind === "flow" ? TASK_ONLY : FLOW_ONLY;
      if (other.includes(key)) throw new TypeError(`${what}: \`${key}\` is an option of ${kind === "flow" ? "tasks" : "flows"}`);
    }
    const o = given;
    this.tags = [...new Set(o.tags ?? [])].sort();
    for (const tag of this.tags) {
      if (typeof tag !== "string") throw new TypeError(`${what}: tags must be strings`);
    }
    const retries = o.retries ?? 0;
    if (!Number.isInteger(retries) || retries < 0) {
      throw new RangeError(`${what}: retries must be a whole number of at least 0, not ${describe(retries)}`);
    }
    this.retries = retries;
    this.retryDelaySeconds = delays(o.retryDelaySeconds, retries);
    this.retryJitterFactor = seconds(o.retryJitterFactor, "retryJitterFactor");
    if (o.retryConditionFn !== undefined && typeof o.retryConditionFn !== "function") {
      throw new TypeError(`${what}: retryConditionFn must be a function (task, taskRun, state) => boolean`);
    }
    this.retryConditionFn = o.retryConditionFn;
    this.timeoutSeconds = seconds(o.timeoutSeconds, "timeoutSeconds") || undefined;
    if (o.cacheKeyFn !== undefined && typeof o.cacheKeyFn !== "function") {
      throw new TypeError(`${what}: cacheKeyFn must be a function (context, parameters) => string`);
    }
    this.cacheKeyFn = o.cacheKeyFn;
    const policy = o.cachePolicy ?? NONE;
    if (!(policy instanceof CachePolicy)) {
      throw new TypeError(`${what}: cachePolicy must be INPUTS or NONE (from "weir"), not ${describe(policy)}`);
    }
    this.cachePolicy = policy;
    this.cacheExpiration = seconds(o.cacheExpiration, "cacheExpiration");
    this.refreshCache = Boolean(o.refreshCache);
    if (o.persistResult !== undefined && typeof o.persistResult !== "boolean") {
      throw new TypeError(`${what}: persistResult must be a boolean`);
    }
    this.persistResult = o.persistResult;
    // Unset inherits the caller's setting (a task its flow's, a subflow its parent's).
    this.logPrints = o.logPrints === undefined ? undefined : Boolean(o.logPrints);
    this.validateParameters = o.validateParameters ?? true;
    const runName = kind === "flow" ? o.flowRunName : o.taskRunName;
    if (runName !== undefined && typeof runName !== "string" && typeof runName !== "function") {
      throw new TypeError(
        `${what}: a run name is a template over the parameters, such as "greet-{name}", or a ` +
          `function returning the name (called as the run starts), not ${describe(runName)}`,
      );
    }
    this.runName = runName;
    const runner = o.taskRunner;
    if (runner !== undefined && (runner === null || typeof runner !== "object" || !("maxWorkers" in runner))) {
      throw new TypeError(
        `${what}: taskRunner must be new ThreadPoolTaskRunner(n) or new SequentialTaskRunner(), not ${describe(runner)}`,
      );
    }
    this.maxWorkers = runner?.maxWorkers ?? undefined;
    this.onCompletion = hooks(o.onCompletion, "onCompletion");
    this.onFailure = hooks(o.onFailure, "onFailure");
    this.onCancellation = hooks(o.onCancellation, "onCancellation");
    this.onCrashed = hooks(o.onCrashed, "onCrashed");
    this.onRunning = hooks(o.onRunning, "onRunning");
    // Transaction hooks (tasks): run with the transaction as it commits or rolls back.
    this.onCommit = hooks(o.onCommit, "onCommit");
    this.onRollback = hooks(o.onRollback, "onRollback");
  }

  /** The policy the host applies: a key function makes it "custom" (the caller's key). */
  get hostCachePolicy() {
    return this.cacheKeyFn ? "custom" : this.cachePolicy.name;
  }

  /** Every hook by the name the host knows it by. */
  hooks() {
    const out = new Map();
    for (const hook of [...this.onCompletion, ...this.onFailure, ...this.onCancellation,
      ...this.onCrashed, ...this.onRunning]) {
      out.set(hookName(hook), hook);
    }
    return out;
  }

  /** Every transaction hook by the name the host knows it by. */
  transactionHooks() {
    const out = new Map();
    for (const hook of [...this.onCommit, ...this.onRollback]) out.set(hookName(hook), hook);
    return out;
  }

  /** The WIT `options` record. */
  toWit() {
    return {
      tags: this.tags,
      retries: this.retries,
      retryDelaySeconds: this.retryDelaySeconds,
      retryJitterFactor: this.retryJitterFactor,
      hasRetryCondition: this.retryConditionFn !== undefined,
      timeoutSeconds: this.timeoutSeconds,
      cachePolicy: this.hostCachePolicy,
      cacheExpirationSeconds: this.cacheExpiration,
      refreshCache: this.refreshCache,
      persistResult: this.persistResult,
      logPrints: this.logPrints,
      runNameTemplate: typeof this.runName === "string" ? this.runName : undefined,
      hasRunNameFn: typeof this.runName === "function",
      onCompletion: this.onCompletion.map(hookName),
      onFailure: this.onFailure.map(hookName),
      onCancellation: this.onCancellation.map(hookName),
      onCrashed: this.onCrashed.map(hookName),
      // The SDK runs `onRunning` hooks itself, in the run's own instance.
      onRunning: [],
      onCommit: this.onCommit.map(hookName),
      onRollback: this.onRollback.map(hookName),
      validateParameters: this.validateParameters,
      maxWorkers: this.maxWorkers,
    };
  }
}

const hookNames = new Map();
const namedHooks = new Map();

/**
 * The name the host knows a hook by: its function name, made unique with a number when
 * another hook has it (anonymous hooks are "hook-1", "hook-2", ...). Names follow the
 * order of declaration, so a component's build and its runs agree on them.
 */
export function hookName(hook) {
  let name = hookNames.get(hook);
  if (name === undefined) {
    const base = hook.name || "hook";
    name = base;
    for (let n = 1; namedHooks.has(name) || (!hook.name && n === 1); n++) {
      name = `${base}-${n}`;
      if (!namedHooks.has(name)) break;
    }
    hookNames.set(hook, name);
    namedHooks.set(name, hook);
  }
  return name;
}
