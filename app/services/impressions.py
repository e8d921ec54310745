"""Impressions: every served list, recorded by a batched background writer off the request path.

`record` only puts the list on an in-memory queue (no I/O, no await), so serving pays nothing
for it. A background task writes the queue in batches with COPY when `impression_batch_size`
lists are waiting or `impression_flush_seconds` after the first one arrived, whichever comes
first. `close` (graceful shutdown) writes everything still queued. What a crash (SIGKILL, OOM)
loses is what was queued and not yet written: at most `impression_flush_seconds` of lists, or
one batch — and lists dropped when the queue was full are counted in
`recengine_impressions_dropped_total`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cachetools import LRUCache

from app.db import SessionFactory
from app.metrics import IMPRESSIONS, IMPRESSIONS_DROPPED, IMPRESSIONS_WRITTEN
from app.repositories import bulk

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
RECENT_LISTS = 10_000  # served lists remembered in process, to label clicks before their batch is written


@dataclass(frozen=True)
class Impression:
    """One served list: who saw which items, served by what."""

    request_id: str
    user_id: str | None
    session_id: str | None
    strategy: str
    item_ids: tuple[str, ...]
    model_version: int | None = None
    placement: str | None = None
    experiment: str | None = None
    arm: str | None = None
    parent_request_id: str | None = None
    cached: bool = False
    served_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def labels(self) -> tuple[str, str, str]:
        """(strategy, experiment, arm) for the Prometheus counters."""
        return self.strategy, self.experiment or "", self.arm or ""

    def record(self) -> tuple[Any, ...]:
        """The row in bulk.IMPRESSION_COLUMNS order."""
        return (
            self.request_id,
            self.parent_request_id,
            self.user_id,
            self.session_id,
            self.strategy,
            self.placement,
            self.model_version,
            self.experiment,
            self.arm,
            list(self.item_ids),
            self.cached,
            self.served_at,
        )


class ImpressionWriter:
    """An asyncio queue drained by one background task that writes batches with COPY."""

    def __init__(self, sessions: SessionFactory, *, batch_size: int, flush_seconds: float, queue_size: int) -> None:
        self.sessions = sessions
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._queue: asyncio.Queue[Impression] = asyncio.Queue(maxsize=queue_size)
        self._pending: list[Impression] = []
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Future[None] | None = None
        self.recent: LRUCache[str, Impression] = LRUCache(maxsize=RECENT_LISTS)

    def start(self) -> None:
        """Start the background task on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="impression-writer")

    def record(self, impression: Impression) -> None:
        """Queue a served list; never waits. A full queue drops it (counted)."""
        self.recent[impression.request_id] = impression
        IMPRESSIONS.labels(*impression.labels()).inc(len(impression.item_ids))
        try:
            self._queue.put_nowait(impression)
        except asyncio.QueueFull:
            IMPRESSIONS_DROPPED.labels("queue_full").inc()

    @property
    def queued(self) -> int:
        """Lists waiting to be written."""
        return self._queue.qsize() + len(self._pending)

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            self._writing = asyncio.ensure_future(self._write(batch))
            await asyncio.shield(self._writing)  # a shutdown lets a started batch finish

    async def _collect(self) -> list[Impression]:
        """Wait for one list, then up to `flush_seconds` for the batch to fill."""
        first = await self._queue.get()  # not `self._pending.append(await …)`: flush may swap the list meanwhile
        self._pending.append(first)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.flush_seconds
        while len(self._pending) < self.batch_size:
            self._drain(self.batch_size - len(self._pending))
            remaining = deadline - loop.time()
            if len(self._pending) >= self.batch_size or remaining <= 0:
                break
            await asyncio.sleep(min(POLL_SECONDS, remaining))
        batch, self._pending = self._pending, []
        return batch

    def _drain(self, limit: int | None = None) -> None:
        while not self._queue.empty() and (limit is None or limit > 0):
            self._pending.append(self._queue.get_nowait())
            limit = None if limit is None else limit - 1

    async def _write(self, batch: Sequence[Impression]) -> None:
        if not batch:
            return
        try:
            async with self.sessions() as session:
                await bulk.copy_impressions(session, [i.record() for i in batch])
                await session.commit()
            IMPRESSIONS_WRITTEN.inc(len(batch))
        except Exception:  # the served lists are gone; serving must not fail for it
            logger.exception("writing %d impressions failed", len(batch))
            IMPRESSIONS_DROPPED.labels("write_failed").inc(len(batch))

    async def flush(self) -> None:
        """Write everything queued now (tests and shutdown)."""
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)
        self._drain()
        batch, self._pending = self._pending, []
        for start in range(0, len(batch), self.batch_size):
            await self._write(batch[start : start + self.batch_size])

    async def close(self) -> None:
        """Stop the task and write what is still queued (graceful shutdown)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()
