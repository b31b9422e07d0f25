// States (Prefect's): what a task or flow run ended in, and what a flow may return to
// choose its own final state.

/** Prefect's state types, as the host names them. */
export const StateType = Object.freeze({
  SCHEDULED: "SCHEDULED",
  PENDING: "PENDING",
  RUNNING: "RUNNING",
  PAUSED: "PAUSED",
  COMPLETED: "COMPLETED",
  FAILED: "FAILED",
  CANCELLING: "CANCELLING",
  CANCELLED: "CANCELLED",
  CRASHED: "CRASHED",
});

/** The error `State.result()` throws for a run that did not complete. */
export class FailedRun extends Error {
  constructor(message, state) {
    super(message);
    this.name = "FailedRun";
    this.state = state;
  }
}

/** A run's state: its type, name (a sub-state such as "Cached" or "Skipped"), message, value. */
export class State {
  constructor(type, { name, message, data, failure, runId } = {}) {
    this.type = type;
    this.name = name ?? defaultName(type);
    this.message = message ?? null;
    this.data = data;
    this.failure = failure ?? null;
    this.runId = runId ?? null;
  }

  isScheduled() { return this.type === StateType.SCHEDULED; }
  isPending() { return this.type === StateType.PENDING; }
  isRunning() { return this.type === StateType.RUNNING; }
  isPaused() { return this.type === StateType.PAUSED; }
  isCompleted() { return this.type === StateType.COMPLETED; }
  isFailed() { return this.type === StateType.FAILED; }
  isCancelling() { return this.type === StateType.CANCELLING; }
  isCancelled() { return this.type === StateType.CANCELLED; }
  isCrashed() { return this.type === StateType.CRASHED; }
  isFinal() {
    return [StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED]
      .includes(this.type);
  }

  /**
   * The run's value; for a run that did not complete, throws (`raiseOnFailure`, the
   * default) or returns the error.
   */
  result({ raiseOnFailure = true } = {}) {
    if (this.isCompleted()) return this.data;
    const error = this.data instanceof Error
      ? this.data
      : new FailedRun(this.message ?? `the run ended ${this.type.toLowerCase()}`, this);
    if (raiseOnFailure) throw error;
    return error;
  }

  toString() {
    return this.message ? `${this.name}('${this.message}')` : `${this.name}()`;
  }
}

function defaultName(type) {
  return type.charAt(0) + type.slice(1).toLowerCase();
}

function stateFactory(type) {
  return ({ message, name, data } = {}) => new State(type, { message, name, data });
}

/** A completed state a flow may return: `return Completed({ message: "done", name: "Skipped" })`. */
export const Completed = stateFactory(StateType.COMPLETED);
/** A failed state a flow may return: the flow run fails without an exception. */
export const Failed = stateFactory(StateType.FAILED);
export const Cancelled = stateFactory(StateType.CANCELLED);
export const Crashed = stateFactory(StateType.CRASHED);
export const Pending = stateFactory(StateType.PENDING);
export const Running = stateFactory(StateType.RUNNING);
export const Scheduled = stateFactory(StateType.SCHEDULED);
