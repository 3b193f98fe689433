"""The workers' heartbeats: which worker runs where, in what state, and when it last said so."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.models.base import Base, utcnow

WORKER_STATES = ("starting", "running", "reconnecting", "stopping", "stopped")


class WorkerHeartbeat(Base):
    """One row per worker process (``leadflow worker``, or the one inside ``serve``).

    A worker rewrites its row every ``pipeline.heartbeat``; one whose ``beat_at`` is
    older than ``pipeline.stalled_after`` is dead or cut off from the database.
    procrastinate keeps its own heartbeat per worker run (its id changes with every
    restart of the worker loop); this one is per process and says why it is not working.
    """

    __tablename__ = "worker_heartbeats"
    __table_args__ = (
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in WORKER_STATES) + ")", name="state"
        ),
    )

    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # host:pid:kind
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # worker | embedded
    state: Mapped[str] = mapped_column(String(16))
    concurrency: Mapped[int] = mapped_column(Integer)
    queue_worker_id: Mapped[int | None] = mapped_column(BigInteger)  # procrastinate's, this run
    outages: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow)
