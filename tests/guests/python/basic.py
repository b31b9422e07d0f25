"""The Python test guest: one flow per behaviour the end-to-end tests check (states,
retries, timeouts, caching, maps, subflows, futures, artifacts, logs, parameters, hooks,
pauses, async code, the standard library, sockets denied, plugins, and hostile code)."""

import asyncio
import dataclasses
import datetime
import sys
import time
from typing import Any, Literal, Optional, TypedDict

from weir import (
    Completed,
    Failed,
    allow_failure,
    flow,
    get_run_logger,
    pause_flow_run,
    plugin,
    run_deployment,
    suspend_flow_run,
    task,
    unmapped,
)
from weir.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from weir.blocks.system import Secret
from weir.cache_policies import INPUTS
from weir.input import RunInput
from weir.runtime import flow_run, task_run
from weir.task_runners import SequentialTaskRunner
from weir.tasks import exponential_backoff, task_input_hash
from weir.variables import Variable


# States and final-state rules.


@flow
def skipped() -> Completed:
    return Completed(message="nothing to do", name="Skipped")


@flow
def raises(word: str = "bad input") -> None:
    raise ValueError(word)


@task
def fail_if(fail: bool, label: str) -> str:
    if fail:
        raise KeyError(label)
    return label


@flow
def returns_states() -> list:
    return [fail_if(False, "a", return_state=True), fail_if(True, "b", return_state=True)]


@flow
def handled() -> str:
    try:
        fail_if(True, "lost")
    except KeyError as error:
        return f"handled {error!r}"
    return "not raised"


# Retries.


@task(retries=3, retry_delay_seconds=[0.2, 0.4])
def flaky(fail_times: int) -> int:
    attempt = task_run.run_count
    if attempt <= fail_times:
        raise RuntimeError(f"attempt {attempt} failed")
    return attempt


@flow
def retry_flow(fail_times: int) -> int:
    return flaky(fail_times)


def _report_name() -> str:
    return f"report-for-{flow_run.parameters['region']}"


def _row_name() -> str:
    return f"row-{task_run.parameters['row']}"


@task(task_run_name=_row_name)
def load_row(row: int) -> str:
    return task_run.name


@flow(flow_run_name=_report_name)
def named_by_callable(region: str) -> list:
    """Prefect's callable run names, evaluated as each run starts."""
    return [flow_run.name, load_row(7)]


@task
def stamp(i: int) -> list:
    start = time.time()
    time.sleep(0.05)
    return [i, start, time.time()]


@flow(task_runner=SequentialTaskRunner())
def sequential_runner() -> list:
    """Prefect's SequentialTaskRunner: submitted tasks one at a time, in order."""
    return [f.result() for f in stamp.map(range(3))]


@flow
def limited_block(timeout: float) -> str:
    """Prefect's ``with concurrency(...)``, with a deadline on the wait."""
    from weir.concurrency.sync import AcquireConcurrencySlotTimeoutError, concurrency, rate_limit

    try:
        with concurrency("db", occupy=1, timeout_seconds=timeout):
            rate_limit("api")
            return "held"
    except AcquireConcurrencySlotTimeoutError as error:
        return f"gave up: {error}"


@flow
def with_options_flow(fail_times: int) -> int:
    """Prefect's ``with_options`` inside a run: more retries, no delay, another name."""
    return flaky.with_options(retries=5, retry_delay_seconds=0, name="flaky-patient").submit(fail_times).result()


def only_transient(task, task_run, state) -> bool:
    try:
        state.result()
    except TimeoutError:
        return True
    except ValueError:
        return False
    return True


@task(retries=3, retry_condition_fn=only_transient, retry_delay_seconds=exponential_backoff(0.01))
def picky(kind: str) -> None:
    if kind == "transient":
        raise TimeoutError("transient glitch")
    raise ValueError("bad input")


@flow
def retry_condition_flow(kind: str) -> None:
    picky(kind)


# Timeouts.


