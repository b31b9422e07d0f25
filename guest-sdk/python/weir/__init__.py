"""Weir's Python SDK: Prefect's programming model for flows that run as WebAssembly
components on Weir.

    from weir import flow, task

    @task
    def print_hello(name: str) -> str:
        greeting = f"Hello, {name}!"
        print(greeting)
        return greeting

    @flow(name="hello", log_prints=True)
    def hello_world(name: str = "world") -> str:
        return print_hello(name)

``weir build flows.py -o flows.wasm`` builds the component; ``weir run flows.wasm hello``
runs it. Outside a component (tests, a plain interpreter) flows and tasks run as plain
functions.
"""

from .artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from .deployments import run_deployment
from .flow_runs import pause_flow_run, suspend_flow_run
from .flows import Flow, flow
from .futures import PrefectFuture, wait
from .input import RunInput
from .logging import get_run_logger
from .plugins import plugin
from .states import Cancelled, Completed, Crashed, Failed, Pending, Running, Scheduled, State, StateType
from .tasks import Task, allow_failure, exponential_backoff, task, task_input_hash, unmapped
from .variables import Variable

# Imported here so that a component holds them even when a flow imports them inside a
# function (a component's modules are those imported when it was built).
from . import concurrency, task_runners, transactions  # noqa: E402
from .concurrency import sync as _concurrency_sync  # noqa: E402, F401

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "Completed",
    "Crashed",
    "Failed",
    "Flow",
    "Pending",
    "PrefectFuture",
    "RunInput",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "Task",
    "Variable",
    "allow_failure",
    "create_image_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "exponential_backoff",
    "flow",
    "get_run_logger",
    "pause_flow_run",
    "plugin",
    "run_deployment",
    "suspend_flow_run",
    "task",
    "task_input_hash",
    "unmapped",
    "update_progress_artifact",
    "wait",
]
