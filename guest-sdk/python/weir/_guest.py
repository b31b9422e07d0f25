"""The exported ``weir:flow/guest`` interface: the manifest, and flows, tasks, retry
conditions and hooks run on the host's behalf."""

from __future__ import annotations

import inspect
import json
import sys
import traceback
from typing import Any, Callable, Optional

from . import _context, _host, _json, _registry, exceptions
from .flows import Flow, final_state, is_state_like
from .schema import parameters_schema
from .states import State, StateType
from .tasks import Task, _STATE_TYPES, call_with, hook_name

SDK = "weir-python/0.1.0"

_WIT_STATE = {v: k for k, v in _STATE_TYPES.items()}


def _types() -> Any:
    return _host.interface("types")


def _failure(error: BaseException, kind: Optional[str] = None) -> Any:
    """A WIT failure for an exception: its message, and its class and traceback in the
    details (so a retry condition or the caller can rebuild it)."""
    types = _types()
    if isinstance(error, exceptions.FailedRun):
        kind = kind or error.kind
        message = str(error)
    elif isinstance(error, MemoryError):
        # CPython turns the memory limit into an exception: say which limit it was.
        message = "MemoryError: out of memory: the run reached its memory limit"
    else:
        message = exceptions.message_of(error)
    frames = traceback.format_exception(type(error), error, error.__traceback__)
    text = "".join(frames)
    if len(text) > 16_000:
        text = text[:4_000] + "\n...\n" + text[-12_000:]
    details = {"exception": exceptions.describe(error), "traceback": text}
    return types.Failure(
        kind=kind or "error",
        message=message,
        retryable=False if kind in ("invalid-parameters", "unknown", "invalid-result") else None,
        details=json.dumps(details),
    )


def _err(failure: Any) -> BaseException:
    from componentize_py_types import Err  # type: ignore[import-not-found]

    return Err(failure)


def _host_err(message: str) -> BaseException:
    """A WIT ``result`` error carrying a message."""
    from componentize_py_types import Err  # type: ignore[import-not-found]

    return Err(message)


def _unknown(what: str, name: str, known: dict[str, Any]) -> BaseException:
    types = _types()
    listed = ", ".join(sorted(known)) or "none"
    return _err(types.Failure(
        kind="unknown",
        message=f"this component has no {what} named `{name}` (it has: {listed})",
        retryable=False,
        details=None,
    ))


def _wit_state(state: State) -> Any:
    types = _types()
    return types.State(type=types.StateType(_WIT_STATE[state.type]), name=state.name, message=state.message)


def _options(item: Any, retry_condition: bool) -> Any:
    types = _types()
    o = item.options
    policy = {"none": types.CachePolicy.NONE, "inputs": types.CachePolicy.INPUTS,
              "custom": types.CachePolicy.CUSTOM}[o.host_cache_policy]
    return types.Options(
        tags=list(o.tags),
        retries=o.retries,
        retry_delay_seconds=list(o.retry_delay_seconds),
        retry_jitter_factor=o.retry_jitter_factor,
        has_retry_condition=retry_condition,
        timeout_seconds=o.timeout_seconds,
        cache_policy=policy,
        cache_expiration_seconds=o.cache_expiration,
        refresh_cache=o.refresh_cache,
        persist_result=o.persist_result,
        log_prints=o.log_prints,
        run_name_template=o.template(),
        has_run_name_fn=callable(o.run_name),
        on_completion=[hook_name(h) for h in o.on_completion],
        on_failure=[hook_name(h) for h in o.on_failure],
        on_cancellation=[hook_name(h) for h in o.on_cancellation],
        on_crashed=[hook_name(h) for h in o.on_crashed],
        # The SDK runs `on_running` hooks itself, in the run's own instance.
        on_running=[],
        on_commit=[hook_name(h) for h in getattr(item, "on_commit_hooks", [])],
        on_rollback=[hook_name(h) for h in getattr(item, "on_rollback_hooks", [])],
        validate_parameters=getattr(item, "validate_parameters", True),
        max_workers=getattr(item, "max_workers", None),
    )


