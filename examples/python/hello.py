"""Prefect's classic: a flow that greets through a task."""

from weir import flow, task


@task
def print_hello(name: str) -> str:
    """Prints a greeting and returns it."""
    greeting = f"Hello, {name}!"
    print(greeting)
    return greeting


@flow(name="hello", log_prints=True)
def hello_world(name: str = "world") -> str:
    """Greets someone, the world by default."""
    return print_hello(name)
