"""Tasks of plugins: components whose tasks any flow of the workspace calls by name,
``"<plugin>/<task>"`` for the plugin's latest version or ``"<plugin>@<version>/<task>"``
for one version (Weir's built-in ``http``, ``notify``, ``jq``, ``template`` and ``csv``,
or a workspace's own, registered with ``weir plugin add``).

    from weir import flow, plugin

    request = plugin("http/request")
    first = plugin("jq/first")

    @flow
    def count_open_issues(repo: str) -> int:
        response = request.with_options(retries=3)(url=f"https://api.github.com/repos/{repo}/issues")
        return first(filter=".json | length", input=response)

A call is an ordinary task call of the calling run, made as a task's is: its states,
retries, timeout, cache, logs and artifacts, its place in the run's journal (a flow run
that runs again replays it). The plugin's task runs in its own sandbox, with the calling
deployment's capabilities. The host checks the arguments against the task's schema and
fails the task run naming the fields at fault.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from . import _host, exceptions
from .tasks import Options, Task

# A plugin's name, as the host checks it (`weir plugin add`).
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")

_EXPECTED = (
    'expected "<plugin>/<task>" (the plugin\'s latest version) or '
    '"<plugin>@<version>/<task>", such as "http/request" or "http@2/request"'
)

#: What ``with_options`` of a plugin call may set: the per-call options a task call sends
#: (the plugin's task keeps its own for those not given).
CALL_OPTIONS = (
    "name",
    "task_run_name",
    "tags",
    "retries",
    "retry_delay_seconds",
    "retry_jitter_factor",
    "timeout_seconds",
    "cache_policy",
    "cache_key_fn",
    "cache_expiration",
    "refresh_cache",
    "persist_result",
    "log_prints",
)


def check_reference(reference: Any) -> None:
    """Raises unless ``reference`` has the shape of a plugin task's name; whether the
    plugin, the version and the task exist is the host's to say, when the call is made."""
    if not isinstance(reference, str):
        raise TypeError(f"a plugin task is named by a string: {_EXPECTED}, not {reference!r}")
    head, slash, task_name = reference.partition("/")
    name, at, version = head.partition("@")
    if not slash:
        why = ""
    elif not _NAME.fullmatch(name) or name in (".", ".."):
        why = " (a plugin's name is 1 to 100 letters, digits, '.', '-' or '_')"
    elif at and not (version.isascii() and version.isdigit() and int(version) >= 1):
        why = " (a plugin's version is a whole number from 1)"
    elif not task_name:
        why = " (it names no task)"
    else:
        return
    raise ValueError(f"{reference!r} is not a plugin task{why}: {_EXPECTED}")


