"""Pausing and suspending the flow run until it is resumed, optionally with typed input
(Prefect's ``pause_flow_run``, ``suspend_flow_run`` and ``wait_for_input``)."""

from __future__ import annotations

import json
from typing import Any, Optional

from . import _context, _host, _json, exceptions
from .schema import input_schema


def _pause(wait_for_input: Any, timeout: float, key: Optional[str], suspend: bool) -> Any:
    if not _context.on_host():
        raise exceptions.PausedRun("a flow run pauses on the Weir host only")
    schema = None if wait_for_input is None else json.dumps(input_schema(wait_for_input))
    flows = _host.interface("flows")
    request = flows.PauseRequest(
        timeout_seconds=float(timeout),
        key=key,
        description=(getattr(wait_for_input, "__doc__", None) or None) if wait_for_input else None,
        input_schema=schema,
        suspend=suspend,
    )
    try:
        text = flows.pause(request)
    except Exception as error:  # noqa: BLE001 - a WIT result error
        value = _host.err_value(error)
        if value is not None:
            raise exceptions.PausedRun(str(value)) from None
        raise
    if wait_for_input is None:
        return None
    value = json.loads(text)
    return _json.from_jsonable(value, wait_for_input)


def pause_flow_run(wait_for_input: Any = None, timeout: float = 3600, poll_interval: int = 10,
                   key: Optional[str] = None) -> Any:
    """Pauses the flow run until it is resumed (``weir runs resume <id>``), for at most
    ``timeout`` seconds; past it the run fails. With ``wait_for_input`` (a ``RunInput``
    subclass, dataclass, TypedDict or plain type) the resume must bring input of that type,
    which is returned."""
    return _pause(wait_for_input, timeout, key, suspend=False)


def suspend_flow_run(wait_for_input: Any = None, flow_run_id: Optional[str] = None,
                     timeout: Optional[float] = 3600, key: Optional[str] = None) -> Any:
    """Suspends the flow run: it releases its instance and slots; on resume it runs again
    from the start, its completed calls replayed, and this call returns the input."""
    if flow_run_id is not None:
        raise exceptions.PausedRun("a flow run suspends itself only (flow_run_id is not supported)")
    return _pause(wait_for_input, timeout or 3600, key, suspend=True)
