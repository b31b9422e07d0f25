// The JavaScript test guest: one flow per behaviour the end-to-end tests check (states,
// retries and their delays, maps, caching, subflows, futures, artifacts, logs, the
// runtime, async code, plugins, and hostile code).
import {
  flow, task, unmapped, allowFailure, exponentialBackoff, taskInputHash, INPUTS, Completed, Failed,
  getRunLogger, createMarkdownArtifact, createTableArtifact, createLinkArtifact, createProgressArtifact,
  updateProgressArtifact, Variable, Secret, runtime, concurrency, rateLimit,
  AcquireConcurrencySlotTimeoutError, SequentialTaskRunner, NONE, transaction, plugin,
} from "weir";

// States and final-state rules.

export const skipped = flow({ name: "skipped" }, () => Completed({ message: "nothing to do", name: "Skipped" }));

export const raises = flow({ name: "raises" }, (word = "bad input") => {
  throw new TypeError(word);
});

export const failedState = flow({ name: "failed-state" }, () => Failed({ message: "chose to fail" }));

const failIf = task({ name: "fail_if" }, (fail, label) => {
  if (fail) throw new Error(`${label} failed`);
  return label;
});

// A handled task failure does not fail the flow.
export const handled = flow({ name: "handled" }, () => {
  const state = failIf.with({ returnState: true }).call(true, "first");
  return state.isFailed() ? "recovered" : "unexpected";
});

// Retries.

const flaky = task({ name: "flaky", retries: 3, retryDelaySeconds: [0.2, 0.4] }, (failTimes) => {
  const attempt = runtime.taskRun.runCount;
  if (attempt <= failTimes) throw new Error(`attempt ${attempt} failed`);
  return attempt;
});

export const retryFlow = flow({ name: "retry-flow", parameters: { fail_times: { type: "integer" } } },
  (fail_times) => flaky(fail_times));

const picky = task({
  name: "picky",
  retries: 3,
  retryDelaySeconds: exponentialBackoff(0.01),
  retryConditionFn: (t, run, state) => state.message.includes("transient"),
}, (kind) => {
  throw new Error(`${kind} trouble`);
});

export const retryConditionFlow = flow({ name: "retry-condition-flow" }, (kind) => picky(kind));

// Caching.

const square = task({ name: "square", cachePolicy: INPUTS, cacheExpiration: 3600 }, (x) => {
  getRunLogger().info(`computing square(${x})`);
  return x * x;
});

const keyed = task({ name: "keyed", cacheKeyFn: taskInputHash }, (x) => {
  getRunLogger().info(`computing keyed(${x})`);
  return x + 100;
});

export const cached = flow({ name: "cached" }, (x) => [square(x), square(x), keyed(x), keyed(x)]);

// Maps and futures.

const double = task({ name: "double" }, (x) => 2 * x);
const add = task({ name: "add" }, (x, y) => x + y);

export const mapFlow = flow({ name: "map-flow", parameters: { n: { type: "integer" } } },
  (n) => double.map([...Array(n).keys()]).result().reduce((a, b) => a + b, 0));

export const futuresFlow = flow({ name: "futures-flow" }, () => {
  const a = double.submit(3);
  const b = add.submit(a, 10); // a future as an argument is resolved
  const c = add.with({ waitFor: [b] }).submit(1, 1);
  const mapped = add.map([1, 2, 3], unmapped(100));
  const failed = failIf.submit(true, "upstream");
  const after = add.with({ waitFor: [allowFailure(failed)] }).submit(5, 5);
  const blocked = add.submit(failed, 1);
  return {
    b: b.result(),
    c: c.result(),
    mapped: mapped.result(),
    after: after.result(),
    failed: failed.state.isFailed(),
    blocked: blocked.state.type,
    state: a.state.name,
  };
});

const total = task({ name: "total" }, (xs) => xs.reduce((a, b) => a + b, 0));

// Futures passed to submit and map resolve on the host: a list of futures element by
// element, a mapped array of futures one run each.
const busy = task({ name: "busy" }, (ms) => {
  const start = Date.now();
  while (Date.now() - start < ms) {
    // busy: the sandbox has no sleep for a synchronous task
  }
  return [start, Date.now()];
});
const spanLength = task({ name: "span_length" }, (span) => span[1] - span[0]);

