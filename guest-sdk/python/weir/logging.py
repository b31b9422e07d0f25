"""The run logger (Prefect's ``get_run_logger``): records go to the run's logs on the host.

It is a standard :class:`logging.Logger`, so ``logger.info("rows: %d", n)`` works. Outside a
run its records go to stderr.
"""

from __future__ import annotations

import logging as _logging
import sys
from typing import Any

from . import _context, _host

_LEVELS = [
    (_logging.CRITICAL, "CRITICAL"),
    (_logging.ERROR, "ERROR"),
    (_logging.WARNING, "WARNING"),
    (_logging.INFO, "INFO"),
    (0, "DEBUG"),
]


class HostHandler(_logging.Handler):
    """Sends records to the host's run log (or stderr outside a run)."""

    def emit(self, record: _logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:  # noqa: BLE001
            self.handleError(record)
            return
        if not _context.on_host():
            print(f"{record.levelname}: {message}", file=sys.stderr)
            return
        level_name = next(name for level, name in _LEVELS if record.levelno >= level)
        logging_interface = _host.interface("logging")
        level = getattr(_host.interface("types").LogLevel, level_name)
        logging_interface.log(level, message)


_logger = _logging.getLogger("weir.run")
_logger.setLevel(_logging.INFO)
_logger.propagate = False
_handler = HostHandler()
_handler.setFormatter(_logging.Formatter("%(message)s"))
_logger.addHandler(_handler)


def get_run_logger(*args: Any, **kwargs: Any) -> _logging.Logger:
    """The current run's logger (Prefect's ``get_run_logger()``)."""
    return _logger


def get_logger(name: str = "weir") -> _logging.Logger:
    """A logger whose records also reach the run's logs."""
    logger = _logging.getLogger(f"weir.run.{name}")
    return logger
