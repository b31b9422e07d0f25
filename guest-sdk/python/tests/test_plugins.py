"""Plugin calls (``plugin("toolkit/greet")``) against a stand-in for the host's ``tasks``
interface: the task name and the arguments that reach it, the call options, and the
errors raised before a call is made."""

import json
from types import SimpleNamespace

import pytest

from weir import _context, _host, allow_failure, plugin, unmapped
from weir.cache_policies import INPUTS, NONE
from weir.exceptions import MappingLengthMismatch, ParameterTypeError
from weir.states import StateType


def completed(run_id: str, value: str) -> SimpleNamespace:
    """A host ``task-outcome`` of a completed run."""
    return SimpleNamespace(
        task_run_id=run_id,
        state=SimpleNamespace(type=4, name="Completed", message=None),
        value=value,
        failure=None,
    )


class Handle:
    """A host ``task-future``."""

    def __init__(self, run_id: str, value: str) -> None:
        self.run_id = run_id
        self.value = value

    def task_run_id(self) -> str:
        return self.run_id

    def wait(self) -> SimpleNamespace:
        return completed(self.run_id, self.value)


class Tasks:
    """The ``tasks`` interface: records each call; every run's value is its arguments."""

    CallOptions = SimpleNamespace
    Dependency = SimpleNamespace
    TaskOverrides = SimpleNamespace

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object, SimpleNamespace]] = []

    def _run_id(self) -> str:
        return f"run-{len(self.calls)}"

    def call(self, task: str, arguments: str, options: SimpleNamespace) -> SimpleNamespace:
        self.calls.append(("call", task, json.loads(arguments), options))
        return completed(self._run_id(), arguments)

    def submit(self, task: str, arguments: str, options: SimpleNamespace) -> Handle:
        self.calls.append(("submit", task, json.loads(arguments), options))
        return Handle(self._run_id(), arguments)

    def map(self, task: str, arguments: list[str], options: SimpleNamespace) -> list[Handle]:
        self.calls.append(("map", task, [json.loads(a) for a in arguments], options))
        return [Handle(f"{self._run_id()}.{i}", a) for i, a in enumerate(arguments)]


TYPES = SimpleNamespace(CachePolicy=SimpleNamespace(NONE="none", INPUTS="inputs", CUSTOM="custom"))


@pytest.fixture
def host(monkeypatch):
    """Inside a flow run, with the stand-in host."""
    tasks = Tasks()
    monkeypatch.setattr(_host, "_cache", {"tasks": tasks, "types": TYPES})
    with _context.enter(_context.Frame(_context.FLOW, "caller")):
        yield tasks


def overrides(options: SimpleNamespace) -> dict:
    """The overrides a call sends that are set."""
    return {k: v for k, v in vars(options.overrides).items() if v is not None}


@pytest.mark.parametrize("reference", ["toolkit/greet", "toolkit@1/greet", "http@12/request", "my.tools-2/a/b"])
def test_references_of_both_shapes_are_accepted(reference):
    assert plugin(reference).name == reference
    with pytest.raises(TypeError, match="named by a string"):
        plugin(42)


@pytest.mark.parametrize(
    "reference, why",
    [
        ("nope", ""),
        ("", ""),
        ("/greet", "a plugin's name is"),
        ("sp ace/greet", "a plugin's name is"),
        ("../greet", "a plugin's name is"),
        ("toolkit@0/greet", "whole number from 1"),
        ("toolkit@two/greet", "whole number from 1"),
        ("toolkit@/greet", "whole number from 1"),
        ("toolkit/", "names no task"),
    ],
)
def test_bad_references_are_refused_when_declared(reference, why):
    with pytest.raises(ValueError) as error:
        plugin(reference)
    message = str(error.value)
    assert message.startswith(f"{reference!r} is not a plugin task"), message
    assert why in message
    assert '"<plugin>/<task>"' in message and '"<plugin>@<version>/<task>"' in message


def test_a_call_sends_the_reference_and_the_keyword_arguments(host):
    greet = plugin("toolkit/greet")
    assert greet(name="Ada") == {"name": "Ada"}
    kind, task, arguments, options = host.calls[-1]
    assert (kind, task, arguments) == ("call", "toolkit/greet", {"name": "Ada"})
    assert options.wait_for == [] and options.tags == [] and options.cache_key is None
    assert overrides(options) == {}, "the plugin's task keeps its own options"

    # One dict instead of keywords, for any parameter name.
    assert greet({"name": "Grace", "return_state": 1}) == {"name": "Grace", "return_state": 1}
    assert host.calls[-1][2] == {"name": "Grace", "return_state": 1}
    assert greet({"name": "Alan"}, punctuation="?") == {"name": "Alan", "punctuation": "?"}
    assert plugin("toolkit@1/greet")() == {}
    assert host.calls[-1][1] == "toolkit@1/greet"

    state = greet(name="Ada", return_state=True)
    assert state.type == StateType.COMPLETED and state.result() == {"name": "Ada"}


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (("Ada",), {}, "keyword arguments or one dict"),
        (({"name": "Ada"}, "!"), {}, "keyword arguments or one dict"),
        (({1: "Ada"},), {}, "parameter names"),
        (({"name": "Ada"},), {"name": "Grace"}, "name given both"),
    ],
)
def test_arguments_of_another_shape_fail_the_call_before_the_host(host, args, kwargs, message):
    greet = plugin("toolkit/greet")
    with pytest.raises(ParameterTypeError, match=message):
        greet(*args, **kwargs)
    state = greet(*args, return_state=True, **kwargs)
    assert state.is_failed() and state.failure["kind"] == "invalid-parameters"
    assert greet.submit(*args, **kwargs).state.is_failed()
    assert host.calls == []