export const futuresOnHost = flow({ name: "futures-on-host" }, () => {
  const up = busy.submit(1500);
  const down = spanLength.submit(up); // returns at once: the host waits for `up`
  const wentOn = Date.now();
  const doubled = [0, 1, 2].map((i) => double.submit(i));
  const summed = total.submit(doubled);
  const keyed = add.submit(doubled[2], 100);
  return {
    wentOn: wentOn < up.result()[1],
    span: down.result() >= 1500,
    total: summed.result(),
    keyed: keyed.result(),
    remapped: double.map(doubled).result(),
  };
});

// Subflows.

export const child = flow({ name: "child", flowRunName: "child-{name}" }, (name) => `hello ${name}`);

export const parent = flow({ name: "parent" }, (names) => names.map((name) => child(name)));

// Artifacts, logs, prints, variables, secrets, runtime.

const shout = task({ name: "shout", logPrints: true }, (word) => {
  console.log(`SHOUT ${word.toUpperCase()}`);
  return word.toUpperCase();
});

export const reporting = flow({ name: "reporting", logPrints: true, flowRunName: "reporting-{day}" }, (day = "monday") => {
  const logger = getRunLogger();
  logger.info(`info from ${runtime.flowRun.flowName}`);
  logger.warning("a warning");
  console.log("printed by the flow");
  shout("hey");
  createMarkdownArtifact("# Report\n\nAll good.", { key: "js-report", description: "A report" });
  createTableArtifact([{ a: 1, b: 2 }, { a: 3, b: 4 }], { key: "js-table" });
  createLinkArtifact("https://example.com", { linkText: "Example", key: "js-link" });
  const progress = createProgressArtifact(10, { key: "js-progress" });
  updateProgressArtifact(progress, 100);
  let secret;
  try {
    secret = Secret.load("missing").get();
  } catch (error) {
    secret = error.message;
  }
  return {
    name: runtime.flowRun.name,
    flow: runtime.flowRun.flowName,
    parameters: runtime.flowRun.parameters,
    variable: Variable.get("greeting", "no variable"),
    secret,
  };
});

// Async code.

const asyncDouble = task({ name: "async_double" }, async (x) => {
  await new Promise((resolve) => setTimeout(resolve, 10));
  return 2 * x;
});

export const asyncFlow = flow({ name: "async-flow" }, async (x) => {
  const first = await asyncDouble(x);
  await null;
  const second = await asyncDouble(first);
  return second + 1;
});

// Timeouts.

const spin = task({ name: "spin", timeoutSeconds: 0.5 }, () => {
  for (;;) {
    // Spins until the host stops it.
  }
});

export const timeoutFlow = flow({ name: "timeout-flow" }, () => spin());

// Hostile code: each fails its own run only.

export const steady = flow({ name: "steady" }, (n) => double.map([...Array(n).keys()]).result().reduce((a, b) => a + b, 0));

export const infiniteLoop = flow({ name: "infinite-loop" }, () => {
  let i = 0;
  for (;;) i++;
});

// Typed arrays grow the linear memory in big steps: the limit is reached in a few
// milliseconds of CPU, not after the collector thrashes over millions of small objects.
export const memoryBomb = flow({ name: "memory-bomb" }, () => {
  const hog = [];
  for (;;) hog.push(new Uint8Array(4 << 20).fill(7));
});

export const deepRecursion = flow({ name: "deep-recursion" }, () => {
  const down = (n) => down(n + 1) + 1;
  return down(0);
});

const huge = task({ name: "huge" }, (megabytes) => "x".repeat(megabytes * 1024 * 1024));

export const hugeResult = flow({ name: "huge-result" }, (megabytes) => huge(megabytes).length);

// Prefect's remaining options: per-call options, run-name functions, task runners, and
// global concurrency limits.

const flakyTwice = task({ name: "flaky_twice" }, () => {
  if (runtime.taskRun.runCount < 3) throw new Error(`attempt ${runtime.taskRun.runCount} fails`);
  return runtime.taskRun.runCount;
});

