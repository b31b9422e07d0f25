"""Benchmark flows, the same workloads as the Rust `examples/bench` and Prefect's side of
the comparison (`add_one`, `square`): the task bodies do almost nothing, so a run measures
orchestration."""

from weir import flow, task


@task
def add_one(x: int) -> int:
    """Adds one."""
    return x + 1


@task
def square(x: int) -> int:
    """Squares."""
    return x * x


@flow(name="chain")
def chain(n: int) -> int:
    """`n` tasks in sequence, each feeding the next; returns `n`."""
    x = 0
    for _ in range(n):
        x = add_one(x)
    return x


@flow(name="mapped")
def mapped(n: int) -> int:
    """`n` concurrent tasks with `map`; returns the sum of the squares."""
    return sum(square.map(list(range(n))).result())


@flow(name="ten")
def ten() -> int:
    """Ten tasks in sequence; returns 10."""
    x = 0
    for _ in range(10):
        x = add_one(x)
    return x
