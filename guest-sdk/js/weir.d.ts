// TypeScript types of Weir's JavaScript SDK (`import { flow, task } from "weir"`).

/** JSON values: what crosses to the host as parameters and results. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A JSON Schema (an object), as given in `parameters` and `waitForInput`. */
export type JsonSchema = { [key: string]: unknown };

/** Prefect's state types. */
export declare const StateType: {
  readonly SCHEDULED: "SCHEDULED";
  readonly PENDING: "PENDING";
  readonly RUNNING: "RUNNING";
  readonly PAUSED: "PAUSED";
  readonly COMPLETED: "COMPLETED";
  readonly FAILED: "FAILED";
  readonly CANCELLING: "CANCELLING";
  readonly CANCELLED: "CANCELLED";
  readonly CRASHED: "CRASHED";
};
export type StateType = (typeof StateType)[keyof typeof StateType];

/** Why a run failed, as the host reports it. */
export interface Failure {
  kind: string;
  message: string;
  retryable: boolean | null;
  details: unknown;
}

/** A run's state: a task run's or flow run's outcome, or one a flow returns to choose its own. */
export declare class State<T = unknown> {
  readonly type: StateType;
  /** A sub-state ("Cached", "Retrying", "TimedOut") or a user's name ("Skipped"). */
  readonly name: string;
  readonly message: string | null;
  readonly data: T | undefined;
  readonly failure: Failure | null;
  /** The task run's (or subflow run's) id. */
  readonly runId: string | null;
  isScheduled(): boolean;
  isPending(): boolean;
  isRunning(): boolean;
  isPaused(): boolean;
  isCompleted(): boolean;
  isFailed(): boolean;
  isCancelling(): boolean;
  isCancelled(): boolean;
  isCrashed(): boolean;
  isFinal(): boolean;
  /** The value; throws for a run that did not complete (or returns the error). */
  result(options?: { raiseOnFailure?: true }): T;
  result(options: { raiseOnFailure: false }): T | Error;
}

/** The error `State.result()` throws for a run that did not complete. */
export declare class FailedRun extends Error {
  readonly state: State;
}

export interface StateOptions<T = unknown> {
  message?: string;
  name?: string;
  data?: T;
}
/** `return Completed({ message: "nothing to do", name: "Skipped" })` */
export declare function Completed<T = unknown>(options?: StateOptions<T>): State<T>;
/** `return Failed({ message: "..." })`: the flow run fails without an exception. */
export declare function Failed<T = unknown>(options?: StateOptions<T>): State<T>;
export declare function Cancelled<T = unknown>(options?: StateOptions<T>): State<T>;
export declare function Crashed<T = unknown>(options?: StateOptions<T>): State<T>;
export declare function Pending<T = unknown>(options?: StateOptions<T>): State<T>;
export declare function Running<T = unknown>(options?: StateOptions<T>): State<T>;
export declare function Scheduled<T = unknown>(options?: StateOptions<T>): State<T>;

/** A cache policy: `INPUTS` or `NONE`. */
export declare class CachePolicy {
  readonly name: string;
}
/** Results keyed by the component, the task and its inputs. */
export declare const INPUTS: CachePolicy;
/** Never cached (the default). */
export declare const NONE: CachePolicy;

/** Retry delays that double: `backoffFactor * 2 ** n` seconds. */
export declare function exponentialBackoff(backoffFactor: number): (retries: number) => number[];

/** The run a hook or a retry condition is about. */
export interface RunInfo {
  id?: string;
  name: string;
  parameters?: Record<string, Json>;
  runCount?: number;
  state?: State;
}

export type Hook<Item> = (item: Item, run: RunInfo, state: State) => void | Promise<void>;