def test_submit_returns_a_future_and_futures_are_arguments(host):
    double = plugin("toolkit/double")
    first = double.submit(x=3)
    assert host.calls[-1][:3] == ("submit", "toolkit/double", {"x": 3})
    assert first.task_run_id == "run-1"
    assert first.result() == {"x": 3} and first.state.is_completed()
    first.wait()

    # A future still running is an input the host resolves: its place is sent empty.
    pending = double.submit(x=1)
    chained = double.submit(x=pending, label="chained")
    _, _, arguments, options = host.calls[-1]
    assert arguments == {"x": None, "label": "chained"}
    assert [(d.task_run_id, d.argument) for d in options.wait_for] == [("run-2", "/x")]
    # A completed one is its value, and a run to wait for.
    double(x=first)
    _, _, arguments, options = host.calls[-1]
    assert arguments == {"x": {"x": 3}}
    assert [(d.task_run_id, d.argument) for d in options.wait_for] == [("run-1", None)]
    assert chained.result() == {"x": None, "label": "chained"}

    double(x=1, wait_for=[pending, allow_failure(chained)])
    options = host.calls[-1][3]
    assert [(d.task_run_id, d.allow_failure) for d in options.wait_for] == [("run-2", False), ("run-3", True)]
    assert double.submit(x=1, return_state=True).is_completed()


def test_map_zips_the_iterables_and_repeats_unmapped_values(host):
    greet = plugin("toolkit/greet")
    futures = greet.map(name=["Ada", "Grace"], punctuation=unmapped("?"))
    kind, task, arguments, options = host.calls[-1]
    assert (kind, task) == ("map", "toolkit/greet")
    assert arguments == [{"name": "Ada", "punctuation": "?"}, {"name": "Grace", "punctuation": "?"}]
    assert overrides(options) == {}
    assert futures.result() == arguments
    assert [f.task_run_id for f in futures] == ["run-1.0", "run-1.1"]

    states = greet.map({"name": ["Alan"], "tags": unmapped(["a", "b"])}, return_state=True)
    assert host.calls[-1][2] == [{"name": "Alan", "tags": ["a", "b"]}]
    assert [s.type for s in states] == [StateType.COMPLETED]

    with pytest.raises(MappingLengthMismatch):
        greet.map(name=["Ada"], punctuation=["!", "?"])
    with pytest.raises(ValueError, match=r"toolkit/greet.map\(\) needs at least one iterable"):
        greet.map(name="Ada")


def test_with_options_sends_only_the_options_given(host):
    greet = plugin("toolkit/greet")
    patient = greet.with_options(retries=3, retry_delay_seconds=[0.5, 2], timeout_seconds=10,
                                 tags=["plugins"], task_run_name="greet-{name}", cache_policy=INPUTS)
    patient(name="Ada")
    options = host.calls[-1][3]
    assert overrides(options) == {
        "retries": 3,
        "retry_delay_seconds": [0.5, 2.0],
        "timeout_seconds": 10.0,
        "run_name_template": "greet-{name}",
        "cache_policy": "inputs",
    }
    assert options.tags == ["plugins"]
    # Options add up; None drops one; the original is unchanged.
    renamed = patient.with_options(name="greeting", retries=None, cache_policy=NONE, persist_result=False)
    renamed.map(name=["Ada"])
    assert overrides(host.calls[-1][3]) == {
        "name": "greeting",
        "retry_delay_seconds": [0.5, 2.0],
        "timeout_seconds": 10.0,
        "run_name_template": "greet-{name}",
        "cache_policy": "none",
        "persist_result": False,
    }
    greet.submit(name="Ada")
    assert overrides(host.calls[-1][3]) == {}

    keyed = greet.with_options(cache_key_fn=lambda context, arguments: f"{context.task.name}:{arguments['name']}")
    keyed(name="Ada")
    options = host.calls[-1][3]
    assert options.cache_key == "toolkit/greet:Ada"
    assert overrides(options) == {"cache_policy": "custom"}


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"retries": -1}, ValueError, "retries"),
        ({"on_failure": [print]}, TypeError, "has no option on_failure"),
        ({"retry_condition_fn": print}, TypeError, "has no option retry_condition_fn"),
        ({"task_run_name": lambda: "x"}, TypeError, "template over its arguments"),
        ({"name": ""}, TypeError, "non-empty string"),
        ({"cache_policy": "inputs"}, TypeError, "cache_policy"),
    ],
)
def test_bad_options_are_refused_at_with_options(options, error, message):
    with pytest.raises(error, match=message):
        plugin("toolkit/greet").with_options(**options)


def test_outside_a_run_a_plugin_cannot_run():
    greet = plugin("toolkit/greet")
    for call in (lambda: greet(name="Ada"), lambda: greet.submit(name="Ada"), lambda: greet.map(name=["Ada"])):
        with pytest.raises(RuntimeError, match="runs on the Weir host only"):
            call()
    with pytest.raises(TypeError, match="delay"):
        greet.delay(name="Ada")