@task(timeout_seconds=0.5)
def spin() -> None:
    while True:
        pass


@flow
def timeout_flow() -> None:
    spin()


@task(timeout_seconds=0.5)
def sleeper() -> None:
    time.sleep(30)


@flow
def sleep_timeout_flow() -> None:
    sleeper()


# Caching.


@task(cache_policy=INPUTS, cache_expiration=datetime.timedelta(hours=1))
def square(x: int) -> int:
    get_run_logger().info(f"computing square({x})")
    return x * x


@task(cache_key_fn=task_input_hash)
def keyed(x: int) -> int:
    get_run_logger().info(f"computing keyed({x})")
    return x + 100


@flow
def cached(x: int) -> list:
    return [square(x), square(x), keyed(x), keyed(x)]


# Maps and futures.


@task
def double(x: int) -> int:
    return 2 * x


@task
def add(x: int, y: int) -> int:
    return x + y


@flow
def map_flow(n: int) -> int:
    return sum(double.map(range(n)).result())


@flow
def futures_flow() -> dict:
    a = double.submit(3)
    b = add.submit(a, 10)  # a future as an argument is resolved
    c = add.submit(1, 1, wait_for=[b])
    mapped = add.map([1, 2, 3], unmapped(100))
    failed = fail_if.submit(True, "upstream")
    after = add.submit(5, 5, wait_for=[allow_failure(failed)])
    blocked = add.submit(failed, 1)
    return {
        "b": b.result(),
        "c": c.result(),
        "mapped": [f.result() for f in mapped],
        "after": after.result(),
        "failed": failed.state.is_failed(),
        "blocked": blocked.state.type.value,
        "state": a.state.name,
    }


@task
def slow_span(millis: int) -> list:
    start = time.time()
    time.sleep(millis / 1000)
    return [start, time.time()]


@task
def span_length(span: list) -> float:
    return span[1] - span[0]


@task
def total(xs: list) -> int:
    return sum(xs)


@flow
def futures_on_host() -> dict:
    up = slow_span.submit(300)
    down = span_length.submit(up)  # returns at once: the host waits for `up`
    went_on = time.time()
    doubled = [double.submit(i) for i in range(3)]
    summed = total.submit(doubled)  # a list of futures, each resolved on the host
    keyed = add.submit(x=doubled[2], y=a_constant())
    return {
        "went_on": went_on < up.result()[1],
        "span": down.result() > 0.2,
        "total": summed.result(),
        "keyed": keyed.result(),
        "remapped": [f.result() for f in double.map(doubled)],
    }


def a_constant() -> int:
    return 100


# Subflows.


@flow(flow_run_name="child-{name}")
def child(name: str) -> str:
    return f"hello {name}"


@flow
def parent(names: list[str]) -> list[str]:
    return [child(name) for name in names]


# Artifacts, logs, prints, variables, secrets, runtime.


@task(log_prints=True)
def shout(word: str) -> str:
    print(f"SHOUT {word.upper()}")
    return word.upper()


@flow(log_prints=True, flow_run_name="reporting-{day}")
def reporting(day: str = "monday") -> dict:
    logger = get_run_logger()
    logger.info("info from %s", flow_run.flow_name)
    logger.warning("a warning")
    logger.debug("a debug line that is not logged")
    print("printed by the flow")
    shout("hey")
    create_markdown_artifact("# Report\n\nAll good.", key="py-report", description="A report")
    create_table_artifact([{"a": 1, "b": 2}, {"a": 3, "b": 4}], key="py-table")
    create_link_artifact("https://example.com", link_text="Example", key="py-link")
    progress = create_progress_artifact(10.0, key="py-progress")
    update_progress_artifact(progress, 100.0)
    try:
        secret = Secret.load("missing").get()
    except ValueError as error:
        secret = str(error)
    return {
        "name": flow_run.name,
        "flow": flow_run.flow_name,
        "parameters": flow_run.parameters,
        "variable": Variable.get("greeting", default="no variable"),
        "secret": secret,
    }