/** Options shared by flows and tasks (Prefect's decorator arguments, in camelCase). */
export interface CommonOptions<Item> {
  /** The name the host knows it by (default: the function's name; `myFlow` is `my-flow` for flows). */
  name?: string;
  description?: string;
  version?: string;
  tags?: string[];
  retries?: number;
  /** Seconds before each retry: one number, one per retry (the last repeats), or `exponentialBackoff(f)`. */
  retryDelaySeconds?: number | number[] | ((retries: number) => number[]);
  retryJitterFactor?: number;
  timeoutSeconds?: number;
  persistResult?: boolean;
  /** Log what `console.log` prints at INFO (a flow's covers the tasks it calls). */
  logPrints?: boolean;
  onCompletion?: Hook<Item> | Hook<Item>[];
  onFailure?: Hook<Item> | Hook<Item>[];
  /** Run in the run's instance when it starts. */
  onRunning?: Hook<Item> | Hook<Item>[];
  /** A JSON Schema per parameter, by name: the host checks and coerces parameters against them. */
  parameters?: Record<string, JsonSchema>;
}

export interface TaskOptions extends CommonOptions<Task<any[], unknown>> {
  /** Decides whether a failed attempt is retried. */
  retryConditionFn?: (task: Task<any[], unknown>, taskRun: RunInfo, state: State) => boolean;
  cachePolicy?: CachePolicy;
  /** A cache key from the call's parameters (`taskInputHash`); `null` does not cache. */
  cacheKeyFn?: (context: { task: Task<any[], unknown> }, parameters: Record<string, Json>) => string | null | undefined;
  /** Seconds a cached result stays valid. */
  cacheExpiration?: number;
  refreshCache?: boolean;
  /** A template over the parameters: "extract-page-{page}". */
  /** A template over the arguments, or a function called as the run starts (reading `taskRun`). */
  taskRunName?: string | (() => string);
  /** Run when the task's transaction commits (its cache record is written then). */
  onCommit?: TransactionHook | TransactionHook[];
  /** Run when the transaction the completed task belongs to rolls back (newest first). */
  onRollback?: TransactionHook | TransactionHook[];
}

/** A task's transaction hook: it gets the transaction (values set in it, its key). */
export type TransactionHook = (txn: Transaction) => void;

/** A transaction of the flow run (Prefect's `transaction()`), or what transaction hooks get. */
export declare class Transaction {
  readonly key: string | null;
  /** "active", "committed" or "rolled-back". */
  readonly state: "active" | "committed" | "rolled-back";
  set(name: string, value: Json): void;
  /** A stored value, else the enclosing transaction's, else `defaultValue`; throws when none. */
  get<T = Json>(name: string, defaultValue?: T): T;
  isCommitted(): boolean;
  isRolledBack(): boolean;
  isActive(): boolean;
}

export interface TransactionOptions {
  /** Once a transaction with this key committed, a later one begins committed. */
  key?: string;
  /** "SERIALIZABLE" locks the key, across nodes, until commit or rollback. */
  isolationLevel?: "READ_COMMITTED" | "SERIALIZABLE";
  /** "EAGER" commits as it ends, "LAZY" (the default) with the outermost, "OFF" never. */
  commitMode?: "EAGER" | "LAZY" | "OFF";
  /** Begins even when the key committed before. */
  overwrite?: boolean;
  /** Give up waiting for a serializable lock after this many seconds. */
  lockTimeoutSeconds?: number;
}

/** Runs `fn` in a transaction: it commits when `fn` returns, rolls back when it throws. */
export declare function transaction<R>(options: TransactionOptions, fn: (txn: Transaction) => R): R;
export declare function transaction<R>(fn: (txn: Transaction) => R): R;
/** The innermost open transaction of the flow, if any. */
export declare function getTransaction(): Transaction | null;
export declare const IsolationLevel: { readonly READ_COMMITTED: "READ_COMMITTED"; readonly SERIALIZABLE: "SERIALIZABLE" };
export declare const CommitMode: { readonly EAGER: "EAGER"; readonly LAZY: "LAZY"; readonly OFF: "OFF" };

