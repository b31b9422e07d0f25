"""Caching: a task keyed by its inputs, so that calling it again with the same input returns
the cached result instead of running it."""

from datetime import timedelta

from weir import flow, get_run_logger, task
from weir.cache_policies import INPUTS


@task(cache_policy=INPUTS, cache_expiration=timedelta(hours=1))
def expensive(x: int) -> int:
    """Squares `x`, slowly in spirit; logs "computing" only when the body really runs."""
    get_run_logger().info(f"computing expensive({x})")
    return x * x


@flow(name="caching")
def caching(x: int) -> int:
    """Calls the expensive task twice with the same input: the second call is a cache hit."""
    first = expensive(x)
    second = expensive(x)
    if first != second:
        raise ValueError(f"the cached result {second} differs from {first}")
    return first