class Plugin(Task):
    """A plugin's task, called as a task is: ``greet(name="Ada")`` runs it and returns its
    value (``return_state=True`` for its state, ``wait_for=[...]`` to run after other
    runs), ``greet.submit(...)`` returns a future, ``greet.map(...)`` one future per
    element (``unmapped(x)`` passes ``x`` to every run), and ``greet.with_options(...)`` a
    copy whose calls carry other options.

    The arguments are the task's parameters by name: keyword arguments, or one dict (for
    parameters named ``return_state`` or ``wait_for``, or names that are no Python
    identifier). Futures and states among them are resolved as a task's are. The value
    comes back as the JSON the task returned (dicts, lists, numbers, strings).
    """

    def __init__(self, reference: str, options: Optional[dict[str, Any]] = None) -> None:
        check_reference(reference)
        given = {k: v for k, v in (options or {}).items() if v is not None}
        unknown = sorted(set(given) - set(CALL_OPTIONS))
        if unknown:
            raise TypeError(
                f"plugin({reference!r}).with_options() has no option {', '.join(unknown)}; a plugin "
                f"call takes {', '.join(CALL_OPTIONS)} (its task's hooks and retry condition are "
                "the plugin's own)"
            )
        name = given.get("name")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"a plugin call's name is a non-empty string, not {name!r}")
        run_name = given.get("task_run_name")
        if run_name is not None and not isinstance(run_name, str):
            raise TypeError(
                "a plugin call's task_run_name is a template over its arguments, such as "
                f"\"greet-{{name}}\" (the plugin's task runs elsewhere: no callable), not {run_name!r}"
            )
        self.reference = reference
        self.name = reference
        self.options = Options(
            run_name=run_name,
            **{k: v for k, v in given.items() if k not in ("name", "task_run_name")},
        )
        self._given = given
        self._host_name = reference
        # Its tags go with every call (a task sends its own only from a variant).
        self._variant = True
        self.isasync = False
        # The caller cannot see the plugin's source: a cache policy keyed on the task's
        # source (TASK_SOURCE) keys on the reference.
        self.source_hash = reference
        self.task_key = reference
        self.__name__ = reference
        self.__doc__ = f"The plugin task {reference}."

    def with_options(self, **overrides: Any) -> "Plugin":
        """A copy whose calls carry these options on top of this one's (``None`` drops one:
        the plugin's task keeps its own)."""
        return Plugin(self.reference, {**self._given, **overrides})

    def delay(self, *args: Any, **kwargs: Any) -> str:
        raise TypeError(
            f"plugin task {self.reference!r} cannot be started in the background with delay(): "
            "call it, submit() it or map() it inside a flow run"
        )

    def _bind(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        if len(args) > 1 or (args and not isinstance(args[0], dict)):
            given = ", ".join(type(a).__name__ for a in args)
            raise exceptions.ParameterTypeError(
                f"{self.reference}(): the arguments are the task's parameters, as keyword "
                f"arguments or one dict keyed by them, not positional ({given})"
            )
        params = dict(args[0]) if args else {}
        for key in params:
            if not isinstance(key, str):
                raise exceptions.ParameterTypeError(
                    f"{self.reference}(): the arguments are keyed by parameter names (strings), not {key!r}"
                )
        twice = sorted(set(params) & set(kwargs))
        if twice:
            raise exceptions.ParameterTypeError(
                f"{self.reference}(): {', '.join(twice)} given both in the dict and as keyword arguments"
            )
        params.update(kwargs)
        return params

    def _local(self, args: tuple, kwargs: dict[str, Any], return_state: bool) -> Any:
        raise _host.NoHost(
            f"plugin task {self.reference!r} runs on the Weir host only: call it inside a flow "
            "run (outside one, such as in a unit test, there is no plugin to run; stand in for "
            "it there)"
        )

    def _decode(self, value: Any) -> Any:
        return value

    def _overrides(self, tasks: Any) -> Any:
        """The options the calls change, and only those: the plugin's task has its own."""
        given, o = self._given, self.options

        def pick(key: str, value: Any) -> Any:
            return value if key in given else None

        policy = None
        if "cache_policy" in given or "cache_key_fn" in given:
            types = _host.interface("types")
            policy = {"none": types.CachePolicy.NONE, "inputs": types.CachePolicy.INPUTS,
                      "custom": types.CachePolicy.CUSTOM}[o.host_cache_policy]
        return tasks.TaskOverrides(
            name=given.get("name"),
            run_name_template=pick("task_run_name", o.template()),
            retries=pick("retries", o.retries),
            retry_delay_seconds=pick("retry_delay_seconds", list(o.retry_delay_seconds)),
            retry_jitter_factor=pick("retry_jitter_factor", o.retry_jitter_factor),
            timeout_seconds=pick("timeout_seconds", o.timeout_seconds or 0.0),
            cache_policy=policy,
            cache_expiration_seconds=pick("cache_expiration", o.cache_expiration),
            refresh_cache=pick("refresh_cache", o.refresh_cache),
            persist_result=pick("persist_result", o.persist_result),
            log_prints=pick("log_prints", o.log_prints),
        )

    def __repr__(self) -> str:
        return f"Plugin({self.reference!r})"


def plugin(reference: str) -> Plugin:
    """A plugin's task by name: ``plugin("http/request")`` (the plugin's latest version) or
    ``plugin("http@2/request")`` (version 2). Raises ``ValueError`` for a name of another
    shape; the host fails the call when the plugin, the version or the task does not exist,
    naming what does."""
    return Plugin(reference)
