// The SDK's parts that need no host: parameters, schemas, option checks, hashes, states,
// and flows and tasks run as plain functions outside a component.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  flow, task, unmapped, exponentialBackoff, INPUTS, Completed, Failed, State, StateType, flowName,
  taskInputHash,
} from "../src/index.js";
import { SequentialTaskRunner, ThreadPoolTaskRunner } from "../src/task_runners.js";
import { parameterNames, parametersSchema, bind, positional } from "../src/params.js";
import { sha256Hex, canonicalJson } from "../src/hash.js";
import { finalState } from "../src/flows.js";
import { guest } from "../src/guest.js";
import { setHost } from "../src/host.js";

test("parameter names come from the function's source", () => {
  const names = (fn) => parameterNames(fn).map((p) => `${p.name}${p.hasDefault ? "=" : ""}`);
  assert.deepEqual(names((a, b = 1) => a + b), ["a", "b="]);
  assert.deepEqual(names(function f(x, /* c, */ y = ")", z = [1, 2]) {}), ["x", "y=", "z="]);
  assert.deepEqual(names(async (name = "world") => name), ["name="]);
  assert.deepEqual(names((x) => x), ["x"]);
  assert.deepEqual(names(() => 1), []);
  assert.deepEqual(names(x => x), ["x"]); // prettier-ignore
  assert.deepEqual(names({ m(a, b) {} }.m), ["a", "b"]);
  assert.throws(() => parameterNames(({ a }) => a), /destructured parameter/);
  assert.throws(() => parameterNames((...rest) => rest), /rest parameter/);
});

test("the schema requires parameters without defaults and allows no others", () => {
  const params = parameterNames((name, count = 2) => name.repeat(count));
  assert.deepEqual(parametersSchema(params, { count: { type: "integer" } }, "t"), {
    type: "object",
    properties: { name: {}, count: { type: "integer" } },
    additionalProperties: false,
    required: ["name"],
  });
  assert.throws(() => parametersSchema(params, { nope: {} }, "flow f"), /describes `nope`/);
  assert.deepEqual(bind(params, ["a"], "t"), { name: "a" });
  assert.throws(() => bind(params, [1, 2, 3], "t"), /takes 2 argument/);
  assert.deepEqual(positional(params, { count: 3 }), [undefined, 3]);
});

test("options are checked when declared", () => {
  assert.throws(() => task({ name: "a1", retries: -1 }, () => 1), /retries must be a whole number/);
  assert.throws(() => task({ name: "a2", retryDelaySeconds: "soon" }, () => 1), /retryDelaySeconds/);
  assert.throws(() => task({ name: "a3", cachePolicy: "inputs" }, () => 1), /cachePolicy must be INPUTS/);
  assert.throws(() => task({ name: "a4", taskRunName: 42 }, () => 1), /template over the parameters/);
  assert.throws(() => flow({ name: "a8", taskRunner: "threads" }, () => 1), /taskRunner must be/);
  assert.throws(() => new ThreadPoolTaskRunner(0), /maxWorkers/);
  const named = task({ name: "a9", taskRunName: () => "x" }, () => 1).task.options.toWit();
  assert.equal(named.hasRunNameFn, true);
  assert.equal(named.runNameTemplate, undefined);
  const runner = flow({ name: "a10", taskRunner: new SequentialTaskRunner() }, () => 1);
  assert.equal(runner.flow.options.toWit().maxWorkers, 1);
  assert.throws(() => task({ name: "a5", flowRunName: "x" }, () => 1), /option of flows/);
  assert.throws(() => flow({ name: "a6", cacheKeyFn: () => "k" }, () => 1), /option of tasks/);
  assert.throws(() => task({ name: "a7", retires: 2 }, () => 1), /unknown option `retires`/);
  assert.throws(() => task({}, () => 1), /anonymous function needs a name/);
  const t = task({ name: "opts", retries: 3, retryDelaySeconds: exponentialBackoff(2), cachePolicy: INPUTS,
    cacheExpiration: 60, tags: ["b", "a", "b"], taskRunName: "opts-{x}" }, (x) => x);
  const wit = t.task.options.toWit();
  assert.deepEqual(wit.retryDelaySeconds, [2, 4, 8]);
  assert.equal(wit.cachePolicy, "inputs");
  assert.deepEqual(wit.tags, ["a", "b"]);
  assert.equal(wit.runNameTemplate, "opts-{x}");
  const keyed = task({ name: "keyed", cacheKeyFn: taskInputHash }, (x) => x);
  assert.equal(keyed.task.options.toWit().cachePolicy, "custom");
});

