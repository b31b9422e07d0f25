"""Runs of deployments started from a flow (Prefect's ``run_deployment``)."""

from __future__ import annotations

import datetime
from typing import Any, Optional

from . import _context, _host, _json, exceptions


class FlowRun:
    """The run ``run_deployment`` created (it does not wait for it)."""

    def __init__(self, id: str, deployment: str) -> None:
        self.id = id
        self.deployment = deployment

    def __repr__(self) -> str:
        return f"FlowRun(id={self.id!r}, deployment={self.deployment!r})"


def run_deployment(name: str, parameters: Optional[dict[str, Any]] = None,
                   scheduled_time: Optional[datetime.datetime] = None, timeout: Optional[float] = 0,
                   **_: Any) -> FlowRun:
    """Creates a run of the deployment ``name`` of this workspace, now or at
    ``scheduled_time``; returns it without waiting (Weir's runs of deployments are not
    awaited from a flow)."""
    if not _context.on_host():
        raise exceptions.WeirException("run_deployment works in a run on the Weir host")
    when = None
    if scheduled_time is not None:
        if scheduled_time.tzinfo is None:
            scheduled_time = scheduled_time.replace(tzinfo=datetime.timezone.utc)
        when = scheduled_time.isoformat()
    try:
        run_id = _host.interface("deployments").run(name, _json.dumps(parameters or {}), when)
    except Exception as error:  # noqa: BLE001 - a WIT result error
        value = _host.err_value(error)
        if value is not None:
            raise exceptions.ObjectNotFound(str(value)) from None
        raise
    return FlowRun(run_id, name)
