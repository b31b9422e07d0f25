// Transactions (Prefect's `with transaction()`): the task runs a flow calls inside
// `transaction(options, (txn) => ...)` stage their results and hooks, committed together
// when the outermost transaction commits (each task's `onCommit` hooks run and its cache
// record is written), or rolled back when the function throws (the `onRollback` hooks of
// the tasks that completed inside it run, newest first). A `key` makes the work
// idempotent across runs (`if (txn.isCommitted()) return`); `isolationLevel:
// "SERIALIZABLE"` holds a lock on the key, across every node, until commit or rollback.

import { currentFrame, iface, isThenable, onHost } from "./host.js";

const ISOLATION = { READ_COMMITTED: "read-committed", SERIALIZABLE: "serializable" };
const MODES = { EAGER: "eager", LAZY: "lazy", OFF: "off" };

/** Prefect's isolation levels. */
export const IsolationLevel = Object.freeze({ READ_COMMITTED: "READ_COMMITTED", SERIALIZABLE: "SERIALIZABLE" });
/** Prefect's commit modes. */
export const CommitMode = Object.freeze({ EAGER: "EAGER", LAZY: "LAZY", OFF: "OFF" });

const open = [];

function payloadOf(error) {
  return String(error?.payload ?? error?.message ?? error);
}

/** A transaction of the flow run, or what a task's transaction hooks receive. */
export class Transaction {
  constructor({ key, handle, values, state = "active", parent } = {}) {
    this.key = key ?? null;
    this._handle = handle ?? null;
    this._values = new Map(Object.entries(values ?? {}));
    this._state = state;
    this._parent = parent ?? null;
  }

  /** "active", "committed" or "rolled-back". */
  get state() {
    return this._handle ? this._handle.state() : this._state;
  }

  /** Stores a value for later code and for the hooks of the tasks inside. */
  set(name, value) {
    if (this._handle) {
      try {
        this._handle.set(name, JSON.stringify(value ?? null));
      } catch (error) {
        throw new Error(payloadOf(error));
      }
      return;
    }
    this._values.set(name, structuredClone(value));
  }

  /** A stored value, else the enclosing transaction's, else `defaultValue`; throws when none. */
  get(name, ...defaultValue) {
    if (this._handle) {
      const text = this._handle.get(name);
      if (text !== undefined && text !== null) return JSON.parse(text);
    } else if (this._values.has(name)) {
      return structuredClone(this._values.get(name));
    } else if (this._parent) {
      return this._parent.get(name, ...defaultValue);
    }
    if (defaultValue.length) return defaultValue[0];
    throw new Error(`Could not retrieve value for unknown key: ${name}`);
  }

  isCommitted() {
    return this.state === "committed";
  }

  isRolledBack() {
    return this.state === "rolled-back";
  }

  isActive() {
    return this.state === "active";
  }
}

/** The innermost open transaction of the flow, if any. */
export function getTransaction() {
  return open.length ? open[open.length - 1] : null;
}

function witOptions({ key, isolationLevel, commitMode, overwrite = false, lockTimeoutSeconds } = {}) {
  if (key !== undefined && key !== null && typeof key !== "string") {
    throw new TypeError(`a transaction key is a string, not ${typeof key}`);
  }
  const isolation = isolationLevel === undefined ? undefined : ISOLATION[isolationLevel];
  if (isolationLevel !== undefined && !isolation) {
    throw new TypeError(`isolationLevel must be READ_COMMITTED or SERIALIZABLE, not ${isolationLevel}`);
  }
  const mode = commitMode === undefined ? undefined : MODES[commitMode];
  if (commitMode !== undefined && !mode) {
    throw new TypeError(`commitMode must be EAGER, LAZY or OFF, not ${commitMode}`);
  }
  return {
    key: key ?? undefined,
    isolation,
    commitMode: mode,
    overwrite: Boolean(overwrite),
    lockTimeoutSeconds: lockTimeoutSeconds ?? undefined,
  };
}

/**
 * Runs `fn(txn)` inside a new transaction: it commits when `fn` returns (or its promise
 * resolves) and rolls back when `fn` throws (or its promise rejects).
 */
export function transaction(options, fn) {
  if (typeof options === "function") [options, fn] = [{}, options];
  const wit = witOptions(options ?? {});
  if (!onHost() || currentFrame()?.kind !== "flow") {
    // Outside a flow run: values only.
    const txn = new Transaction({ key: wit.key, parent: getTransaction() });
    open.push(txn);
    const done = (ok) => {
      open.splice(open.indexOf(txn), 1);
      if (txn._state === "active") txn._state = ok ? "committed" : "rolled-back";
    };
    return settle(() => fn(txn), done);
  }
  let handle;
  try {
    handle = iface("transactions").begin(wit);
  } catch (error) {
    throw new Error(`cannot begin the transaction: ${payloadOf(error)}`);
  }
  const txn = new Transaction({ key: wit.key, handle, parent: getTransaction() });
  open.push(txn);
  const done = (ok) => {
    open.splice(open.indexOf(txn), 1);
    try {
      handle.end(ok);
    } catch (error) {
      if (ok) throw new Error(`cannot end the transaction: ${payloadOf(error)}`);
    } finally {
      if (typeof handle[Symbol.dispose] === "function") handle[Symbol.dispose]();
    }
  };
  return settle(() => fn(txn), done);
}

function settle(body, done) {
  let value;
  try {
    value = body();
  } catch (error) {
    done(false);
    throw error;
  }
  if (isThenable(value)) {
    return Promise.resolve(value).then(
      (v) => {
        done(true);
        return v;
      },
      (error) => {
        done(false);
        throw error;
      },
    );
  }
  done(true);
  return value;
}
