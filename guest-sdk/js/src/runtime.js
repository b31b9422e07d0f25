// What a running flow or task reaches on the host: the run logger, artifacts, variables
// and secrets, the run context, pauses, and runs of other deployments.

import { available, iface, onHost } from "./host.js";
import { toJson } from "./tasks.js";

const LEVELS = ["debug", "info", "warning", "error", "critical"];

/**
 * The run logger (Prefect's `get_run_logger()`): `debug`, `info`, `warning` (`warn`),
 * `error`, `critical`. Outside a run it writes to the console.
 */
export function getRunLogger() {
  const logger = {};
  for (const level of LEVELS) {
    logger[level] = (...parts) => {
      const message = parts.map((p) => (typeof p === "string" ? p : safeString(p))).join(" ");
      if (onHost()) iface("logging").log(level, message);
      else console.error(`${level.toUpperCase()}: ${message}`);
    };
  }
  logger.warn = logger.warning;
  return logger;
}

function safeString(value) {
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

function artifact(data, { key, description } = {}) {
  if (!onHost()) return null;
  try {
    return iface("artifacts").create({ key: key ?? undefined, description: description ?? undefined, data });
  } catch (error) {
    throw new Error(`the artifact was refused: ${error?.payload ?? error}`);
  }
}

/** A Markdown artifact on the current run; returns its id. */
export function createMarkdownArtifact(markdown, options = {}) {
  return artifact({ tag: "markdown", val: String(markdown) }, options);
}

/** A table artifact: an array of rows (objects or arrays); returns its id. */
export function createTableArtifact(table, options = {}) {
  return artifact({ tag: "table", val: toJson(table, "the table") }, options);
}

/** A link artifact; returns its id. */
export function createLinkArtifact(link, { linkText, ...options } = {}) {
  return artifact({ tag: "link", val: { url: String(link), text: linkText ?? undefined } }, options);
}

/** A progress artifact (0 to 100); returns its id for `updateProgressArtifact`. */
export function createProgressArtifact(progress, options = {}) {
  return artifact({ tag: "progress", val: Number(progress) }, options);
}

/** Updates a progress artifact this run created. */
export function updateProgressArtifact(artifactId, progress) {
  if (!onHost()) return;
  try {
    iface("artifacts").updateProgress(artifactId, Number(progress));
  } catch (error) {
    throw new Error(`the progress was refused: ${error?.payload ?? error}`);
  }
}

/** Workspace variables (Prefect's `Variable.get`). */
export const Variable = Object.freeze({
  /** The variable's value, or `defaultValue` when it is not set. */
  get(name, defaultValue = null) {
    if (!available()) return defaultValue;
    const value = iface("variables").get(name);
    return value === undefined || value === null ? defaultValue : JSON.parse(value);
  },
});

/** A workspace secret (Prefect's `Secret.load(name).get()`), decrypted for this run only. */
export const Secret = Object.freeze({
  load(name) {
    const value = available() ? iface("variables").secret(name) : undefined;
    if (value === undefined || value === null) throw new Error(`no secret named \`${name}\``);
    return Object.freeze({ get: () => value });
  },
});

function context() {
  return available() ? iface("context").current() : null;
}

/** The current flow run (Prefect's `prefect.runtime.flow_run`). */
export const flowRun = Object.freeze({
  get id() { return context()?.flowRunId ?? null; },
  get name() { return context()?.flowRunName ?? null; },
  get flowName() { return context()?.flowName ?? null; },
  get parameters() {
    const c = context();
    return c ? JSON.parse(c.parameters) : {};
  },
  get tags() { return context()?.tags ?? []; },
  get parentFlowRunId() { return context()?.parentFlowRunId ?? null; },
  get scheduledStartTime() { return context()?.scheduledStart ?? null; },
});

/** The current task run (Prefect's `prefect.runtime.task_run`). */
export const taskRun = Object.freeze({
  get id() { return context()?.taskRunId ?? null; },
  get name() { return context()?.taskRunName ?? null; },
  get taskName() { return context()?.taskName ?? null; },
  get runCount() { return context()?.attempt ?? 1; },
  get tags() { return context()?.tags ?? []; },
  get parameters() {
    const text = context()?.taskRunParameters;
    return text ? JSON.parse(text) : {};
  },
});

/** The run context: `runtime.flowRun`, `runtime.taskRun`. */
export const runtime = Object.freeze({ flowRun, taskRun });

function pause(suspend, { timeout = 3600, key, description, waitForInput } = {}) {
  if (!onHost()) throw new Error("pausing needs a flow run on the Weir host");
  let inputSchema;
  if (waitForInput !== undefined) {
    if (waitForInput === null || typeof waitForInput !== "object") {
      throw new TypeError("waitForInput is the JSON Schema of the input a resume must bring");
    }
    inputSchema = JSON.stringify(waitForInput);
  }
  let text;
  try {
    text = iface("flows").pause({
      timeoutSeconds: Number(timeout), key: key ?? undefined, description: description ?? undefined,
      inputSchema, suspend,
    });
  } catch (error) {
    throw new Error(`the flow run was not resumed: ${error?.payload ?? error}`);
  }
  return JSON.parse(text);
}

/**
 * Pauses the flow run until it is resumed (Prefect's `pause_flow_run`); with
 * `waitForInput` (a JSON Schema) returns the input the resume brought.
 */
export function pauseFlowRun(options = {}) {
  return pause(false, options);
}

/**
 * Suspends the flow run (its instance is released) until it is resumed; the run then
 * executes again from the start, replaying its completed calls.
 */
export function suspendFlowRun(options = {}) {
  return pause(true, options);
}

/** Creates a run of a deployment of the workspace (Prefect's `run_deployment`); returns its id. */
export function runDeployment(name, { parameters = {}, scheduledTime } = {}) {
  if (!onHost()) throw new Error("runDeployment needs a flow run on the Weir host");
  const when = scheduledTime instanceof Date ? scheduledTime.toISOString() : scheduledTime;
  try {
    return iface("deployments").run(name, toJson(parameters, "the parameters"), when ?? undefined);
  } catch (error) {
    throw new Error(`cannot run deployment ${name}: ${error?.payload ?? error}`);
  }
}
