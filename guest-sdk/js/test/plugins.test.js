// Plugin calls (`plugin("toolkit/greet")`) against a stand-in for the host's `tasks`
// interface: the task name and the arguments that reach it, the call options, and the
// errors thrown before a call is made.
import { test } from "node:test";
import assert from "node:assert/strict";

import { plugin, unmapped, allowFailure, NONE, INPUTS, StateType } from "../src/index.js";
import { setHost, inFrame } from "../src/host.js";

const completed = (taskRunId, value) => ({ taskRunId, state: { type: "completed", name: "Completed" }, value });

// The `tasks` interface: records each call; every run's value is its arguments.
function standIn() {
  const calls = [];
  const runId = () => `run-${calls.length}`;
  const handle = (id, value) => ({ taskRunId: () => id, wait: () => completed(id, value) });
  return {
    calls,
    call(task, json, options) {
      calls.push({ kind: "call", task, args: JSON.parse(json), options });
      return completed(runId(), json);
    },
    submit(task, json, options) {
      calls.push({ kind: "submit", task, args: JSON.parse(json), options });
      return handle(runId(), json);
    },
    map(task, jsons, options) {
      calls.push({ kind: "map", task, args: jsons.map((j) => JSON.parse(j)), options });
      return jsons.map((json, i) => handle(`${runId()}.${i}`, json));
    },
  };
}

// Runs `body` inside a flow run (or a task attempt) with the stand-in host.
function inRun(body, kind = "flow") {
  const tasks = standIn();
  setHost({ tasks });
  try {
    inFrame(kind, "caller", {}, () => body(tasks));
  } finally {
    setHost(null);
  }
}

test("references of both shapes are accepted, others refused when declared", () => {
  for (const reference of ["toolkit/greet", "toolkit@1/greet", "http@12/request", "my.tools-2/a/b"]) {
    assert.equal(plugin(reference).reference, reference);
  }
  for (const [reference, why] of [
    ["nope", ""],
    ["", ""],
    ["/greet", "a plugin's name is"],
    ["sp ace/greet", "a plugin's name is"],
    ["../greet", "a plugin's name is"],
    ["toolkit@0/greet", "whole number from 1"],
    ["toolkit@two/greet", "whole number from 1"],
    ["toolkit@/greet", "whole number from 1"],
    ["toolkit/", "names no task"],
  ]) {
    assert.throws(() => plugin(reference), (e) => e instanceof TypeError
      && e.message.startsWith(`${JSON.stringify(reference)} is not a plugin task${why ? " (" : ":"}`)
      && e.message.includes(why)
      && e.message.includes('"<plugin>/<task>"') && e.message.includes('"<plugin>@<version>/<task>"'), reference);
  }
  assert.throws(() => plugin(42), /named by a string/);
});

