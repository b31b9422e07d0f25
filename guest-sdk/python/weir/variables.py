"""Workspace variables (Prefect's ``prefect.variables.Variable``), read-only in a run."""

from __future__ import annotations

import json
from typing import Any

from . import _context, _host


class Variable:
    """A workspace variable: ``Variable.get("name", default=...)``."""

    @classmethod
    def get(cls, name: str, default: Any = None) -> Any:
        """The variable's value (any JSON value), or ``default`` when it does not exist."""
        if not _context.on_host():
            return default
        text = _host.interface("variables").get(name)
        if text is None:
            return default
        try:
            return json.loads(text)
        except ValueError:
            return text
