// The host's imports, reached through this module only.
//
// Inside a component, the module `weir build` generates hands the `weir:flow` bindings
// to `setHost` before any run starts; anywhere else (node, a test) there is no host, and
// flows and tasks run as plain functions. Tests stand in for the host with `setHost`.

let bindings = null;

/** Sets (or, with `null`, clears) the `weir:flow` interfaces: `{ tasks, flows, ... }`. */
export function setHost(interfaces) {
  bindings = interfaces;
}

/** Whether the host's bindings are there (inside a component). */
export function available() {
  return bindings !== null;
}

/** One imported WIT interface of the `weir:flow` world (`tasks`, `flows`, ...). */
export function iface(name) {
  if (bindings === null) {
    throw new Error(
      "this needs the Weir host: build the flows with `weir build` and run them with `weir run`",
    );
  }
  return bindings[name];
}

// The run the component is executing (a flow run or a task attempt); `null` outside.
let frame = null;

/**
 * Runs `body` as the current flow run or task attempt. When `body` returns a promise (an
 * async flow or task), the frame lasts until it settles: code after an `await` still
 * runs inside the run.
 */
export function inFrame(kind, name, parameters, body) {
  const outer = frame;
  frame = { kind, name, parameters };
  let value;
  try {
    value = body();
  } catch (error) {
    frame = outer;
    throw error;
  }
  if (isThenable(value)) {
    return Promise.resolve(value).finally(() => {
      frame = outer;
    });
  }
  frame = outer;
  return value;
}

/** Whether a value is a promise (or promise-like). */
export function isThenable(value) {
  return value !== null && (typeof value === "object" || typeof value === "function")
    && typeof value.then === "function";
}

/** Whether calls go through the host: inside a run of a component. */
export function onHost() {
  return bindings !== null && frame !== null;
}

/** The current frame (`{ kind, name, parameters }`) or `null`. */
export function currentFrame() {
  return frame;
}
