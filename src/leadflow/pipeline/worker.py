"""Running a worker: the same code in ``leadflow worker`` and inside ``leadflow serve``."""

from __future__ import annotations

from leadflow.pipeline.tasks import record_failures
from leadflow.runtime import Runtime

# A worker writes a heartbeat every pipeline.heartbeat (10 s); one silent for
# pipeline.stalled_after (30 s) is taken for dead and its jobs are requeued by
# queue.recover_stalled, which runs every 15 s: a job of a killed worker runs
# again within a minute.


async def run_worker(
    rt: Runtime,
    *,
    concurrency: int,
    name: str = "worker",
    install_signal_handlers: bool = True,
    wait: bool = True,
) -> None:
    """Work until stopped (SIGTERM/SIGINT or cancellation); running jobs finish first.
    With ``wait=False``, stop once no job is ready (for tests and one-off runs)."""
    await rt.jobs.run_worker_async(
        name=name,
        wait=wait,
        concurrency=concurrency,
        install_signal_handlers=install_signal_handlers,
        worker_middleware=[record_failures],
        update_heartbeat_interval=rt.config.pipeline.heartbeat.total_seconds(),
        stalled_worker_timeout=rt.config.pipeline.stalled_after.total_seconds(),
        listen_notify=True,
    )
