"""Read replicas: lag-tolerant reads go to a healthy replica, a user's own writes stay visible to that user.

`ReadRouter.session(user_id=...)` opens a session whose reads run on a replica chosen round-robin among
the healthy ones and whose writes (a flush, an INSERT/UPDATE/DELETE) still go to the primary. No replica
configured, none healthy, or the chosen one refusing the connection: the session reads the primary, so a
replica outage is never a failed request.

Read-your-writes: after a user's write (an event, a privacy change, a deletion) `note_writes` stores a
marker for `read_your_writes_window_seconds` in the shared cache (Redis when configured, so every API
process sees it). In `lsn` mode the marker is the primary's WAL position after the commit and a replica
serves that user only once `pg_last_wal_replay_lsn()` has reached it (waiting at most `replica_wait_ms`,
then the primary answers); in `primary` mode every read of that user goes to the primary for the window.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine as SyncEngine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app.config import ReadYourWrites, Settings
from app.db import SessionFactory, create_engine, normalize_url
from app.metrics import DB_READS, REPLICA_HEALTHY
from app.services.cache import Cache, hash_tag

logger = logging.getLogger(__name__)

ReadSessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]
LSN_POLL_SECONDS = 0.005
HEALTH_TIMEOUT_SECONDS = 2.0


class ReplicaSession(Session):
    """A session that reads on its replica and writes on the primary (`info` holds both engines)."""

    def get_bind(self, mapper: Any = None, clause: Any = None, **kw: Any) -> SyncEngine:
        """The primary for flushes and DML, the replica for everything else."""
        if self._flushing or (clause is not None and getattr(clause, "is_dml", False)):
            primary: SyncEngine = self.info["primary"]
            return primary
        replica: SyncEngine = self.info["replica"]
        return replica


@dataclass
class Replica:
    """One read replica: its engine, its sessions and what the last health check found."""

    name: str
    engine: AsyncEngine
    sessions: SessionFactory
    healthy: bool = True
    checked_at: float = 0.0

    def mark(self, healthy: bool, reason: str = "") -> None:
        """Record a health observation (logged when it changes)."""
        if healthy != self.healthy:
            log = logger.info if healthy else logger.warning
            log("read replica %s is %s %s", self.name, "healthy" if healthy else "unhealthy", reason)
        self.healthy = healthy
        self.checked_at = time.monotonic()
        REPLICA_HEALTHY.labels(self.name).set(1 if healthy else 0)


def marker_key(user_id: str) -> str:
    """The cache key of a user's read-your-writes marker (same cluster slot as the user's results)."""
    return f"rw:{hash_tag(user_id)}"


@dataclass
class ReadRouter:
    """Chooses where a read runs; one per process, its state is only an optimisation (health, round-robin)."""

    settings: Settings
    primary: SessionFactory
    primary_engine: AsyncEngine | None
    cache: Cache | None
    replicas: list[Replica] = field(default_factory=list)
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _task: asyncio.Future[None] | None = None

    @classmethod
    def create(
        cls, settings: Settings, primary: SessionFactory, primary_engine: AsyncEngine, cache: Cache
    ) -> ReadRouter:
        """A router over `settings.read_urls` (none: every read goes to the primary)."""
        router = cls(settings, primary, primary_engine, cache)
        for url in settings.read_urls:
            engine = create_engine(normalize_url(url), settings, ping_every_checkout=True)
            sessions = async_sessionmaker(
                engine,
                expire_on_commit=False,
                sync_session_class=ReplicaSession,
                info={"primary": primary_engine.sync_engine, "replica": engine.sync_engine},
            )
            name = make_url(normalize_url(url)).render_as_string(hide_password=True)
            router.replicas.append(Replica(name, engine, sessions))
        return router

    @classmethod
    def primary_only(cls, settings: Settings, primary: SessionFactory) -> ReadRouter:
        """A router that sends everything to the primary (no replicas configured)."""
        return cls(settings, primary, None, None)

    def start(self) -> None:
        """Start the background health checks (only when there are replicas)."""
        if self.replicas and self._task is None:
            self._task = asyncio.ensure_future(self._health_loop())

    async def close(self) -> None:
        """Stop the health checks and close the replica pools."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for replica in self.replicas:
            await replica.engine.dispose()

    def sessions(self, user_id: str | None = None) -> ReadSessions:
        """A session factory for reads on behalf of `user_id` (None: nobody's own writes matter)."""
        return lambda: self.session(user_id)

    @asynccontextmanager
    async def session(self, user_id: str | None = None) -> AsyncIterator[AsyncSession]:
        """A session reading a healthy replica when that is safe for `user_id`, else the primary."""
        opened = await self._open(user_id)
        if opened is None:
            DB_READS.labels("primary").inc()
            async with self.primary() as session:
                yield session
            return
        DB_READS.labels("replica").inc()
        try:
            yield opened
        finally:
            await opened.close()

    async def _open(self, user_id: str | None) -> AsyncSession | None:
        """A connected session on a replica that may serve `user_id`, or None for the primary."""
        if not self.replicas:
            return None
        marker = await self._marker(user_id)
        if marker is not None and self.settings.read_your_writes is ReadYourWrites.PRIMARY:
            return None
        for replica in self._candidates():
            session = await self._connect(replica)
            if session is None:
                continue
            if marker is None or await self._caught_up(replica, session, marker):
                return session
            await session.close()
            return None  # the replica is behind this user's write (or failed): the primary has it
        return None

    def _candidates(self) -> list[Replica]:
        healthy = [r for r in self.replicas if r.healthy]
        if not healthy:
            return []
        start = next(self._turn) % len(healthy)
        return healthy[start:] + healthy[:start]

    async def _connect(self, replica: Replica) -> AsyncSession | None:
        session = replica.sessions()
        try:
            await session.connection()  # a replica that is down fails here, before any query of the caller
            return session
        except Exception as exc:  # any connect failure (driver, network, timeout): try elsewhere
            await session.close()
            replica.mark(False, f"({type(exc).__name__})")
            return None

    async def _caught_up(self, replica: Replica, session: AsyncSession, lsn: str) -> bool:
        """Whether the replica has replayed `lsn`, waiting up to `replica_wait_ms` (False when it fails)."""
        deadline = time.monotonic() + self.settings.replica_wait_ms / 1000
        query = text("SELECT coalesce(pg_last_wal_replay_lsn() >= CAST(CAST(:lsn AS text) AS pg_lsn), true)")
        try:
            while not bool((await session.execute(query, {"lsn": lsn})).scalar()):
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(LSN_POLL_SECONDS)
        except Exception as exc:  # a replica failing here is unhealthy; the primary answers this read
            replica.mark(False, f"({type(exc).__name__})")
            return False
        return True

    async def _marker(self, user_id: str | None) -> str | None:
        if user_id is None or self.cache is None:
            return None
        raw = await self.cache.get(marker_key(user_id))
        return raw.decode() if raw is not None else None

    async def note_writes(self, user_ids: Iterable[str]) -> None:
        """Remember that these users just wrote (after the commit), so their next reads see it."""
        ids = sorted(set(user_ids))
        if not self.replicas or not ids or self.cache is None:
            return
        lsn = await self._primary_lsn()
        ttl = self.settings.read_your_writes_window_seconds
        for user_id in ids:
            await self.cache.set(marker_key(user_id), lsn.encode(), ttl)

    async def _primary_lsn(self) -> str:
        if self.settings.read_your_writes is ReadYourWrites.PRIMARY:
            return "primary"
        async with self.primary() as session:
            return str((await session.execute(text("SELECT pg_current_wal_lsn()::text"))).scalar_one())

    async def _health_loop(self) -> None:
        while True:
            await asyncio.gather(*(self.check(r) for r in self.replicas))
            await asyncio.sleep(self.settings.replica_health_seconds)

    async def check(self, replica: Replica) -> bool:
        """One health check: the replica answers and is in recovery (a promoted one is not a replica)."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS), replica.engine.connect() as conn:
                in_recovery = bool((await conn.execute(text("SELECT pg_is_in_recovery()"))).scalar())
        except Exception as exc:  # any failure marks it unhealthy, never ends the loop
            replica.mark(False, f"({type(exc).__name__})")
            return False
        replica.mark(in_recovery, "" if in_recovery else "(not in recovery)")
        return in_recovery
