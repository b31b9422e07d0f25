"""Secrets (Prefect's ``prefect.blocks.system.Secret``): workspace secrets, decrypted for
the run that reads them."""

from __future__ import annotations

from .. import _context, _host
from ..exceptions import ObjectNotFound


class Secret:
    """``Secret.load("name").get()``: a workspace secret. Keep it out of logs and results."""

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self._value = value

    @classmethod
    def load(cls, name: str) -> "Secret":
        if not _context.on_host():
            raise ObjectNotFound(f"secret {name!r}: secrets are read in a run on the Weir host")
        value = _host.interface("variables").secret(name)
        if value is None:
            raise ObjectNotFound(f"there is no secret named {name!r} in this workspace")
        return cls(name, value)

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(name={self.name!r}, value='********')"