# Parameters from type hints.


@dataclasses.dataclass
class Window:
    days: int
    label: str = "window"


class Point(TypedDict):
    x: int
    y: float


@flow
def typed(
    n: int,
    ratio: float,
    flag: bool,
    window: Window,
    when: datetime.date,
    mode: Literal["fast", "slow"] = "fast",
    name: Optional[str] = None,
    point: Optional[Point] = None,
    at: Optional[datetime.datetime] = None,
) -> str:
    assert isinstance(window, Window), type(window)
    assert isinstance(when, datetime.date), type(when)
    assert at is None or isinstance(at, datetime.datetime), type(at)
    where = None if point is None else f"{point['x']!r},{point['y']!r}"
    hour = None if at is None else at.hour
    return f"{n}|{ratio}|{flag}|{window.days}|{window.label}|{when:%A}|{mode}|{name}|{where}|{hour}"


# Hooks.


def on_done(flow, run, state):
    get_run_logger().info(f"completion hook: {flow.name} {state.name}")


def on_bad(task, run, state):
    get_run_logger().info(f"failure hook: {task.name} {state.type.value}")


def on_start(flow, run, state):
    get_run_logger().info(f"running hook: {flow.name} {state.name}")


@task(on_failure=[on_bad])
def hooked_task() -> None:
    raise RuntimeError("hooked task fails")


@flow(on_completion=[on_done], on_running=[on_start])
def hooked() -> str:
    state = hooked_task(return_state=True)
    return state.type.value


# Pauses.


class Approval(RunInput):
    approved: bool
    reviewer: str = "nobody"


@task
def prepare(x: int) -> int:
    return x + 1


@flow
def approval(x: int) -> str:
    y = prepare(x)
    answer = pause_flow_run(wait_for_input=Approval, timeout=60)
    return f"{y} approved={answer.approved} by {answer.reviewer}"


@flow
def suspended(x: int) -> str:
    y = prepare(x)
    answer = suspend_flow_run(wait_for_input=Approval, timeout=60)
    return f"{y} approved={answer.approved} by {answer.reviewer}"


# Replay: a flow that fails after its tasks, and is retried.


@flow(retries=1)
def replayed(x: int) -> int:
    y = prepare(x)
    if flow_run.run_count == 1:
        # The first execution fails after its task; the retry replays the task.
        raise RuntimeError("fail once after the task")
    return y


# Async code and the standard library.


@task
async def async_double(x: int) -> int:
    await asyncio.sleep(0.01)
    return 2 * x


@flow
async def async_flow(x: int) -> int:
    first = await async_double(x)
    results = await asyncio.gather(asyncio.sleep(0.01, result=1), asyncio.sleep(0.02, result=2))
    return first + sum(results)


@task
def uses_asyncio_run() -> int:
    async def inner() -> int:
        await asyncio.sleep(0.01)
        return 7

    return asyncio.run(inner())


@task
def stdlib_inside() -> str:
    import base64
    import decimal
    import hashlib
    import json
    import statistics
    import uuid

    u = uuid.uuid4()
    digest = hashlib.sha256(b"weir").hexdigest()[:8]
    parsed = datetime.datetime.strptime("2024-03-01", "%Y-%m-%d")
    return json.dumps([len(str(u)), digest, base64.b64encode(b"x").decode(),
                       str(decimal.Decimal("1.10") * 2), statistics.mean([1, 2, 3]),
                       parsed.strftime("%A"), "é".encode("latin-1").decode("latin-1")])


@task
def connect() -> str:
    import socket

    outcomes = []
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", 80))
        outcomes.append("connected")
    except OSError as error:
        outcomes.append(type(error).__name__)
    try:
        socket.getaddrinfo("example.com", 443)
        outcomes.append("resolved")
    except OSError as error:
        outcomes.append(type(error).__name__)
    return "/".join(outcomes)


@flow
def runtime_flow() -> list:
    return [uses_asyncio_run(), stdlib_inside(), connect()]


