"""Retries: a task that fails on its first two attempts, retried with growing delays."""

from weir import flow, get_run_logger, task
from weir.runtime import task_run


@task(retries=3, retry_delay_seconds=[0.1, 0.2, 0.4])
def flaky() -> int:
    """Fails unless this is at least the third attempt; returns the attempt that succeeded."""
    attempt = task_run.run_count
    if attempt < 3:
        get_run_logger().warning(f"attempt {attempt} fails on purpose")
        raise RuntimeError(f"attempt {attempt} failed")
    get_run_logger().info(f"attempt {attempt} succeeds")
    return attempt


@flow(name="retries")
def retries() -> int:
    """Runs the flaky task and returns the attempt that succeeded (3)."""
    return flaky()
