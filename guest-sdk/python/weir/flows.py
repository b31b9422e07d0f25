"""Flows (Prefect's ``@flow``): runs on the host, subflows, final-state rules."""

from __future__ import annotations

import inspect
import sys
from typing import Any, Callable, Iterable, Optional, Union

from . import _context, _host, _json, _registry, exceptions
from .futures import PrefectFuture
from .states import State, StateType
from .tasks import IGNORED_OPTIONS, Options, _local_failure, _return_hint, _state_of, bind


class Flow:
    """A flow: run it with ``weir run``, or call it from a flow to make a subflow run;
    ``.fn`` is the function itself."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: Optional[str] = None,
        description: Optional[str] = None,
        version: Optional[str] = None,
        flow_run_name: Any = None,
        validate_parameters: bool = True,
        task_runner: Any = None,
        register: bool = True,
        **options: Any,
    ) -> None:
        if not callable(fn):
            raise TypeError("@flow decorates a function")
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-")
        if not isinstance(self.name, str) or not self.name:
            raise TypeError("a flow's name is a non-empty string")
        self.description = description or inspect.getdoc(fn)
        self.version = version
        self.validate_parameters = validate_parameters
        if task_runner is not None and not hasattr(task_runner, "max_workers"):
            raise TypeError(
                "task_runner must be one of weir.task_runners (ThreadPoolTaskRunner(max_workers=N), "
                f"SequentialTaskRunner()), not {task_runner!r}"
            )
        self.task_runner = task_runner
        self.max_workers = getattr(task_runner, "max_workers", None)
        self.isasync = inspect.iscoroutinefunction(fn)
        self.options = Options(run_name=flow_run_name, **options)
        self._init_args = dict(
            name=name, description=description, version=version, flow_run_name=flow_run_name,
            validate_parameters=validate_parameters, task_runner=task_runner, **options,
        )
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__wrapped__ = fn
        if register:
            _registry.add_flow(self)

    @property
    def retries(self) -> int:
        return self.options.retries

    @property
    def timeout_seconds(self) -> Optional[float]:
        return self.options.timeout_seconds

    def with_options(self, **overrides: Any) -> "Flow":
        """A copy of the flow with other options (declare it at module level, with its own
        ``name``)."""
        args = {**self._init_args, **overrides}
        same = args.get("name") in (None, self.name)
        return Flow(self.fn, register=not same, **args)

    def __call__(self, *args: Any, return_state: bool = False, wait_for: Any = None, **kwargs: Any) -> Any:
        if _context.building():
            print(
                f"weir: the call of flow {self.name!r} at import was skipped: flows run on the "
                "host (weir run)",
                file=sys.stderr,
            )
            return None
        if not _context.on_host():
            return self._local(args, kwargs, return_state)
        if self.isasync:
            async def call() -> Any:
                return self._subflow(args, kwargs, return_state)

            return call()
        return self._subflow(args, kwargs, return_state)

    def _local(self, args: tuple, kwargs: dict[str, Any], return_state: bool) -> Any:
        """Outside the host: the plain function, with its tasks run as plain functions."""
        with _context.enter(_context.Frame(_context.LOCAL, self.name)):
            try:
                if self.isasync:
                    from . import _asyncio

                    returned = _asyncio.run(self.fn(*args, **kwargs))
                else:
                    returned = self.fn(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - a state holds it
                if return_state:
                    return _local_failure(error)
                raise
        state = final_state(returned)
        if return_state:
            return state
        if is_state_like(returned):
            return state.result()
        return returned

    def _subflow(self, args: tuple, kwargs: dict[str, Any], return_state: bool) -> State:
        try:
            params = bind(self.fn, args, kwargs)
            from .tasks import _resolve, _Resolved

            params = {k: _resolve(v, _Resolved()) for k, v in params.items()}
            parameters = _json.dumps(params)
        except Exception as error:  # noqa: BLE001
            state = _local_failure(error, "invalid-parameters")
        else:
            outcome = _host.interface("flows").call(self.name, parameters)
            state = _state_of(outcome, lambda v: _json.from_jsonable(v, _return_hint(self.fn)))
        return state if return_state else state.result()

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"

    def __get__(self, instance: Any, owner: Any) -> Any:
        return self


def is_state_like(value: Any) -> bool:
    if isinstance(value, (State, PrefectFuture)):
        return True
    if isinstance(value, (list, tuple, set)) and value and all(
        isinstance(v, (State, PrefectFuture)) for v in value
    ):
        return True
    return False


def final_state(returned: Any) -> State:
    """The final state a flow's return value gives it (Prefect's rules): a state is the
    final state; a future gives the state of its run; a collection of states or futures
    fails when any of them did not complete; any other value completes the flow."""
    if isinstance(returned, PrefectFuture):
        returned = returned.state
    if isinstance(returned, State):
        if returned.is_completed():
            return State(returned.type, returned.name, returned.message, returned.data)
        return State(returned.type, returned.name, returned.message, returned.data,
                     failure=returned.failure, run_id=returned.run_id)
    if is_state_like(returned):
        states = [v.state if isinstance(v, PrefectFuture) else v for v in returned]
        bad = [s for s in states if not s.is_completed()]
        values = [_state_value(s) for s in states]
        if bad:
            first = bad[0]
            message = f"{len(bad)}/{len(states)} states failed."
            return State(StateType.FAILED, "Failed", message, values, failure=first.failure, run_id=first.run_id)
        return State(StateType.COMPLETED, "Completed", None, values)
    return State(StateType.COMPLETED, "Completed", None, returned)


def _state_value(state: State) -> Any:
    data = state.data if state.is_completed() else None
    return {
        "task_run_id": state.run_id,
        "state": {"type": state.type.value.lower(), "name": state.name, "message": state.message},
        "value": data,
    }


def flow(
    __fn: Optional[Callable[..., Any]] = None,
    *,
    name: Optional[str] = None,
    version: Optional[str] = None,
    flow_run_name: Any = None,
    retries: Optional[int] = None,
    retry_delay_seconds: Union[int, float, None] = None,
    description: Optional[str] = None,
    timeout_seconds: Union[int, float, None] = None,
    validate_parameters: bool = True,
    persist_result: Optional[bool] = None,
    log_prints: Optional[bool] = None,
    on_completion: Any = None,
    on_failure: Any = None,
    on_cancellation: Any = None,
    on_crashed: Any = None,
    on_running: Any = None,
    tags: Optional[Iterable[str]] = None,
    task_runner: Any = None,
    **unsupported: Any,
) -> Any:
    """Marks a function as a flow (Prefect's ``@flow``), with or without options."""
    unknown = sorted(set(unsupported) - IGNORED_OPTIONS)
    if unknown:
        raise TypeError(f"@flow has no option {', '.join(unknown)}")
    options = dict(
        name=name,
        version=version,
        flow_run_name=flow_run_name,
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
        description=description,
        timeout_seconds=timeout_seconds,
        validate_parameters=validate_parameters,
        persist_result=persist_result,
        log_prints=log_prints,
        on_completion=on_completion,
        on_failure=on_failure,
        on_cancellation=on_cancellation,
        on_crashed=on_crashed,
        on_running=on_running,
        tags=tags,
        task_runner=task_runner,
    )
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)