export interface FlowOptions extends CommonOptions<Flow<any[], unknown>> {
  /** A template over the parameters: "greet-{name}" (format specs such as "{date:%A}" too), or
   * a function called as the run starts (reading `flowRun`). */
  flowRunName?: string | (() => string);
  /** How many submitted task runs run at once: `new ThreadPoolTaskRunner(n)`, `new SequentialTaskRunner()`. */
  taskRunner?: ThreadPoolTaskRunner | SequentialTaskRunner;
  /** `false`: the host does not check the parameters against `parameters`. */
  validateParameters?: boolean;
  onCancellation?: Hook<Flow<any[], unknown>> | Hook<Flow<any[], unknown>>[];
  onCrashed?: Hook<Flow<any[], unknown>> | Hook<Flow<any[], unknown>>[];
}

type Awaited2<T> = T extends PromiseLike<infer U> ? U : T;

/** A submitted task run (Prefect's `PrefectFuture`). */
export declare class TaskFuture<T = unknown> {
  readonly taskName: string;
  readonly taskRunId: string | null;
  /** Waits until the task run is final; returns its state. */
  wait(): State<T>;
  readonly state: State<T>;
  /** The value (waits for it); throws when the run did not complete. */
  result(options?: { raiseOnFailure?: boolean }): T;
}

/** The futures of a map. */
export declare class TaskFutureList<T = unknown> extends Array<TaskFuture<T>> {
  wait(): void;
  result(options?: { raiseOnFailure?: boolean }): T[];
}

/** An argument that may be a future or a state of an upstream run (resolved, and waited for). */
export type Arg<T> = T | TaskFuture<T> | State<T>;
/** A map argument: an array (one run per element), or `unmapped(value)` for every run. */
export type MapArg<T> = T[] | Unmapped<T>;

export interface CallOptions {
  /** Runs that must be final first (`allowFailure(f)`: even if it failed). */
  waitFor?: Array<TaskFuture | State | AllowFailure>;
  /** Tags added to the task's own. */
  tags?: string[];
  /** The task's options replaced for these calls (Prefect's `with_options`). */
  name?: string;
  taskRunName?: string;
  retries?: number;
  retryDelaySeconds?: number | number[];
  retryJitterFactor?: number;
  timeoutSeconds?: number;
  cachePolicy?: CachePolicy;
  cacheExpiration?: number;
  refreshCache?: boolean;
  persistResult?: boolean;
  logPrints?: boolean;
}

/** At most `maxWorkers` of a flow's submitted task runs at once. */
export declare class ThreadPoolTaskRunner {
  constructor(maxWorkers?: number);
  readonly maxWorkers: number | undefined;
}

/** One submitted task run at a time, in submission order. */
export declare class SequentialTaskRunner {
  readonly maxWorkers: 1;
}

export interface LimitOptions {
  /** Slots to take of each limit (default 1). */
  occupy?: number;
  /** Give up waiting after this many seconds (`AcquireConcurrencySlotTimeoutError`). */
  timeoutSeconds?: number;
  /** A limit that does not exist is an error (else it limits nothing). */
  strict?: boolean;
}

/** Runs `fn` holding slots of the workspace's global concurrency limits (Prefect's `concurrency`). */
export declare function concurrency<R>(names: string | string[], fn: () => R, options?: LimitOptions): R;
/** Waits until the workspace's rate limits let more calls through (Prefect's `rate_limit`). */
export declare function rateLimit(names: string | string[], options?: LimitOptions): void;
export declare class ConcurrencySlotAcquisitionError extends Error {}
export declare class AcquireConcurrencySlotTimeoutError extends ConcurrencySlotAcquisitionError {}