test("a call sends the reference and one object of arguments", () => inRun((host) => {
  const greet = plugin("toolkit/greet");
  assert.deepEqual(greet({ name: "Ada" }), { name: "Ada" });
  const { kind, task, args, options } = host.calls.at(-1);
  assert.deepEqual([kind, task, args], ["call", "toolkit/greet", { name: "Ada" }]);
  assert.deepEqual(options, { waitFor: [], cacheKey: undefined, tags: [], overrides: {} });
  assert.deepEqual(plugin("toolkit@1/greet")(), {});
  assert.equal(host.calls.at(-1).task, "toolkit@1/greet");
  const state = greet.with({ returnState: true }).call({ name: "Grace" });
  assert.equal(state.type, StateType.COMPLETED);
  assert.deepEqual(state.result(), { name: "Grace" });

  for (const args of [["Ada"], [{ name: "Ada" }, "!"], [["Ada"]]]) {
    assert.throws(() => greet(...args), /one object keyed by the task's parameters/);
    const failed = greet.with({ returnState: true }).call(...args);
    assert.equal(failed.failure.kind, "invalid-parameters");
    assert.ok(greet.submit(...args).state.isFailed());
  }
  assert.equal(host.calls.length, 3, "no call with bad arguments reached the host");
}));

test("a plugin called in a task goes through the host too", () => inRun((host) => {
  assert.deepEqual(plugin("toolkit/double")({ x: 2 }), { x: 2 });
  assert.equal(host.calls.at(-1).task, "toolkit/double");
}, "task"));

test("submit returns a future, and futures are arguments", () => inRun((host) => {
  const double = plugin("toolkit/double");
  const first = double.submit({ x: 3 });
  assert.deepEqual(host.calls.at(-1).args, { x: 3 });
  assert.equal(host.calls.at(-1).kind, "submit");
  assert.equal(first.taskRunId, "run-1");
  assert.deepEqual(first.result(), { x: 3 });

  // A future still running is an input the host resolves: its place is sent empty.
  const pending = double.submit({ x: 1 });
  const chained = double.submit({ x: pending, label: "chained" });
  let { args, options } = host.calls.at(-1);
  assert.deepEqual(args, { x: null, label: "chained" });
  assert.deepEqual(options.waitFor, [{ taskRunId: "run-2", allowFailure: false, argument: "/x" }]);
  // A completed one is its value, and a run to wait for.
  double({ x: first });
  ({ args, options } = host.calls.at(-1));
  assert.deepEqual(args, { x: { x: 3 } });
  assert.deepEqual(options.waitFor, [{ taskRunId: "run-1", allowFailure: false, argument: undefined }]);

  double.with({ waitFor: [pending, allowFailure(chained)] }).call({ x: 1 });
  assert.deepEqual(host.calls.at(-1).options.waitFor.map((d) => [d.taskRunId, d.allowFailure]),
    [["run-2", false], ["run-3", true]]);
}));

test("map zips the object's arrays and repeats unmapped values", () => inRun((host) => {
  const greet = plugin("toolkit/greet");
  const futures = greet.map({ name: ["Ada", "Grace"], punctuation: unmapped("?") });
  const { kind, task, args, options } = host.calls.at(-1);
  assert.deepEqual([kind, task], ["map", "toolkit/greet"]);
  assert.deepEqual(args, [{ name: "Ada", punctuation: "?" }, { name: "Grace", punctuation: "?" }]);
  assert.deepEqual(options.overrides, {});
  assert.deepEqual(futures.result(), args);
  assert.deepEqual(futures.map((f) => f.taskRunId), ["run-1.0", "run-1.1"]);
  greet.map({ name: ["Alan"], tags: unmapped(["a", "b"]), excited: true });
  assert.deepEqual(host.calls.at(-1).args, [{ name: "Alan", tags: ["a", "b"], excited: true }]);
  assert.throws(() => greet.map({ name: "Ada" }), /toolkit\/greet\.map\(\) needs at least one array argument/);
  assert.throws(() => greet.map({ name: ["Ada"], punctuation: ["!", "?"] }), /same length/);
  assert.throws(() => greet.map(["Ada"]), /one object keyed by the task's parameters/);
}));

test("withOptions sends the options given, checked when given", () => inRun((host) => {
  const greet = plugin("toolkit/greet");
  greet.withOptions({ retries: 3, retryDelaySeconds: [0.5, 2], timeoutSeconds: 10, tags: ["plugins"],
    taskRunName: "greet-{name}", cachePolicy: INPUTS }).call({ name: "Ada" });
  const { options } = host.calls.at(-1);
  assert.deepEqual(options.overrides, {
    retries: 3,
    retryDelaySeconds: [0.5, 2],
    timeoutSeconds: 10,
    runNameTemplate: "greet-{name}",
    cachePolicy: "inputs",
  });
  assert.deepEqual(options.tags, ["plugins"]);
  greet.with({ name: "greeting", cachePolicy: NONE, persistResult: false }).map({ name: ["Ada"] });
  assert.deepEqual(host.calls.at(-1).options.overrides,
    { name: "greeting", cachePolicy: "none", persistResult: false });
  greet.submit({ name: "Ada" });
  assert.deepEqual(host.calls.at(-1).options.overrides, {});

  assert.throws(() => greet.withOptions({ retires: 2 }), /unknown option retires/);
  assert.throws(() => greet.withOptions({ taskRunName: () => "x" }), /template over the arguments/);
  assert.throws(() => greet.withOptions({ tags: "plugins" }), /tags must be an array/);
  assert.throws(() => greet.withOptions({ waitFor: "x" }), /waitFor must be an array/);
}));

test("outside a run a plugin cannot run", () => {
  const greet = plugin("toolkit/greet");
  const calls = [() => greet({ name: "Ada" }), () => greet.submit({ name: "Ada" }), () => greet.map({ name: ["Ada"] })];
  for (const call of calls) {
    assert.throws(call, /runs on the Weir host only/);
  }
  assert.throws(() => greet.plugin.delay([{ name: "Ada" }]), /delay\(\)/);
});