export const withOptionsFlow = flow({ name: "with-options-flow" }, () =>
  flakyTwice.withOptions({ retries: 2, name: "flaky-patient", taskRunName: "patient", cachePolicy: NONE }).call());

const rowName = () => `row-${runtime.taskRun.parameters.id}`;
const loadRow = task({ name: "load_row", taskRunName: rowName }, (id) => runtime.taskRun.name);

export const namedByFunction = flow(
  { name: "named-by-function", flowRunName: () => `report-for-${runtime.flowRun.parameters.region}` },
  (region) => [runtime.flowRun.name, loadRow(7)],
);

const stamp = task({ name: "stamp" }, (i) => {
  const start = Date.now();
  while (Date.now() - start < 50) { /* busy: the sandbox has no sleep */ }
  return [i, start, Date.now()];
});

export const sequentialRunner = flow({ name: "sequential-runner", taskRunner: new SequentialTaskRunner() },
  () => stamp.map([0, 1, 2]).result());

export const limitedBlock = flow({ name: "limited-block" }, (timeout) => {
  try {
    return concurrency("db", () => {
      rateLimit("api");
      // Given back on return: a second block can take the only slot at once.
      return "held";
    }, { timeoutSeconds: timeout }) + concurrency("db", () => " twice", { timeoutSeconds: 1 });
  } catch (error) {
    if (error instanceof AcquireConcurrencySlotTimeoutError) return `gave up: ${error.message}`;
    throw error;
  }
});

// Transactions: the seeds' write rolled back when the quality test fails, and a key
// that makes the work idempotent.

const writeSideEffect = task({
  name: "write_side_effect",
  onCommit: (txn) => getRunLogger().info(`committed ${txn.get("path", "-")}`),
  onRollback: [(txn) => getRunLogger().info(`rolled back: deleted ${txn.get("path")}`)],
}, (contents) => contents.length);

const qualityTest = task({ name: "quality_test" }, (contents) => {
  if (contents.split("\n").length < 2) throw new Error("Not enough data!");
});

export const transactional = flow({ name: "transactional" }, (contents) => transaction((txn) => {
  txn.set("path", "side-effect.txt");
  const n = writeSideEffect(contents);
  qualityTest(contents);
  return n;
}));

export const loadOnce = flow({ name: "load-once" }, (key) => transaction({ key }, (txn) => {
  if (txn.isCommitted()) return "skipped";
  writeSideEffect(key);
  return "loaded";
}));

// Prefect's `task.delay()`: a background run of a task; returns its id at once.
export const delayed = flow({ name: "delayed" }, (contents) => writeSideEffect.delay(contents));

// Plugins: tasks of the workspace's `toolkit` plugin (tests/guests/toolkit), called by name.

const greet = plugin("toolkit/greet");
const twice = plugin("toolkit/double");
const flakyPlugin = plugin("toolkit@1/flaky");

export const pluginCalls = flow({ name: "plugin-calls" }, (names) => {
  const first = greet({ name: names[0] });
  const submitted = greet.submit({ name: names[1], punctuation: "?" });
  const mapped = greet.map({ name: names, punctuation: unmapped(".") });
  // A future as an argument: the host starts the second run with the first one's value.
  const quadrupled = twice.with({ waitFor: [submitted] }).call({ x: twice.submit({ x: 3 }) });
  // `flaky` completes on its third attempt with the plugin's own retries (a plain call
  // replaces none of its options); a call with `retries: 0` fails on the first.
  const patient = flakyPlugin.with({ returnState: true }).call();
  const hasty = flakyPlugin.with({ returnState: true, retries: 0, taskRunName: "hasty", tags: ["hasty"] }).call();
  return {
    first,
    submitted: submitted.result(),
    mapped: mapped.result(),
    quadrupled,
    patient: patient.result(),
    hasty: hasty.type,
  };
});

// Calls one plugin task by the name given (malformed ones throw a TypeError).
// (Not `task`: the bundler renames a parameter that shadows an import.)
export const callPlugin = flow({ name: "call-plugin" }, (reference, args) => plugin(reference)(args));
