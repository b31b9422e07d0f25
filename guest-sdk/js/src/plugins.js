// Tasks of plugins: components whose tasks any flow of the workspace calls by name,
// "<plugin>/<task>" for the plugin's latest version or "<plugin>@<version>/<task>" for one
// version (Weir's built-in http, notify, jq, template and csv, or a workspace's own,
// registered with `weir plugin add`).
//
//   import { flow, plugin } from "weir";
//   const greet = plugin("toolkit/greet");
//   export const hello = flow({ name: "hello" }, (name) => greet({ name }));
//
// A call is an ordinary task call of the calling run, made as a task's is: its states,
// retries, timeout, cache, logs and artifacts, its place in the run's journal. The
// plugin's task runs in its own sandbox, with the calling deployment's capabilities; the
// host checks the arguments against the task's schema.

import { onHost } from "./host.js";
import { Task, witOverrides } from "./tasks.js";

// A plugin's name, as the host checks it (`weir plugin add`).
const NAME = /^[A-Za-z0-9._-]{1,100}$/;

const EXPECTED = "expected \"<plugin>/<task>\" (the plugin's latest version) or "
  + "\"<plugin>@<version>/<task>\", such as \"http/request\" or \"http@2/request\"";

function describe(value) {
  try {
    return typeof value === "function" ? "a function" : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isPlainObject(value) {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Throws unless `reference` has the shape of a plugin task's name; whether the plugin,
 * the version and the task exist is the host's to say, when the call is made.
 */
export function checkReference(reference) {
  if (typeof reference !== "string") {
    throw new TypeError(`a plugin task is named by a string: ${EXPECTED}, not ${describe(reference)}`);
  }
  const slash = reference.indexOf("/");
  const head = slash < 0 ? reference : reference.slice(0, slash);
  const task = slash < 0 ? "" : reference.slice(slash + 1);
  const at = head.indexOf("@");
  const name = at < 0 ? head : head.slice(0, at);
  const version = at < 0 ? null : head.slice(at + 1);
  let why;
  if (slash < 0) why = "";
  else if (!NAME.test(name) || name === "." || name === "..") {
    why = " (a plugin's name is 1 to 100 letters, digits, '.', '-' or '_')";
  } else if (version !== null && !(/^[0-9]+$/.test(version) && Number(version) >= 1)) {
    why = " (a plugin's version is a whole number from 1)";
  } else if (task === "") why = " (it names no task)";
  else return;
  throw new TypeError(`${JSON.stringify(reference)} is not a plugin task${why}: ${EXPECTED}`);
}

/** A plugin's task: the task-call machinery of `Task`, with one object of arguments. */
export class PluginTask extends Task {
  constructor(reference) {
    checkReference(reference);
    // The task's body is the plugin's, run by the host: nothing runs here.
    super({ name: reference }, function plugin(args) {
      return args;
    });
    this.reference = reference;
    this.taskKey = reference;
  }

  // In a flow or in a task alike: a plugin's task runs nowhere else.
  throughHost() {
    return onHost();
  }

  local() {
    throw new Error(
      `plugin task ${this.reference} runs on the Weir host only: call it inside a flow run (outside one, `
        + "such as in a node test, there is no plugin to run; stand in for it there)",
    );
  }

  delay() {
    throw new TypeError(
      `plugin task ${this.reference} cannot be started in the background with delay(): call it, `
        + "submit() it or map() it inside a flow run",
    );
  }

  // The one object of arguments, keyed by the task's parameters.
  object(args, what) {
    if (args.length > 1 || (args.length === 1 && args[0] !== undefined && !isPlainObject(args[0]))) {
      throw new TypeError(
        `${what}: the arguments are one object keyed by the task's parameters, such as ({ name: "Ada" }), `
          + `not ${args.map(describe).join(", ")}`,
      );
    }
    return { ...(args[0] ?? {}) };
  }

  bindArgs(args) {
    return this.object(args, `${this.reference}()`);
  }

  // The object's arrays are mapped, as a task's array arguments are.
  zip(args) {
    const object = this.object(args, `${this.reference}.map()`);
    const keys = Object.keys(object);
    return super.zip(keys.map((key) => object[key]))
      .map((values) => [Object.fromEntries(keys.map((key, i) => [key, values[i]]))]);
  }

  /** Checks the options of `withOptions` when given (a task's are checked as it is called). */
  checkOptions(options) {
    if (options === null || typeof options !== "object" || Array.isArray(options)) {
      throw new TypeError(`${this.reference}.withOptions(): options must be an object such as { retries: 2 }`);
    }
    const { waitFor, returnState: _returnState, tags, ...overrides } = options;
    if (waitFor !== undefined && !Array.isArray(waitFor)) {
      throw new TypeError(`${this.reference}.withOptions(): waitFor must be an array of futures or states`);
    }
    if (tags !== undefined && !(Array.isArray(tags) && tags.every((t) => typeof t === "string"))) {
      throw new TypeError(`${this.reference}.withOptions(): tags must be an array of strings`);
    }
    if (overrides.taskRunName !== undefined && typeof overrides.taskRunName !== "string") {
      throw new TypeError(
        `${this.reference}.withOptions(): taskRunName is a template over the arguments, such as "greet-{name}" `
          + "(the plugin's task runs elsewhere: no function)",
      );
    }
    witOverrides(overrides, this.reference);
  }
}

/**
 * A plugin's task by name: `plugin("http/request")` (the plugin's latest version) or
 * `plugin("http@2/request")` (version 2); throws for a name of another shape. Call it as
 * a task with one object of arguments: `greet({ name: "Ada" })` for the value,
 * `greet.submit({...})` for a future, `greet.map({ name: ["Ada", "Grace"] })` for one run
 * per element, `greet.with({ retries: 2, waitFor, returnState }).call({...})` for options.
 */
export function plugin(reference) {
  const p = new PluginTask(reference);
  const withOptions = (options = {}) => {
    p.checkOptions(options);
    return {
      call: (...args) => p.call(args, options),
      submit: (...args) => p.submit(args, options),
      map: (...args) => p.map(args, options),
    };
  };
  const call = (...args) => p.call(args);
  Object.defineProperty(call, "name", { value: reference });
  return Object.assign(call, {
    plugin: p,
    reference,
    submit: (...args) => p.submit(args),
    map: (...args) => p.map(args),
    with: withOptions,
    withOptions,
  });
}
