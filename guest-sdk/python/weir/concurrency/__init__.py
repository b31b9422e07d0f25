"""Global concurrency and rate limits of the workspace (Prefect's
``prefect.concurrency.sync``): ``with concurrency("db", occupy=2): ...`` holds slots of a
limit for a block, across every node of the server; ``rate_limit("api")`` waits until
the limit's decaying slots let one more call through. Create the limits first with
``weir gcl set db 2`` (or ``PUT /api/global-concurrency-limits/db``)."""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Union

from .. import _context, _host, exceptions

__all__ = ["AcquireConcurrencySlotTimeoutError", "ConcurrencySlotAcquisitionError",
           "concurrency", "rate_limit"]


class ConcurrencySlotAcquisitionError(exceptions.WeirException):
    """The slots could not be taken (a strict limit that does not exist, too many slots)."""


class AcquireConcurrencySlotTimeoutError(ConcurrencySlotAcquisitionError, TimeoutError):
    """The slots were not free within ``timeout_seconds``."""


def _request(names: Union[str, list[str]], occupy: int, timeout_seconds: Optional[float],
             strict: bool):
    if isinstance(names, str):
        names = [names]
    c = _host.interface("concurrency")
    return c, c.Request(names=list(names), occupy=int(occupy),
                        timeout_seconds=None if timeout_seconds is None else float(timeout_seconds),
                        strict=bool(strict))


def _error(error: Exception) -> Exception:
    value = _host.err_value(error)
    if value is None:
        return error
    text = str(value)
    if text.startswith("timed out"):
        return AcquireConcurrencySlotTimeoutError(text)
    return ConcurrencySlotAcquisitionError(text)


@contextlib.contextmanager
def concurrency(names: Union[str, list[str]], occupy: int = 1, timeout_seconds: Optional[float] = None,
                strict: bool = False) -> Iterator[None]:
    """Holds ``occupy`` slots of each named limit while the block runs (outside a run on
    the host, it limits nothing)."""
    if not _context.on_host():
        yield
        return
    c, request = _request(names, occupy, timeout_seconds, strict)
    try:
        handle = c.acquire(request)
    except Exception as error:  # noqa: BLE001 - a WIT result error
        raise _error(error) from None
    try:
        yield
    finally:
        handle.release()
        handle.__exit__(None, None, None)


def rate_limit(names: Union[str, list[str]], occupy: int = 1, timeout_seconds: Optional[float] = None,
               strict: bool = False) -> None:
    """Waits until the named rate limits (limits with a slot decay) let ``occupy`` more
    calls through."""
    if not _context.on_host():
        return
    c, request = _request(names, occupy, timeout_seconds, strict)
    try:
        c.rate_limit(request)
    except Exception as error:  # noqa: BLE001 - a WIT result error
        raise _error(error) from None
