"""Subflows: a parent flow calls a child flow twice, then a task to combine the results."""

from weir import flow, task


@flow(name="child", flow_run_name="greet-{name}")
def child(name: str) -> str:
    """Greets one name."""
    return f"hello {name}"


@task
def combine(first: str, second: str) -> str:
    """Joins two greetings."""
    return f"{first}, {second}"


@flow(name="parent")
def parent(first: str = "ada", second: str = "grace") -> str:
    """Runs the child flow for two names and combines what they return."""
    return combine(child(first), child(second))