def _definition(item: Any) -> Any:
    types = _types()
    validate = getattr(item, "validate_parameters", True)
    return types.Definition(
        name=item.name,
        # Flows are named by their names, which the registry keeps unique.
        function=None,
        description=item.description,
        version=item.version,
        parameters_schema=json.dumps(parameters_schema(item.fn, validate)),
        options=_options(item, isinstance(item, Task) and item.options.retry_condition_fn is not None),
    )


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream
            pass


def _invoke(fn: Callable[..., Any], params: dict[str, Any], what: Optional[str]) -> Any:
    value = call_with(fn, params, what)
    if inspect.iscoroutine(value):
        from . import _asyncio

        value = _asyncio.run(value)
    return value


def _parse(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else None
    except ValueError as error:
        raise _err(_types().Failure(kind="invalid-parameters", message=f"parameters are not valid JSON: {error}",
                                    retryable=False, details=None)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _err(_types().Failure(kind="invalid-parameters",
                                    message="parameters must be a JSON object keyed by parameter name",
                                    retryable=False, details=None))
    return value


class _RunInfo:
    """The run a hook or a retry condition is about (Prefect's ``FlowRun``/``TaskRun``)."""

    def __init__(self, id: str, name: str, parameters: Any, state: Optional[State] = None,
                 run_count: int = 1) -> None:
        self.id = id
        self.name = name
        self.parameters = parameters
        self.state = state
        self.run_count = run_count

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self.name!r})"


def _run_hooks(hooks: list[Callable[..., Any]], item: Any, run: _RunInfo, state: State) -> None:
    for hook in hooks:
        try:
            hook(item, run, state)
        except Exception as error:  # noqa: BLE001 - a hook ends only its own call
            from .logging import get_run_logger

            get_run_logger().error(f"hook {hook_name(hook)} failed: {exceptions.message_of(error)}")


def _name_run(item: Any) -> None:
    """Names the run with its callable run name, as Prefect does when a run starts (the
    callable reads ``weir.runtime``)."""
    if not callable(item.options.run_name):
        return
    from .logging import get_run_logger

    try:
        name = str(item.options.run_name())
    except Exception as error:  # noqa: BLE001 - a bad name leaves the run's own
        get_run_logger().warning(f"the run name function failed: {exceptions.message_of(error)}")
        return
    try:
        _host.interface("context").set_run_name(name)
    except Exception as error:  # noqa: BLE001 - the host refused the name
        get_run_logger().warning(f"the run could not be named {name!r}: {getattr(error, 'value', error)}")
        return
    # The run context read before the rename is stale now.
    setattr(_context.current(), "_run_context", None)


def _running_hooks(item: Any, params: dict[str, Any]) -> None:
    _name_run(item)
    if not item.options.on_running:
        return
    from .runtime import flow_run, task_run

    if isinstance(item, Task):
        run = _RunInfo(task_run.id or "", task_run.name or "", params, run_count=task_run.run_count)
    else:
        run = _RunInfo(flow_run.id or "", flow_run.name or "", params)
    _run_hooks(item.options.on_running, item, run, State(StateType.RUNNING))