/** A task: calling it inside a flow runs it through the host and returns its value. */
export interface Task<A extends unknown[], R> {
  (...args: { [K in keyof A]: Arg<A[K]> }): Awaited2<R>;
  /** Starts a task run concurrently with the flow. */
  submit(...args: { [K in keyof A]: Arg<A[K]> }): TaskFuture<Awaited2<R>>;
  /** Starts a background run of the task (Prefect's `task.delay()`); returns the new run's id. */
  delay(...args: { [K in keyof A]: Arg<A[K]> }): string;
  /** One task run per element of the array arguments. */
  map(...args: { [K in keyof A]: MapArg<A[K]> | A[K] }): TaskFutureList<Awaited2<R>>;
  /** Call options: `t.with({ waitFor: [f] }).submit(x)`; `returnState` gives states, not values. */
  with(options: CallOptions & { returnState: true }): {
    call(...args: { [K in keyof A]: Arg<A[K]> }): State<Awaited2<R>>;
    submit(...args: { [K in keyof A]: Arg<A[K]> }): TaskFuture<Awaited2<R>>;
    map(...args: { [K in keyof A]: MapArg<A[K]> | A[K] }): TaskFutureList<Awaited2<R>>;
  };
  with(options: CallOptions & { returnState?: false }): {
    call(...args: { [K in keyof A]: Arg<A[K]> }): Awaited2<R>;
    submit(...args: { [K in keyof A]: Arg<A[K]> }): TaskFuture<Awaited2<R>>;
    map(...args: { [K in keyof A]: MapArg<A[K]> | A[K] }): TaskFutureList<Awaited2<R>>;
  };
  /** The same as `with` (Prefect's `task.with_options(...)`). */
  withOptions: Task<A, R>["with"];
  readonly fn: (...args: A) => R;
}

/** A flow: calling it inside another flow is a subflow run. */
export interface Flow<A extends unknown[], R> {
  (...args: { [K in keyof A]: Arg<A[K]> }): Awaited2<R>;
  with(options: { returnState: true }): { call(...args: A): State<Awaited2<R>> };
  readonly fn: (...args: A) => R;
}

/** A plugin task's arguments: its parameters by name (futures and states of upstream runs are resolved). */
export type PluginArgs<A> = { [K in keyof A]: Arg<A[K]> };
/** A map's arguments: an array is mapped (one run per element), `unmapped(value)` and other values go to every run. */
export type PluginMapArgs<A> = { [K in keyof A]: MapArg<A[K]> | A[K] };

/**
 * A plugin's task (`plugin("toolkit/greet")`): calling it inside a flow (or a task) runs it
 * through the host, as an ordinary task run of the calling run, and returns its value.
 * `A` is its arguments (an object keyed by its parameters), `R` its value.
 */
export interface Plugin<A extends object = Record<string, Json>, R = Json> {
  (args?: PluginArgs<A>): R;
  /** `"<plugin>/<task>"` or `"<plugin>@<version>/<task>"`, as given. */
  readonly reference: string;
  /** Starts a run concurrently with the flow. */
  submit(args?: PluginArgs<A>): TaskFuture<R>;
  /** One run per element of the arrays among the arguments: `greet.map({ name: ["Ada", "Grace"] })`. */
  map(args: PluginMapArgs<A>): TaskFutureList<R>;
  /** Call options, checked here: `p.with({ retries: 2, waitFor: [f] }).call(args)`; `returnState` gives states. */
  with(options: CallOptions & { returnState: true }): {
    call(args?: PluginArgs<A>): State<R>;
    submit(args?: PluginArgs<A>): TaskFuture<R>;
    map(args: PluginMapArgs<A>): TaskFutureList<R>;
  };
  with(options: CallOptions & { returnState?: false }): {
    call(args?: PluginArgs<A>): R;
    submit(args?: PluginArgs<A>): TaskFuture<R>;
    map(args: PluginMapArgs<A>): TaskFutureList<R>;
  };
  /** The same as `with`. */
  withOptions: Plugin<A, R>["with"];
}

/**
 * A plugin's task by name: `plugin("http/request")` (the plugin's latest version) or
 * `plugin("http@2/request")` (version 2). Throws a `TypeError` for a name of another shape;
 * the host fails the call when the plugin, the version or the task does not exist.
 */
export declare function plugin<A extends object = Record<string, Json>, R = Json>(reference: string): Plugin<A, R>;

/** Declares a task: `task({ name: "extract", retries: 2 }, (page: number) => ...)`. */
export declare function task<A extends unknown[], R>(options: TaskOptions, fn: (...args: A) => R): Task<A, R>;
export declare function task<A extends unknown[], R>(fn: (...args: A) => R): Task<A, R>;