# Hostile code: each fails its own run only.


@flow
def steady(n: int) -> int:
    return sum(double.map(range(n)).result())


@flow
def infinite_loop() -> None:
    while True:
        pass


@flow
def memory_bomb() -> int:
    hoard = []
    while True:
        hoard.append(bytearray(1 << 20))


@flow
def deep_recursion() -> int:
    sys.setrecursionlimit(10**9)

    def down(n: int) -> int:
        return down(n + 1) + 1

    return down(0)


@task
def huge(megabytes: int) -> str:
    return "x" * (megabytes << 20)


@flow
def huge_result(megabytes: int) -> int:
    return len(huge(megabytes))


@flow
def failed_state() -> Failed:
    return Failed(message="chose to fail")


# Runs of other deployments (Prefect's run_deployment).


@flow
def launcher(target: str, n: int) -> str:
    return run_deployment(target, parameters={"n": n}).id


# Durable execution: five steps, each a task that takes `millis`; a server killed with -9
# between them replays the completed ones on restart.


@task
def durable_step(i: int, millis: int) -> int:
    time.sleep(millis / 1000)
    return i


@flow
def durable_five(millis: int) -> int:
    return sum(durable_step(i, millis) for i in range(5))


# ---- transactions -----------------------------------------------------------------------

@task
def write_side_effect(contents: str) -> int:
    return len(contents)


@write_side_effect.on_rollback
def delete_side_effect(txn) -> None:
    get_run_logger().info(f"rolled back: deleted {txn.get('path')}")


@write_side_effect.on_commit
def announce_side_effect(txn) -> None:
    get_run_logger().info(f"committed {txn.get('path', '-')}")


@task
def quality_test(contents: str) -> None:
    if len(contents.splitlines()) < 2:
        raise ValueError("Not enough data!")


@flow
def transactional(contents: str) -> int:
    """The seeds' transaction: the write rolls back when the quality test fails."""
    from weir.transactions import transaction

    with transaction() as txn:
        txn.set("path", "side-effect.txt")
        n = write_side_effect(contents)
        quality_test(contents)
    return n


@flow
def load_once(key: str) -> str:
    """Idempotency by key: the second run returns early."""
    from weir.transactions import get_transaction, transaction

    with transaction(key=key) as txn:
        assert get_transaction() is txn
        if txn.is_committed():
            return "skipped"
        write_side_effect(key)
        return "loaded"


@flow
def delayed(contents: str) -> str:
    """Prefect's ``task.delay()``: a background run of a task; returns its id at once."""
    return write_side_effect.delay(contents)


# Plugins: tasks of the workspace's `toolkit` plugin (tests/guests/toolkit), called by name.

greet = plugin("toolkit/greet")
twice = plugin("toolkit/double")
flaky_plugin = plugin("toolkit@1/flaky")


@flow
def plugin_calls(names: list[str]) -> dict:
    first = greet(name=names[0])
    submitted = greet.submit({"name": names[1], "punctuation": "?"})
    mapped = greet.map(name=names, punctuation=unmapped("."))
    # A future as an argument: the host starts the second run with the first one's value.
    quadrupled = twice(x=twice.submit(x=3), wait_for=[submitted])
    # `flaky` completes on its third attempt with the plugin's own retries (a plain call
    # replaces none of its options); a call with `retries=0` fails on the first.
    patient = flaky_plugin(return_state=True)
    hasty = flaky_plugin.with_options(retries=0, task_run_name="hasty", tags=["hasty"])(return_state=True)
    return {
        "first": first,
        "submitted": submitted.result(),
        "mapped": mapped.result(),
        "quadrupled": quadrupled,
        "patient": patient.result(),
        "hasty": hasty.type.value,
    }


@flow
def call_plugin(reference: str, arguments: dict) -> Any:
    """Calls one plugin task by the name given (malformed ones raise ValueError)."""
    return plugin(reference)(arguments)
