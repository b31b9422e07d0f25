"""The flows and tasks of the component, as the decorators declare them."""

from __future__ import annotations

from typing import Any

_flows: dict[str, Any] = {}
_tasks: dict[str, Any] = {}


def _add(table: dict[str, Any], item: Any, what: str) -> None:
    existing = table.get(item.name)
    if existing is not None and existing.fn is not item.fn:
        where = f"{item.fn.__module__}.{item.fn.__qualname__}"
        other = f"{existing.fn.__module__}.{existing.fn.__qualname__}"
        raise ValueError(
            f"two {what}s are named {item.name!r} ({other} and {where}): give one of them "
            f"@{what}(name=...)"
        )
    table[item.name] = item


def add_flow(flow: Any) -> None:
    _add(_flows, flow, "flow")


def add_task(task: Any) -> None:
    _add(_tasks, task, "task")


def flows() -> dict[str, Any]:
    return _flows


def tasks() -> dict[str, Any]:
    return _tasks
