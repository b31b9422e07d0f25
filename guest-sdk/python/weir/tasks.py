"""Tasks (Prefect's ``@task``): orchestrated calls, futures, maps, retries, caching."""

from __future__ import annotations

import datetime
import hashlib
import inspect
import json
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from . import _context, _host, _json, _registry, exceptions
from .cache_policies import INPUTS, NONE, CachePolicy, hash_objects
from .futures import PrefectFuture, PrefectFutureList
from .schema import signature, type_hints
from .states import State, StateType

_STATE_TYPES = {
    0: StateType.SCHEDULED,
    1: StateType.PENDING,
    2: StateType.RUNNING,
    3: StateType.PAUSED,
    4: StateType.COMPLETED,
    5: StateType.FAILED,
    6: StateType.CANCELLING,
    7: StateType.CANCELLED,
    8: StateType.CRASHED,
}


class unmapped:
    """Passes one value to every run of a map (Prefect's ``unmapped``)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getitem__(self, _: int) -> Any:
        return self.value


class allow_failure:
    """Lets a task run even though the upstream run it depends on failed (Prefect's
    ``allow_failure``); as an argument, the failed run's value is ``None``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def unwrap(self) -> Any:
        return self.value


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Retry delays that double: ``backoff_factor * 2 ** n`` seconds for retry n."""

    def retry_backoff_callable(retries: int) -> list[float]:
        retries = min(retries, 50)
        return [backoff_factor * max(0, 2**r) for r in range(retries)]

    return retry_backoff_callable


def task_input_hash(context: Any, arguments: dict[str, Any]) -> Optional[str]:
    """A cache key from the task and its inputs (Prefect's ``task_input_hash``)."""
    task_key = getattr(getattr(context, "task", None), "task_key", "")
    try:
        return hash_objects(task_key, arguments)
    except TypeError:
        return None


def _seconds(value: Any, what: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or a timedelta, not {value!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return float(value)


def _delays(value: Any, retries: int) -> list[float]:
    if value is None:
        return []
    if callable(value):
        value = value(max(retries, 1))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [_seconds(value, "retry_delay_seconds")]  # type: ignore[list-item]
    if isinstance(value, (list, tuple)):
        return [_seconds(v, "retry_delay_seconds") for v in value]  # type: ignore[misc]
    raise TypeError(
        "retry_delay_seconds must be a number, a list of numbers or "
        f"exponential_backoff(...), not {value!r}"
    )


def _hook_names(hooks: Optional[Sequence[Callable[..., Any]]], what: str) -> list[Callable[..., Any]]:
    if hooks is None:
        return []
    if callable(hooks):
        hooks = [hooks]
    out = []
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"{what} hooks must be callables, not {hook!r}")
        out.append(hook)
    return out


def hook_name(hook: Callable[..., Any]) -> str:
    return f"{getattr(hook, '__module__', '')}.{getattr(hook, '__qualname__', repr(hook))}"


def _source_hash(fn: Callable[..., Any]) -> str:
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = repr(code.co_code) if code is not None else repr(fn)
    return hashlib.sha256(text.encode()).hexdigest()


class Options:
    """The orchestration options shared by flows and tasks, checked when declared."""

    def __init__(
        self,
        *,
        tags: Optional[Iterable[str]] = None,
        retries: Optional[int] = None,
        retry_delay_seconds: Any = None,
        retry_jitter_factor: Optional[float] = None,
        retry_condition_fn: Optional[Callable[..., bool]] = None,
        timeout_seconds: Any = None,
        cache_policy: Any = None,
        cache_key_fn: Optional[Callable[..., Optional[str]]] = None,
        cache_expiration: Any = None,
        refresh_cache: Optional[bool] = None,
        persist_result: Optional[bool] = None,
        log_prints: Optional[bool] = None,
        run_name: Any = None,
        on_completion: Any = None,
        on_failure: Any = None,
        on_cancellation: Any = None,
        on_crashed: Any = None,
        on_running: Any = None,
    ) -> None:
        self.tags = sorted(set(tags or []))
        for tag in self.tags:
            if not isinstance(tag, str):
                raise TypeError(f"tags must be strings, not {tag!r}")
        retries = retries or 0
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a whole number of at least 0, not {retries!r}")
        self.retries = retries
        self.retry_delay_seconds = _delays(retry_delay_seconds, retries)
        if retry_jitter_factor is not None and (
            isinstance(retry_jitter_factor, bool)
            or not isinstance(retry_jitter_factor, (int, float))
            or retry_jitter_factor < 0
        ):
            raise ValueError(f"retry_jitter_factor must be a number of at least 0, not {retry_jitter_factor!r}")
        self.retry_jitter_factor = None if retry_jitter_factor is None else float(retry_jitter_factor)
        if retry_condition_fn is not None and not callable(retry_condition_fn):
            raise TypeError("retry_condition_fn must be a callable (task, task_run, state) -> bool")
        self.retry_condition_fn = retry_condition_fn
        timeout = _seconds(timeout_seconds, "timeout_seconds")
        self.timeout_seconds = timeout if timeout else None
        if cache_key_fn is not None and not callable(cache_key_fn):
            raise TypeError("cache_key_fn must be a callable (context, parameters) -> str")
        self.cache_key_fn = cache_key_fn
        if cache_policy is None:
            cache_policy = NONE
        if not isinstance(cache_policy, CachePolicy):
            raise TypeError(f"cache_policy must be one of weir.cache_policies, not {cache_policy!r}")
        self.cache_policy = cache_policy
        self.cache_expiration = _seconds(cache_expiration, "cache_expiration")
        self.refresh_cache = bool(refresh_cache)
        self.persist_result = persist_result
        # None inherits the caller's setting (a task its flow's, a subflow its parent's).
        self.log_prints = None if log_prints is None else bool(log_prints)
        if run_name is not None and not isinstance(run_name, str) and not callable(run_name):
            raise TypeError(
                "a run name is a template over the parameters, such as \"{name}-on-{date:%A}\", "
                f"or a callable returning the name, not {run_name!r}"
            )
        self.run_name = run_name
        self.on_completion = _hook_names(on_completion, "on_completion")
        self.on_failure = _hook_names(on_failure, "on_failure")
        self.on_cancellation = _hook_names(on_cancellation, "on_cancellation")
        self.on_crashed = _hook_names(on_crashed, "on_crashed")
        self.on_running = _hook_names(on_running, "on_running")

    @property
    def host_cache_policy(self) -> str:
        if self.cache_key_fn is not None:
            return "custom"
        return self.cache_policy.host_policy

    def hooks(self) -> dict[str, Callable[..., Any]]:
        out = {}
        for hook in (
            self.on_completion + self.on_failure + self.on_cancellation + self.on_crashed + self.on_running
        ):
            out[hook_name(hook)] = hook
        return out

    def template(self) -> Optional[str]:
        """The run-name template the host fills, when the name is a plain template."""
        return self.run_name if isinstance(self.run_name, str) else None


def _state_of(outcome: Any, decode: Optional[Callable[[Any], Any]] = None) -> State:
    """A host ``task-outcome`` or ``flow-outcome`` as a :class:`State`."""
    state = outcome.state
    state_type = _STATE_TYPES.get(getattr(state.type, "value", state.type), StateType.FAILED)
    failure = None
    if outcome.failure is not None:
        f = outcome.failure
        details: Any = None
        if f.details is not None:
            try:
                details = json.loads(f.details)
            except ValueError:
                details = f.details
        failure = {"kind": f.kind, "message": f.message, "retryable": f.retryable, "details": details}
    data = None
    if outcome.value is not None:
        data = json.loads(outcome.value)
        if decode is not None and state_type == StateType.COMPLETED:
            data = decode(data)
    run_id = getattr(outcome, "task_run_id", None) or getattr(outcome, "flow_run_id", "")
    return State(state_type, state.name, state.message, data, failure=failure, run_id=run_id)


def _local_failure(error: BaseException, kind: str = "error") -> State:
    return State(
        StateType.FAILED,
        "Failed",
        exceptions.message_of(error),
        data=error,
        failure={"kind": kind, "message": exceptions.message_of(error), "retryable": False, "details": None},
    )


class _Resolved:
    def __init__(self) -> None:
        self.wait_for: list[tuple[str, bool]] = []
        # Futures whose values the host puts in the arguments: (task run id, JSON Pointer).
        self.inputs: list[tuple[str, str]] = []
        self.failed: Optional[State] = None

    def depend(self, state: State, allowed: bool) -> None:
        if state.run_id:
            self.wait_for.append((state.run_id, allowed))
        if not allowed and not state.is_completed() and self.failed is None:
            self.failed = state


def _pointer(path: Optional[str], key: Any) -> Optional[str]:
    """The JSON Pointer of ``key`` under ``path`` (``None``: the place has none)."""
    if path is None or not isinstance(key, (str, int)) or isinstance(key, bool):
        return None
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _resolve(value: Any, resolved: _Resolved, allowed: bool = False, path: Optional[str] = None) -> Any:
    """``value`` with futures and states replaced by their values, the runs they stand for
    recorded as dependencies. A future still running at a place with a JSON Pointer
    (``path``) is left to the host, which starts the new run with its value once it
    completed, so the flow does not wait (as in Prefect); any other is waited for."""
    if isinstance(value, allow_failure):
        return _resolve(value.value, resolved, True)
    if isinstance(value, PrefectFuture):
        if path is not None and not allowed and value._state is None and value.task_run_id:
            resolved.inputs.append((value.task_run_id, path))
            return None
        value = value.state
    if isinstance(value, State):
        resolved.depend(value, allowed)
        return value.data if value.is_completed() else None
    if isinstance(value, list):
        return [_resolve(v, resolved, allowed, _pointer(path, i)) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_resolve(v, resolved, allowed, _pointer(path, i)) for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: _resolve(v, resolved, allowed, _pointer(path, k) if isinstance(k, str) else None)
                for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return type(value)(_resolve(v, resolved, allowed) for v in value)
    return value


def bind(fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a call, keyed by parameter name, defaults applied."""
    try:
        bound = signature(fn).bind(*args, **kwargs)
    except TypeError as error:
        raise exceptions.ParameterTypeError(f"{fn.__name__}(): {error}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


def call_with(fn: Callable[..., Any], params: dict[str, Any], what: Optional[str] = None) -> Any:
    """Calls ``fn`` with arguments keyed by parameter name, typed by its hints. With
    ``what`` (``"flow"``, when the flow validates its parameters), a pydantic model's own
    validation rejecting its argument fails the call as invalid parameters; otherwise (a
    task, as Prefect passes a task what it is given) the plain JSON is passed on."""
    hints = type_hints(fn)
    parameters = signature(fn).parameters
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for name, param in parameters.items():
        if param.kind == inspect.Parameter.VAR_KEYWORD:
            extra = params.get(name)
            if isinstance(extra, dict):
                keywords.update(extra)
            keywords.update({k: v for k, v in params.items() if k not in parameters})
            continue
        if name not in params:
            continue
        hint = hints.get(name)
        if what is not None and _json._is_pydantic(hint):
            value = _model_argument(what, name, params[name], hint)
        else:
            value = _json.from_jsonable(params[name], hint)
        if param.kind == inspect.Parameter.POSITIONAL_ONLY:
            positional.append(value)
        elif param.kind == inspect.Parameter.VAR_POSITIONAL:
            positional.extend(value or [])
        else:
            keywords[name] = value
    return fn(*positional, **keywords)


def _model_argument(what: str, name: str, value: Any, model: Any) -> Any:
    """``value`` validated by the pydantic ``model`` (its validators included), or a failure
    naming each field it rejected as the host names those its schema rejects."""
    if isinstance(value, model):
        return value
    try:
        return _json.validate_model(model, value)
    except (TypeError, ValueError) as error:
        problems: list[str] = []
        errors = getattr(error, "errors", None)
        if callable(errors):
            try:
                for e in errors():
                    path = ".".join([name, *(str(part) for part in e.get("loc", ()))])
                    problems.append(f"'{path}': {e.get('msg')}")
            except Exception:  # noqa: BLE001 - an error of another shape
                problems = []
        detail = "; ".join(problems) or f"'{name}': {error}"
        raise exceptions.FailedRun(
            f"Validation of {what} parameters failed: {detail}", "invalid-parameters"
        ) from None


class TaskRunContext:
    """What a ``cache_key_fn`` receives as its context."""

    def __init__(self, task: "Task") -> None:
        self.task = task
        self.task_run = None


class Task:
    """A task: call it in a flow to run it through the host and get its value;
    ``.submit()`` for a future, ``.map()`` for one run per element, ``.fn`` for the
    function itself."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: Optional[str] = None,
        description: Optional[str] = None,
        version: Optional[str] = None,
        task_run_name: Any = None,
        register: bool = True,
        on_commit: Any = None,
        on_rollback: Any = None,
        **options: Any,
    ) -> None:
        if not callable(fn):
            raise TypeError("@task decorates a function")
        # Transaction hooks (Prefect's names): run when the task's transaction commits
        # or rolls back, with the transaction.
        self.on_commit_hooks = _hook_names(on_commit, "on_commit")
        self.on_rollback_hooks = _hook_names(on_rollback, "on_rollback")
        self.fn = fn
        self.name = name or fn.__name__
        if not isinstance(self.name, str) or not self.name:
            raise TypeError("a task's name is a non-empty string")
        self.description = description or inspect.getdoc(fn)
        self.version = version
        self.isasync = inspect.iscoroutinefunction(fn)
        self.options = Options(run_name=task_run_name, **options)
        self.task_key = f"{fn.__module__}.{fn.__qualname__}"
        self.source_hash = _source_hash(fn)
        self._init_args = dict(
            name=name, description=description, version=version, task_run_name=task_run_name,
            on_commit=self.on_commit_hooks, on_rollback=self.on_rollback_hooks, **options
        )
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__wrapped__ = fn
        # The registered task the host runs; a `with_options` variant made inside a run
        # calls it with its own options replacing the task's for those calls.
        self._host_name = self.name
        self._variant = False
        if register:
            _registry.add_task(self)

    def on_commit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Adds a hook run when the task's transaction commits (a decorator)."""
        self.on_commit_hooks.extend(_hook_names(fn, "on_commit"))
        return fn

    def on_rollback(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Adds a hook run when the task's transaction rolls back (a decorator)."""
        self.on_rollback_hooks.extend(_hook_names(fn, "on_rollback"))
        return fn

    def transaction_hooks(self) -> dict[str, Callable[..., Any]]:
        return {hook_name(h): h for h in self.on_commit_hooks + self.on_rollback_hooks}

    # Prefect's attribute names for the options.
    @property
    def retries(self) -> int:
        return self.options.retries

    @property
    def tags(self) -> set[str]:
        return set(self.options.tags)

    @property
    def timeout_seconds(self) -> Optional[float]:
        return self.options.timeout_seconds

    def with_options(self, **overrides: Any) -> "Task":
        """A copy of the task with other options. Declare it at module level (the host
        learns a component's tasks when it is built); give it its own ``name`` when its
        options differ."""
        args = {**self._init_args, **overrides}
        if _context.on_host():
            # Inside a run: the same registered task, its options replaced for the calls
            # made through the copy (the host applies them to each call's run).
            variant = Task(self.fn, register=False, **args)
            variant._host_name = self._host_name
            variant._variant = True
            return variant
        same = args.get("name") in (None, self.name) and _registry.tasks().get(self.name) is self
        return Task(self.fn, register=not same or not _context.building(), **args)

    # Calls.

    def __call__(self, *args: Any, return_state: bool = False, wait_for: Optional[Iterable[Any]] = None,
                 **kwargs: Any) -> Any:
        if not _context.on_host():
            return self._local(args, kwargs, return_state)
        if self.isasync:
            async def call() -> Any:
                return self._call(args, kwargs, return_state, wait_for)

            return call()
        return self._call(args, kwargs, return_state, wait_for)

    def _local(self, args: tuple, kwargs: dict[str, Any], return_state: bool) -> Any:
        """Outside a run: the plain function (Prefect runs a task called outside a flow)."""
        if not return_state:
            return self.fn(*args, **kwargs)
        try:
            value = self.fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the state holds it
            return _local_failure(error)
        return State(StateType.COMPLETED, "Completed", data=value)

    def _bind(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A call's arguments keyed by the names the host passes them by."""
        return bind(self.fn, args, kwargs)

    def _host_inputs(self) -> bool:
        """Whether the host may put upstream values in the arguments: not when the key of
        the run's cache is computed here, from the values."""
        return self.options.cache_key_fn is None and self.options.host_cache_policy != "custom"

    def _prepare(self, args: tuple, kwargs: dict[str, Any], wait_for: Optional[Iterable[Any]],
                 extra: Optional[_Resolved] = None, host_inputs: bool = True):
        resolved = extra or _Resolved()
        params = self._bind(args, kwargs)
        on_host = host_inputs and self._host_inputs()
        params = {k: _resolve(v, resolved, path=_pointer("", k) if on_host else None)
                  for k, v in params.items()}
        for upstream in wait_for or []:
            allowed = isinstance(upstream, allow_failure)
            target = upstream.value if allowed else upstream
            if isinstance(target, PrefectFuture):
                # Ordering only: the host waits for the run, the flow need not.
                if target._state is None and target.task_run_id:
                    resolved.wait_for.append((target.task_run_id, allowed))
                    continue
                target = target.state
            if isinstance(target, State):
                resolved.depend(target, allowed)
        return params, resolved

    def _host_options(self, params: dict[str, Any], resolved: _Resolved, tags: Sequence[str] = ()) -> Any:
        tasks = _host.interface("tasks")
        if self._variant:
            tags = [*tags, *self.options.tags]
        return tasks.CallOptions(
            wait_for=[tasks.Dependency(task_run_id=i, allow_failure=a, argument=None) for i, a in resolved.wait_for]
            + [tasks.Dependency(task_run_id=i, allow_failure=False, argument=p) for i, p in resolved.inputs],
            cache_key=self._cache_key(params),
            tags=list(tags),
            overrides=self._overrides(tasks),
        )

    def _overrides(self, tasks: Any) -> Any:
        """The host's per-call options: none for the task itself, every option for a
        ``with_options`` variant (those it did not change equal the task's)."""
        if not self._variant:
            return tasks.TaskOverrides(
                name=None, run_name_template=None, retries=None, retry_delay_seconds=None,
                retry_jitter_factor=None, timeout_seconds=None, cache_policy=None,
                cache_expiration_seconds=None, refresh_cache=None, persist_result=None,
                log_prints=None,
            )
        o = self.options
        types = _host.interface("types")
        policy = {"none": types.CachePolicy.NONE, "inputs": types.CachePolicy.INPUTS,
                  "custom": types.CachePolicy.CUSTOM}[o.host_cache_policy]
        return tasks.TaskOverrides(
            name=self.name if self.name != self._host_name else None,
            run_name_template=o.template(),
            retries=o.retries,
            retry_delay_seconds=list(o.retry_delay_seconds),
            retry_jitter_factor=o.retry_jitter_factor,
            timeout_seconds=o.timeout_seconds or 0.0,
            cache_policy=policy,
            cache_expiration_seconds=o.cache_expiration,
            refresh_cache=o.refresh_cache,
            persist_result=o.persist_result,
            log_prints=o.log_prints,
        )

    def _cache_key(self, params: dict[str, Any]) -> Optional[str]:
        if self.options.cache_key_fn is not None:
            key = self.options.cache_key_fn(TaskRunContext(self), params)
            return None if key is None else str(key)
        policy = self.options.cache_policy
        if policy.host_policy != "custom":
            return None
        from .runtime import flow_run

        return policy.compute_key(self.name, self.source_hash, params, flow_run.id, flow_run.parameters)

    def _decode(self, value: Any) -> Any:
        # Hints are resolved on first use (or by `weir build` once the module is whole),
        # never while the module is still being defined.
        return _json.from_jsonable(value, _return_hint(self.fn))

    def _call(self, args: tuple, kwargs: dict[str, Any], return_state: bool, wait_for: Any) -> Any:
        state = self._run_state(args, kwargs, wait_for)
        return state if return_state else state.result()

    def _run_state(self, args: tuple, kwargs: dict[str, Any], wait_for: Any) -> State:
        try:
            params, resolved = self._prepare(args, kwargs, wait_for)
            if resolved.failed is not None and not resolved.failed.run_id:
                raise exceptions.UpstreamTaskError(
                    f"an upstream task did not complete: {resolved.failed.message}", "upstream"
                )
            arguments = _json.dumps(params)
            options = self._host_options(params, resolved)
        except exceptions.UpstreamTaskError as error:
            return _local_failure(error, "upstream")
        except Exception as error:  # noqa: BLE001 - the call fails, not the flow
            return _local_failure(error, "invalid-parameters")
        outcome = _host.interface("tasks").call(self._host_name, arguments, options)
        return _state_of(outcome, self._decode)

    def delay(self, *args: Any, **kwargs: Any) -> str:
        """Starts a background run of the task (Prefect's ``task.delay()``): a run of its
        own, outside this flow run, with the task's options. Returns the new run's id."""
        if not _context.on_host():
            raise RuntimeError("delay() needs the Weir server: call it inside a flow run of a deployment")
        # A background run is outside this flow run: futures are waited for here.
        params, _ = self._prepare(args, kwargs, None, host_inputs=False)
        try:
            return _host.interface("tasks").delay(self._host_name, _json.dumps(params))
        except Exception as error:  # noqa: BLE001 - a WIT result error
            text = _host.err_value(error)
            if text is None:
                raise
            raise exceptions.WeirException(f"cannot start task '{self.name}' in the background: {text}") from None

    def submit(self, *args: Any, return_state: bool = False, wait_for: Optional[Iterable[Any]] = None,
               **kwargs: Any) -> Any:
        """Starts a task run concurrently with the flow; returns its future."""
        if not _context.on_host():
            return PrefectFuture(self.name, state=self._local(args, kwargs, True))
        try:
            params, resolved = self._prepare(args, kwargs, wait_for)
            if resolved.failed is not None and not resolved.failed.run_id:
                raise exceptions.UpstreamTaskError("an upstream task did not complete", "upstream")
            arguments = _json.dumps(params)
            options = self._host_options(params, resolved)
        except exceptions.UpstreamTaskError as error:
            return PrefectFuture(self.name, state=_local_failure(error, "upstream"))
        except Exception as error:  # noqa: BLE001
            return PrefectFuture(self.name, state=_local_failure(error, "invalid-parameters"))
        handle = _host.interface("tasks").submit(self._host_name, arguments, options)
        future = PrefectFuture(self.name, handle, decode=self._decode)
        if return_state:
            return future.state
        return future

    def map(self, *args: Any, return_state: bool = False, wait_for: Optional[Iterable[Any]] = None,
            **kwargs: Any) -> Any:
        """One task run per element of the iterable arguments (``unmapped(x)`` passes ``x``
        to every run); returns their futures (or states with ``return_state=True``)."""
        params = self._bind(args, kwargs)
        lengths = {}
        for name, value in params.items():
            if _mappable(value):
                params[name] = list(value)
                lengths[name] = len(params[name])
        if not lengths:
            raise exceptions.MappingMissingIterable(
                f"{self.name}.map() needs at least one iterable argument; wrap constants in unmapped()"
            )
        if len(set(lengths.values())) > 1:
            described = ", ".join(f"{k} has {n}" for k, n in lengths.items())
            raise exceptions.MappingLengthMismatch(f"mapped arguments must have the same length: {described}")
        count = next(iter(lengths.values()))
        calls = []
        for i in range(count):
            call = {}
            for name, value in params.items():
                if name in lengths:
                    call[name] = value[i]
                elif isinstance(value, unmapped):
                    call[name] = value.value
                else:
                    call[name] = value
            calls.append(call)
        if not _context.on_host():
            futures = PrefectFutureList(
                PrefectFuture(self.name, state=self._local((), call, True)) for call in calls
            )
        else:
            futures = self._map_host(calls, wait_for)
        if return_state:
            return [f.state for f in futures]
        return futures

    def _map_host(self, calls: list[dict[str, Any]], wait_for: Any) -> PrefectFutureList:
        tasks = _host.interface("tasks")
        shared = _Resolved()
        _, shared = self._prepare_wait_for(wait_for, shared)
        keyed = self.options.host_cache_policy == "custom"
        prepared: list[Any] = []
        for call in calls:
            try:
                resolved = _Resolved()
                resolved.wait_for = list(shared.wait_for)
                resolved.failed = shared.failed
                on_host = self._host_inputs()
                params = {k: _resolve(v, resolved, path=_pointer("", k) if on_host else None)
                          for k, v in call.items()}
                if resolved.failed is not None and not resolved.failed.run_id:
                    raise exceptions.UpstreamTaskError("an upstream task did not complete", "upstream")
                prepared.append((_json.dumps(params), params, resolved))
            except exceptions.UpstreamTaskError as error:
                prepared.append(_local_failure(error, "upstream"))
            except Exception as error:  # noqa: BLE001
                prepared.append(_local_failure(error, "invalid-parameters"))
        simple = not keyed and all(
            not isinstance(p, State) and p[2].wait_for == shared.wait_for and not p[2].inputs
            for p in prepared
        )
        if simple:
            options = self._host_options({}, shared)
            handles = tasks.map(self._host_name, [p[0] for p in prepared], options)
            return PrefectFutureList(PrefectFuture(self.name, h, decode=self._decode) for h in handles)
        futures = PrefectFutureList()
        for p in prepared:
            if isinstance(p, State):
                futures.append(PrefectFuture(self.name, state=p))
                continue
            arguments, params, resolved = p
            handle = tasks.submit(self._host_name, arguments, self._host_options(params, resolved))
            futures.append(PrefectFuture(self.name, handle, decode=self._decode))
        return futures

    def _prepare_wait_for(self, wait_for: Any, resolved: _Resolved):
        for upstream in wait_for or []:
            allowed = isinstance(upstream, allow_failure)
            target = upstream.value if allowed else upstream
            if isinstance(target, PrefectFuture):
                if target._state is None and target.task_run_id:
                    resolved.wait_for.append((target.task_run_id, allowed))
                    continue
                target = target.state
            if isinstance(target, State):
                resolved.depend(target, allowed)
        return None, resolved

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"

    def __get__(self, instance: Any, owner: Any) -> Any:
        return self


def _mappable(value: Any) -> bool:
    if isinstance(value, (unmapped, str, bytes, dict)):
        return False
    if isinstance(value, PrefectFuture) or isinstance(value, State):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _return_hint(fn: Callable[..., Any]) -> Any:
    return type_hints(fn).get("return")


def task(
    __fn: Optional[Callable[..., Any]] = None,
    *,
    name: Optional[str] = None,
    description: Optional[str] = None,
    tags: Optional[Iterable[str]] = None,
    version: Optional[str] = None,
    cache_policy: Any = None,
    cache_key_fn: Optional[Callable[..., Optional[str]]] = None,
    cache_expiration: Optional[Union[datetime.timedelta, float]] = None,
    task_run_name: Any = None,
    retries: Optional[int] = None,
    retry_delay_seconds: Any = None,
    retry_jitter_factor: Optional[float] = None,
    persist_result: Optional[bool] = None,
    timeout_seconds: Union[int, float, None] = None,
    log_prints: Optional[bool] = None,
    refresh_cache: Optional[bool] = None,
    on_completion: Any = None,
    on_failure: Any = None,
    on_running: Any = None,
    retry_condition_fn: Optional[Callable[..., bool]] = None,
    on_commit: Any = None,
    on_rollback: Any = None,
    **unsupported: Any,
) -> Any:
    """Marks a function as a task (Prefect's ``@task``), with or without options."""
    _refuse(unsupported, "task")
    options = dict(
        name=name,
        description=description,
        tags=tags,
        version=version,
        cache_policy=cache_policy,
        cache_key_fn=cache_key_fn,
        cache_expiration=cache_expiration,
        task_run_name=task_run_name,
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
        retry_jitter_factor=retry_jitter_factor,
        persist_result=persist_result,
        timeout_seconds=timeout_seconds,
        log_prints=log_prints,
        refresh_cache=refresh_cache,
        on_completion=on_completion,
        on_failure=on_failure,
        on_running=on_running,
        retry_condition_fn=retry_condition_fn,
        on_commit=on_commit,
        on_rollback=on_rollback,
    )
    if __fn is not None:
        return Task(__fn, **options)
    return lambda fn: Task(fn, **options)


#: Options Prefect has that make no sense on Weir (they are accepted and ignored).
IGNORED_OPTIONS = {"result_storage", "result_serializer", "result_storage_key",
                   "cache_result_in_memory", "viz_return_value", "asset_deps", "isolation_level"}


def _refuse(unsupported: dict[str, Any], what: str) -> None:
    unknown = sorted(set(unsupported) - IGNORED_OPTIONS)
    if unknown:
        raise TypeError(f"@{what} has no option {', '.join(unknown)}")
