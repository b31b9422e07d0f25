"""Exceptions raised by Weir's SDK (Prefect's ``prefect.exceptions`` names where they exist)."""

from __future__ import annotations

import builtins
import importlib
from typing import Any, Optional


class WeirException(Exception):
    """Base class of the SDK's own exceptions."""


class FailedRun(WeirException):
    """A task or flow run that did not complete, whose own exception cannot be rebuilt."""

    def __init__(self, message: str, kind: str = "error", details: Any = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.details = details


class UpstreamTaskError(FailedRun):
    """A task did not run because a task it waited for did not complete."""


class CancelledRun(FailedRun):
    """The run was cancelled."""


class CrashedRun(FailedRun):
    """The run crashed: the host could not run it to the end (trap, timeout, lost node)."""


class ParameterTypeError(WeirException, TypeError):
    """Parameters that do not fit the function's signature or type hints."""


class PausedRun(WeirException):
    """A pause or suspend that failed (it timed out, or the run cannot pause)."""


class MappingLengthMismatch(WeirException, ValueError):
    """``task.map`` got iterables of different lengths."""


class MappingMissingIterable(WeirException, ValueError):
    """``task.map`` got no iterable to map over."""


class ObjectNotFound(WeirException, ValueError):
    """A variable, secret or deployment that does not exist."""


def describe(error: BaseException) -> dict[str, Any]:
    """What crosses the boundary of an exception: its class (to rebuild it) and its args."""
    cls = type(error)
    args = []
    for arg in error.args:
        if isinstance(arg, (str, int, float, bool)) or arg is None:
            args.append(arg)
        else:
            args.append(str(arg))
    return {"type": f"{cls.__module__}.{cls.__qualname__}", "args": args}


def message_of(error: BaseException) -> str:
    text = str(error)
    name = type(error).__name__
    return f"{name}: {text}" if text else name


def rebuild(kind: str, message: str, details: Any) -> BaseException:
    """The exception a failure stands for: the original class when it can be found (the
    same component holds the same modules), else a :class:`FailedRun`."""
    if kind in ("upstream",):
        return UpstreamTaskError(message, kind, details)
    if kind == "cancelled":
        return CancelledRun(message, kind, details)
    if kind in ("crashed", "trap", "memory", "timeout", "limit", "panic"):
        error_cls = TimeoutError if kind == "timeout" else None
        if error_cls is not None:
            error = error_cls(message)
            return error
        return CrashedRun(message, kind, details)
    exception = details.get("exception") if isinstance(details, dict) else None
    if isinstance(exception, dict) and isinstance(exception.get("type"), str):
        cls = _find_class(exception["type"])
        if cls is not None:
            args = exception.get("args") or []
            try:
                return cls(*args)
            except Exception:  # noqa: BLE001 - a class whose constructor wants more
                try:
                    error = cls.__new__(cls)
                    error.args = tuple(args)
                    return error
                except Exception:  # noqa: BLE001
                    pass
    return FailedRun(message, kind, details)


def _find_class(path: str) -> Optional[type]:
    module_name, _, qualname = path.rpartition(".")
    if not module_name:
        return None
    try:
        if module_name == "builtins":
            target: Any = builtins
        else:
            target = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    if isinstance(target, type) and issubclass(target, BaseException):
        return target
    return None
