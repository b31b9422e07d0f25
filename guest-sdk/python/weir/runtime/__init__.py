"""What a running flow or task knows about its run (Prefect's ``prefect.runtime``):
``flow_run.name``, ``flow_run.parameters``, ``task_run.name``, ``task_run.run_count``..."""

from . import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]
