"""The host's run context, read once per run."""

from __future__ import annotations

import json
from typing import Any, Optional

from .. import _context, _host


def current() -> Optional[Any]:
    """The host's ``run-context`` of the running flow or task, or ``None`` outside a run."""
    if not _context.on_host():
        return None
    frame = _context.current()
    cached = getattr(frame, "_run_context", None)
    if cached is None:
        cached = _host.interface("context").current()
        setattr(frame, "_run_context", cached)
    return cached


def parameters(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {}