/** Declares a flow: `flow({ name: "etl", retries: 1 }, (n = 5) => ...)`. */
export declare function flow<A extends unknown[], R>(options: FlowOptions, fn: (...args: A) => R): Flow<A, R>;
export declare function flow<A extends unknown[], R>(fn: (...args: A) => R): Flow<A, R>;

/** Prefect's flow name for a function name: `myFlow` is `my-flow`. */
export declare function flowName(fnName: string): string;

export declare class Unmapped<T = unknown> {
  readonly value: T;
}
/** `task.map(items, unmapped(factor))`: `factor` goes to every run. */
export declare function unmapped<T>(value: T): Unmapped<T>;

export declare class AllowFailure<T = unknown> {
  readonly value: T;
}
/** `waitFor: [allowFailure(future)]`: run even if that run failed. */
export declare function allowFailure<T>(value: T): AllowFailure<T>;

/** A cache key from the task and its inputs (Prefect's `task_input_hash`). */
export declare function taskInputHash(context: { task: Task<any[], unknown> }, parameters: Record<string, Json>): string;

export interface RunLogger {
  debug(...message: unknown[]): void;
  info(...message: unknown[]): void;
  warning(...message: unknown[]): void;
  warn(...message: unknown[]): void;
  error(...message: unknown[]): void;
  critical(...message: unknown[]): void;
}
/** The run logger (Prefect's `get_run_logger()`). */
export declare function getRunLogger(): RunLogger;

export interface ArtifactOptions {
  /** Groups versions of one artifact (lowercase letters, digits and dashes). */
  key?: string;
  description?: string;
}
/** Each returns the artifact's id (`null` outside a run). */
export declare function createMarkdownArtifact(markdown: string, options?: ArtifactOptions): string | null;
export declare function createTableArtifact(table: Array<Record<string, Json>> | Json[][], options?: ArtifactOptions): string | null;
export declare function createLinkArtifact(link: string, options?: ArtifactOptions & { linkText?: string }): string | null;
export declare function createProgressArtifact(progress: number, options?: ArtifactOptions): string | null;
export declare function updateProgressArtifact(artifactId: string, progress: number): void;

/** Workspace variables. */
export declare const Variable: {
  get<T extends Json = Json>(name: string, defaultValue?: T | null): T | null;
};
/** Workspace secrets: `Secret.load("token").get()`. */
export declare const Secret: {
  load(name: string): { get(): string };
};

export interface FlowRunContext {
  readonly id: string | null;
  readonly name: string | null;
  readonly flowName: string | null;
  readonly parameters: Record<string, Json>;
  readonly tags: string[];
  readonly parentFlowRunId: string | null;
  readonly scheduledStartTime: string | null;
}
export interface TaskRunContext {
  readonly id: string | null;
  readonly name: string | null;
  readonly taskName: string | null;
  /** 1 for the first attempt. */
  readonly runCount: number;
  readonly tags: string[];
}
export declare const flowRun: FlowRunContext;
export declare const taskRun: TaskRunContext;
/** The run context (Prefect's `prefect.runtime`). */
export declare const runtime: { readonly flowRun: FlowRunContext; readonly taskRun: TaskRunContext };

export interface PauseOptions {
  /** Seconds to wait for a resume (default 3600); past them the run fails. */
  timeout?: number;
  key?: string;
  description?: string;
  /** A JSON Schema the resume's input must match; the input is returned. */
  waitForInput?: JsonSchema;
}
/** Pauses the flow run until it is resumed; returns the resume's input. */
export declare function pauseFlowRun<T = Json>(options?: PauseOptions): T;
/** Suspends the flow run (its instance is released; the run replays on resume). */
export declare function suspendFlowRun<T = Json>(options?: PauseOptions): T;

/** Creates a run of a deployment of the workspace; returns the new flow run's id. */
export declare function runDeployment(
  name: string,
  options?: { parameters?: Record<string, Json>; scheduledTime?: Date | string },
): string;
