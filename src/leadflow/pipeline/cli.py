"""``leadflow status`` on a terminal: the pipeline's status as tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from leadflow.pipeline.schemas import PipelineStatus


def render(report: PipelineStatus, console: Console | None = None) -> None:
    console = console or Console()
    workers = Table(title="Workers", title_justify="left")
    for column in ("worker", "state", "last heartbeat", "jobs", "outages", "since"):
        workers.add_column(column)
    for w in report.workers:
        state = w.state if w.alive else f"[red]silent ({w.state})[/red]"
        workers.add_row(
            w.name,
            state,
            f"{w.seconds_since_heartbeat:.0f} s ago",
            f"{w.running_jobs}/{w.concurrency}",
            str(w.outages),
            f"{w.started_at:%Y-%m-%d %H:%M:%S}",
        )
    if not report.workers:
        workers.add_row("[red]none has ever run on this database[/red]", "", "", "", "", "")
    console.print(workers)
    queue = Table(title="Queue", title_justify="left")
    for column in ("task", "ready", "oldest ready", "running", "scheduled", "dead letters"):
        queue.add_column(column)
    for t in report.queue:
        oldest = "" if t.oldest_ready_seconds is None else f"{t.oldest_ready_seconds:.0f} s"
        queue.add_row(
            t.task, str(t.ready), oldest, str(t.running), str(t.scheduled), str(t.dead_letters)
        )
    console.print(queue)
    if report.healthy:
        console.print("[green]Healthy.[/green]")
    for problem in report.problems:
        console.print(f"[red]Problem:[/red] {problem}")