class Guest:
    """What the component exports (componentize-py finds it in the built module)."""

    def describe(self) -> Any:
        types = _types()
        flows = [_definition(f) for _, f in sorted(_registry.flows().items())]
        tasks = [_definition(t) for _, t in sorted(_registry.tasks().items())]
        return types.Manifest(sdk=SDK, flows=flows, tasks=tasks)

    def run_flow(self, name: str, parameters: str) -> Any:
        flow = _registry.flows().get(name)
        if flow is None:
            raise _unknown("flow", name, _registry.flows())
        params = _parse(parameters)
        try:
            with _context.enter(_context.Frame(_context.FLOW, name, params)):
                _running_hooks(flow, params)
                returned = _invoke(flow.fn, params, "flow" if flow.validate_parameters else None)
                state = final_state(returned)
                value = _json.dumps(state.data if not isinstance(state.data, BaseException) else None)
        except Exception as error:  # noqa: BLE001 - the run fails, the instance stays sound
            raise _err(_failure(error)) from None
        except BaseException as error:  # SystemExit and friends end the run too
            raise _err(_failure(error)) from None
        finally:
            _flush()
        chosen = is_state_like(returned)
        return _types().FlowOutput(value=value, state=_wit_state(state) if chosen else None)

    def run_task(self, name: str, arguments: str) -> str:
        task = _registry.tasks().get(name)
        if task is None:
            raise _unknown("task", name, _registry.tasks())
        params = _parse(arguments)
        try:
            with _context.enter(_context.Frame(_context.TASK, name, params)):
                _running_hooks(task, params)
                returned = _invoke(task.fn, params, None)
                if isinstance(returned, State):
                    returned = returned.result()
                return _json.dumps(returned)
        except TypeError as error:
            if "cannot cross to the host" in str(error):
                raise _err(_failure(error, "invalid-result")) from None
            raise _err(_failure(error)) from None
        except BaseException as error:  # noqa: BLE001 - the attempt fails
            raise _err(_failure(error)) from None
        finally:
            _flush()

    def retry_condition(self, task: str, failure: Any, attempt: int) -> bool:
        item = _registry.tasks().get(task)
        condition = item.options.retry_condition_fn if item is not None else None
        if condition is None:
            return True
        details: Any = None
        if failure.details is not None:
            try:
                details = json.loads(failure.details)
            except ValueError:
                details = failure.details
        state = State(
            StateType.FAILED, "Failed", failure.message,
            failure={"kind": failure.kind, "message": failure.message, "retryable": failure.retryable,
                     "details": details},
        )
        run = _RunInfo("", task, {}, state, run_count=attempt)
        try:
            return bool(condition(item, run, state))
        except Exception as error:  # noqa: BLE001 - a failing condition stops the retries
            from .logging import get_run_logger

            get_run_logger().error(f"retry_condition_fn of {task} failed: {exceptions.message_of(error)}")
            return False
        finally:
            _flush()

    def on_transaction(self, event: Any) -> None:
        from .transactions import Transaction, TransactionState

        item = _registry.tasks().get(event.task)
        if item is None:
            raise _host_err(f"no task `{event.task}` to run transaction hooks for")
        hooks = item.transaction_hooks()
        try:
            values = json.loads(event.values)
        except ValueError:
            values = {}
        txn = Transaction(
            event.key, values=values if isinstance(values, dict) else {},
            state=TransactionState.COMMITTED if event.commit else TransactionState.ROLLED_BACK,
        )
        try:
            with _context.enter(_context.Frame(_context.TASK, event.task)):
                for name in event.hooks:
                    hook = hooks.get(name)
                    if hook is None:
                        raise _host_err(f"`{event.task}` has no hook named `{name}`")
                    try:
                        hook(txn)
                    except Exception as error:  # noqa: BLE001 - reported to the host
                        raise _host_err(f"hook `{name}`: {exceptions.message_of(error)}") from None
        finally:
            _flush()

    def on_state(self, event: Any) -> None:
        types = _types()
        is_flow = event.kind == types.RunKind.FLOW
        table = _registry.flows() if is_flow else _registry.tasks()
        item = table.get(event.name)
        if item is None:
            from .logging import get_run_logger

            get_run_logger().warning(f"no flow or task `{event.name}` to run state hooks for")
            return
        hooks = item.options.hooks()
        wit_state = event.state
        state_type = _STATE_TYPES.get(getattr(wit_state.type, "value", wit_state.type), StateType.FAILED)
        state = State(state_type, wit_state.name, wit_state.message)
        try:
            parameters = json.loads(event.parameters)
        except ValueError:
            parameters = {}
        run = _RunInfo(event.run_id, event.run_name, parameters, state)
        try:
            with _context.enter(_context.Frame(_context.FLOW if is_flow else _context.TASK, event.name)):
                for name in event.hooks:
                    hook = hooks.get(name)
                    if hook is None:
                        from .logging import get_run_logger

                        get_run_logger().warning(f"`{event.name}` has no hook named `{name}`")
                        continue
                    _run_hooks([hook], item, run, state)
        finally:
            _flush()
