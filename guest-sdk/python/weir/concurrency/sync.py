"""Prefect's import path: ``from weir.concurrency.sync import concurrency, rate_limit``."""

from . import AcquireConcurrencySlotTimeoutError, ConcurrencySlotAcquisitionError, concurrency, rate_limit

__all__ = ["AcquireConcurrencySlotTimeoutError", "ConcurrencySlotAcquisitionError",
           "concurrency", "rate_limit"]
