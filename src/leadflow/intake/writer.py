"""Group commit: the submissions that arrive together share one transaction.

A submission is acknowledged only after the transaction that holds it has
committed; what group commit changes is that one commit serves many. When the
writer is idle, a submission starts a transaction at once (no added latency);
while ``parallel`` transactions are running, the submissions that arrive wait
for the next one and go into it together, up to ``max_batch``. PostgreSQL's own WAL writer
does the same for concurrent commits; doing it here also shares the statements
and the round trips, which are what a Python process spends its time on.

A batch that the database refuses as a whole because of one row (a value it
cannot store, say) is retried one submission per transaction, so one bad
submission fails alone and never takes its neighbours down with it. When the
database itself is unavailable, every request of the batch hears so at once
(503, retry later) rather than after one attempt per submission.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadflow.db import transaction
from leadflow.errors import database_unavailable
from leadflow.intake.service import Accepted, Pending, store

logger = logging.getLogger(__name__)

_Waiting = tuple[Pending, "asyncio.Future[Accepted]"]


class GroupCommit:
    """``parallel`` transactions at most at a time, so that the process prepares the
    next batch while the database commits the last one.

    ``max_batch`` bounds the advisory locks one transaction holds (one per
    submission): they share PostgreSQL's lock table with every other session."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_batch: int = 64,
        parallel: int = 2,
    ):
        self._sessions = sessions
        self._max_batch = max_batch
        self._parallel = parallel
        self._waiting: list[_Waiting] = []
        self._running = 0  # committers that have not yet seen an empty queue
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: Pending) -> Accepted:
        """Store ``item``; return its answer once the transaction holding it has committed."""
        answer: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, answer))
        if self._running < self._parallel:
            self._running += 1
            task = asyncio.create_task(self._commit_waiting())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A client that goes away does not take the batch with it: the submission
        # is still stored (as when a client leaves after the commit).
        return await asyncio.shield(answer)

    async def close(self) -> None:
        """Wait until every submission handed over so far has its answer."""
        while self._tasks:
            await asyncio.shield(asyncio.gather(*self._tasks, return_exceptions=True))

    async def _commit_waiting(self) -> None:
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    await self._commit(batch)
                except Exception as exc:  # a bug of ours: this batch's requests hear of it
                    logger.exception("a batch of %d submissions could not be stored", len(batch))
                    for _, answer in batch:
                        _answer(answer, exc)
            # No await between the empty queue above and this line: a submission
            # that arrives after it finds a free committer slot.
            self._running -= 1
        except BaseException:  # cancelled: the event loop is closing
            self._running -= 1
            stranded = batch if self._running else [*batch, *self._waiting]
            if not self._running:
                self._waiting.clear()
            for _, answer in stranded:
                answer.cancel()
            raise

    async def _commit(self, batch: Sequence[_Waiting]) -> None:
        try:
            async with transaction(self._sessions) as session:
                answers = await store(session, [item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or database_unavailable(exc):
                # Alone, or nothing would go through anyway: each request hears it.
                for _, answer in batch:
                    _answer(answer, exc)
                return
            logger.warning(
                "a batch of %d submissions failed (%s: %s); storing each on its own",
                len(batch),
                type(exc).__name__,
                exc,
            )
            for one in batch:
                await self._commit([one])
            return
        for (_, answer), result in zip(batch, answers, strict=True):
            _answer(answer, result)


def _answer(answer: asyncio.Future[Accepted], result: Accepted | Exception) -> None:
    if answer.done():
        return
    if isinstance(result, Exception):
        answer.set_exception(result)
    else:
        answer.set_result(result)
