"""The host's imports, reached lazily.

Inside a component, componentize-py generates the ``wit_world`` bindings of Weir's WIT
world; anywhere else (pytest, a plain interpreter) they do not exist, and flows and tasks
run locally without orchestration. Every call to the host goes through this module, so
tests can stand in for the host by replacing its attributes.
"""

from __future__ import annotations

from typing import Any


class NoHost(RuntimeError):
    """Raised when a host service is used outside a Weir component."""


def _bindings() -> Any:
    try:
        from wit_world.imports import (  # type: ignore[import-not-found]
            artifacts,
            concurrency,
            context,
            deployments,
            flows,
            logging,
            tasks,
            transactions,
            types,
            variables,
        )
    except ImportError as error:  # pragma: no cover - only outside a component
        raise NoHost(
            "this needs the Weir host: build the flows with `weir build` and run them "
            "with `weir run`"
        ) from error
    return {
        "artifacts": artifacts,
        "concurrency": concurrency,
        "context": context,
        "deployments": deployments,
        "flows": flows,
        "logging": logging,
        "tasks": tasks,
        "transactions": transactions,
        "types": types,
        "variables": variables,
    }


_cache: dict[str, Any] | None = None


def interface(name: str) -> Any:
    """One imported WIT interface of the ``weir:flow`` world (``tasks``, ``flows``, ...)."""
    global _cache
    if _cache is None:
        _cache = _bindings()
    return _cache[name]


def available() -> bool:
    """Whether the host's bindings are there (inside a component)."""
    try:
        interface("types")
    except NoHost:
        return False
    return True


def err_value(error: BaseException) -> Any:
    """The payload of a WIT ``result`` error raised by a host call, else ``None``."""
    value = getattr(error, "value", None)
    if type(error).__name__ == "Err":
        return value
    return None