test("two flows or tasks with one name are refused", () => {
  task({ name: "twice" }, () => 1);
  assert.throws(() => task({ name: "twice" }, () => 2), /two tasks are named `twice`/);
});

test("flow names follow Prefect's", () => {
  assert.equal(flowName("myFlow"), "my-flow");
  assert.equal(flowName("my_flow"), "my-flow");
  const f = flow(function helloWorld() { return 1; });
  assert.equal(f.flow.name, "hello-world");
});

test("sha256 and canonical JSON", () => {
  assert.equal(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(sha256Hex("a".repeat(1_000_000)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  assert.equal(sha256Hex("é"), "4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c");
  assert.equal(
    sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  assert.equal(canonicalJson({ b: 1, a: { d: 2, c: [3] } }), '{"a":{"c":[3],"d":2},"b":1}');
});

test("outside a component, flows and tasks run as plain functions", () => {
  const double = task({ name: "local-double" }, (x) => 2 * x);
  const sum = flow({ name: "local-sum" }, (n = 3) => double.map([...Array(n).keys()]).result().reduce((a, b) => a + b, 0));
  assert.equal(double(4), 8);
  assert.equal(double.submit(5).result(), 10);
  assert.equal(sum(), 6);
  const scaled = task({ name: "local-scaled" }, (x, factor) => x * factor);
  assert.deepEqual(scaled.map([1, 2], unmapped(10)).result(), [10, 20]);
  assert.throws(() => scaled.map(1, 2), /needs at least one array argument/);
  assert.throws(() => scaled.map([1], [1, 2]), /same length/);
});

test("a flow's final state follows Prefect's rules", () => {
  assert.equal(finalState(42).type, StateType.COMPLETED);
  const skipped = finalState(Completed({ name: "Skipped", message: "nothing" }));
  assert.equal(skipped.name, "Skipped");
  const failed = finalState([new State(StateType.COMPLETED, { data: 1 }), Failed({ message: "no" })]);
  assert.equal(failed.type, StateType.FAILED);
  assert.equal(failed.message, "1/2 states failed.");
  assert.throws(() => Failed({ message: "bad" }).result(), /bad/);
  assert.equal(Completed({ data: 3 }).result(), 3);
});

test("the guest describes its flows and tasks, and refuses unknown ones", () => {
  setHost({});
  try {
    const manifest = guest.describe();
    assert.equal(manifest.sdk.startsWith("weir-js/"), true);
    const sum = manifest.flows.find((f) => f.name === "local-sum");
    assert.deepEqual(JSON.parse(sum.parametersSchema).properties, { n: {} });
    assert.throws(() => guest.runFlow("nope", "{}"), (e) => e.payload.kind === "unknown"
      && e.payload.message.includes("no flow named `nope`"));
    assert.throws(() => guest.runTask("local-double", "[1]"), (e) => e.payload.kind === "invalid-parameters");
    assert.equal(guest.runTask("local-double", '{"x": 21}'), "42");
    assert.throws(() => guest.runTask("local-double", '{"x": 1n}'), (e) => e.payload.kind === "invalid-parameters");
  } finally {
    setHost(null);
  }
});

test("transactions outside a run keep values, fall back to the parent and roll back on throw", async () => {
  const { transaction, getTransaction } = await import("../src/transactions.js");
  const outer = transaction((parent) => {
    parent.set("key", [1, 2, 3]);
    transaction((child) => {
      assert.equal(getTransaction(), child);
      assert.deepEqual(child.get("key"), [1, 2, 3]);
    });
    parent.get("key").push(4);
    assert.deepEqual(parent.get("key"), [1, 2, 3]);
    assert.equal(parent.get("missing", null), null);
    assert.throws(() => parent.get("missing"), /unknown key: missing/);
    return parent;
  });
  assert.ok(outer.isCommitted());
  assert.equal(getTransaction(), null);
  let failed;
  assert.throws(() => transaction({ key: "k" }, (txn) => {
    failed = txn;
    throw new Error("boom");
  }), /boom/);
  assert.ok(failed.isRolledBack());
  assert.throws(() => transaction({ commitMode: "SOMETIMES" }, () => 1), /commitMode must be/);
  assert.throws(() => task({ name: "t", onCommit: [1] }, () => 1), /onCommit hooks must be functions/);
  assert.throws(() => flow({ name: "f-txn", onRollback: () => 1 }, () => 1), /is an option of tasks/);
});
