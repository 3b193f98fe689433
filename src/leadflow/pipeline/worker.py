"""Running a worker: the same code in ``leadflow worker`` and inside ``leadflow serve``."""

from __future__ import annotations

from leadflow.pipeline.tasks import record_failures
from leadflow.runtime import Runtime

# procrastinate writes a heartbeat every 10 s; a worker silent for 30 s is taken
# for dead and its jobs are requeued by queue.recover_stalled (every 15 s), so a
# job of a killed worker runs again within a minute.
HEARTBEAT_SECONDS = 10.0


async def run_worker(
    rt: Runtime, *, concurrency: int, name: str = "worker", install_signal_handlers: bool = True
) -> None:
    """Work until stopped (SIGTERM/SIGINT or cancellation); running jobs finish first."""
    await rt.jobs.run_worker_async(
        name=name,
        concurrency=concurrency,
        install_signal_handlers=install_signal_handlers,
        worker_middleware=[record_failures],
        update_heartbeat_interval=HEARTBEAT_SECONDS,
        listen_notify=True,
    )
