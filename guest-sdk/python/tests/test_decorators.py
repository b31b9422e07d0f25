import asyncio
import datetime

import pytest

from weir import (
    Completed,
    Failed,
    State,
    allow_failure,
    exponential_backoff,
    flow,
    task,
    task_input_hash,
    unmapped,
)
from weir import _registry
from weir.cache_policies import INPUTS, NONE, RUN_ID, TASK_SOURCE
from weir.exceptions import MappingLengthMismatch, MappingMissingIterable, ParameterTypeError
from weir.flows import final_state
from weir.tasks import bind


def test_options_are_checked_and_normalized():
    def hook(task, run, state):
        pass

    @task(
        retries=3,
        retry_delay_seconds=exponential_backoff(backoff_factor=2),
        retry_jitter_factor=0.5,
        timeout_seconds=1.5,
        cache_policy=INPUTS,
        cache_expiration=datetime.timedelta(hours=1),
        tags=["b", "a"],
        on_failure=[hook],
        task_run_name="add-{x}",
    )
    def add(x: int) -> int:
        """Adds one."""
        return x + 1

    o = add.options
    assert o.retries == 3
    assert o.retry_delay_seconds == [2.0, 4.0, 8.0]
    assert o.retry_jitter_factor == 0.5
    assert o.timeout_seconds == 1.5
    assert o.host_cache_policy == "inputs"
    assert o.cache_expiration == 3600.0
    assert o.tags == ["a", "b"]
    assert o.template() == "add-{x}"
    assert add.description == "Adds one."
    assert list(o.hooks()) == [f"{__name__}.{hook.__qualname__}"]
    assert _registry.tasks()["add"] is add


@pytest.mark.parametrize(
    "options, message",
    [
        ({"retries": -1}, "retries"),
        ({"retry_delay_seconds": "soon"}, "retry_delay_seconds"),
        ({"timeout_seconds": -2}, "timeout_seconds"),
        ({"cache_policy": "inputs"}, "cache_policy"),
        ({"retry_jitter_factor": -1}, "retry_jitter_factor"),
        ({"on_failure": ["not callable"]}, "on_failure"),
        ({"no_such_option": 1}, "no_such_option"),
        ({"task_run_name": 42}, "run name"),
    ],
)
def test_bad_options_are_refused_when_declared(options, message):
    with pytest.raises((TypeError, ValueError), match=message):
        task(**options)(lambda: None)


def test_run_names_are_templates_or_callables_and_log_prints_inherits():
    def name_fn():
        return "named"

    named = task(task_run_name=name_fn, name="named_task")(lambda: None)
    assert named.options.run_name is name_fn
    assert named.options.template() is None
    assert task(name="plain_task")(lambda: None).options.log_prints is None
    assert task(name="quiet_task", log_prints=False)(lambda: None).options.log_prints is False


def test_task_runners_bound_a_flows_submitted_tasks():
    from weir.task_runners import SequentialTaskRunner, ThreadPoolTaskRunner

    assert flow(name="pool-flow", task_runner=ThreadPoolTaskRunner(max_workers=3))(lambda: None).max_workers == 3
    assert flow(name="seq-flow", task_runner=SequentialTaskRunner())(lambda: None).max_workers == 1
    assert flow(name="free-flow")(lambda: None).max_workers is None
    with pytest.raises(ValueError, match="max_workers"):
        ThreadPoolTaskRunner(max_workers=0)
    with pytest.raises(TypeError, match="task_runner"):
        flow(name="bad-flow", task_runner="threads")(lambda: None)
    with pytest.raises(TypeError, match="task_runner"):
        task(name="runner_task", task_runner=SequentialTaskRunner())(lambda: None)


def test_names_follow_prefect_and_collisions_are_refused():
    @flow
    def my_flow():
        pass

    @task
    def my_task():
        pass

    assert my_flow.name == "my-flow"
    assert my_task.name == "my_task"
    with pytest.raises(ValueError, match="two tasks are named"):
        task(name="my_task")(lambda: None)


def test_custom_cache_policies_and_key_functions():
    @task(cache_policy=INPUTS + TASK_SOURCE)
    def a(x: int) -> int:
        return x

    @task(cache_key_fn=task_input_hash)
    def b(x: int) -> int:
        return x

    @task(cache_policy=NONE)
    def c(x: int) -> int:
        return x

    assert a.options.host_cache_policy == "custom"
    assert b.options.host_cache_policy == "custom"
    assert c.options.host_cache_policy == "none"
    assert a._cache_key({"x": 1}) != a._cache_key({"x": 2})
    assert a._cache_key({"x": 1}) == a._cache_key({"x": 1})
    assert b._cache_key({"x": 1}) == task_input_hash(type("C", (), {"task": b})(), {"x": 1})
    assert RUN_ID.host_policy == "custom"


def test_tasks_and_flows_run_locally_outside_the_host():
    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def total(xs: list) -> int:
        futures = double.map(xs)
        first = double.submit(10)
        return sum(futures.result()) + first.result() + double(1)

    assert total([1, 2, 3]) == 12 + 20 + 2
    assert total.fn([1]) == 2 + 20 + 2


def test_map_zips_and_checks_lengths():
    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    def f():
        return [fut.result() for fut in add.map([1, 2], unmapped(10))]

    assert f() == [11, 12]
    with pytest.raises(MappingLengthMismatch):
        add.map([1, 2], [1])
    with pytest.raises(MappingMissingIterable):
        add.map(1, 2)
    with pytest.raises(ParameterTypeError, match="too many positional"):
        bind(add.fn, (1, 2, 3), {})


def test_returned_states_decide_the_final_state():
    assert final_state(5).is_completed()
    skipped = final_state(Completed(message="nothing to do", name="Skipped"))
    assert (skipped.name, skipped.message, skipped.is_completed()) == ("Skipped", "nothing to do", True)
    assert final_state(Failed(message="bad")).is_failed()
    mixed = final_state([Completed(data=1), Failed(message="no")])
    assert mixed.is_failed() and mixed.message == "1/2 states failed."
    assert final_state([Completed(data=1)]).is_completed()


def test_local_flows_raise_for_failed_states_and_return_states_on_request():
    @flow
    def skipped():
        return Completed(message="skip", name="Skipped", data=3)

    @flow
    def failing():
        raise ValueError("boom")

    assert skipped() == 3
    state = failing(return_state=True)
    assert state.is_failed() and "boom" in state.message
    with pytest.raises(ValueError, match="boom"):
        failing()
    with pytest.raises(ValueError, match="boom"):
        state.result()


def test_state_results_rebuild_exceptions():
    state = State(
        Failed().type,
        failure={
            "kind": "error",
            "message": "KeyError: 'x'",
            "details": {"exception": {"type": "builtins.KeyError", "args": ["x"]}},
        },
    )
    with pytest.raises(KeyError):
        state.result()
    assert isinstance(state.result(raise_on_failure=False), KeyError)


def test_async_flows_and_tasks_run_locally():
    @task
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x * 3

    @flow
    async def main(x: int) -> int:
        return await fetch(x)

    assert main(2) == 6


def test_allow_failure_wraps_a_dependency():
    wrapped = allow_failure("x")
    assert wrapped.unwrap() == "x"
