"""The raw SQL path: record the exact statements an uncached request runs, replay them through asyncpg.

Recording runs the real service (`recommendations.recommend`, cache bypassed by a unique context) in
process with a statement listener on the engine; replay sends the same SQL with the same parameters,
in the same order, on one pooled asyncpg connection per request. GraphQL/replay is our overhead.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import event

from app.bench.load import dsn
from app.config import Settings, get_settings
from app.main import build_state, close_state
from app.services import recommendations

_log: contextvars.ContextVar[list[tuple[str, tuple[Any, ...]]] | None] = contextvars.ContextVar(
    "bench_sql_log", default=None
)


@dataclass
class Recording:
    """The SELECT statements of one uncached request per user."""

    statements: dict[str, list[tuple[str, tuple[Any, ...]]]] = field(default_factory=dict)

    @property
    def round_trips(self) -> float:
        """Mean statements per request."""
        counts = [len(s) for s in self.statements.values()]
        return round(sum(counts) / len(counts), 2) if counts else 0.0


def _listen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    log = _log.get()
    if log is not None and statement.lstrip().upper().startswith(("SELECT", "WITH")):
        log.append((statement, tuple(parameters or ())))


async def record(database_url: str, users: list[str], settings: Settings | None = None) -> Recording:
    """Run one uncached request per user in process and keep the SQL it sent."""
    base = settings or Settings()
    state = await build_state(base.model_copy(update={"database_url": database_url, "redis_url": None}))
    event.listen(state.engine.sync_engine, "before_cursor_execute", _listen)
    out = Recording()
    try:
        warm = recommendations.RecRequest(user_id=users[0], context={"bench": "warm"})
        await recommendations.recommend(state.recommender, warm, request_id="bench-warm")
        for n, user in enumerate(users):
            log: list[tuple[str, tuple[Any, ...]]] = []
            token = _log.set(log)
            try:
                request = recommendations.RecRequest(user_id=user, context={"bench-record": n})
                await recommendations.recommend(state.recommender, request, request_id=f"bench-{n}")
            finally:
                _log.reset(token)
            out.statements[user] = log
    finally:
        await close_state(state)
    return out


class Replayer:
    """Replays recorded statements through a plain asyncpg pool."""

    def __init__(self, database_url: str, recording: Recording, pool_size: int) -> None:
        self.database_url = database_url
        self.recording = recording
        self.pool_size = pool_size
        self.pool: asyncpg.Pool | None = None

    async def __aenter__(self) -> Replayer:
        settings = get_settings()  # the same pgvector session settings as the API's engine (app/db.py)
        server = {
            "timezone": "UTC",
            "hnsw.ef_search": str(settings.hnsw_ef_search),
            "hnsw.iterative_scan": "relaxed_order",
        }
        self.pool = await asyncpg.create_pool(
            dsn(self.database_url), min_size=self.pool_size, max_size=self.pool_size, server_settings=server
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def run(self, user: str) -> None:
        """Send one user's statements in order on one connection."""
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            for sql, params in self.recording.statements[user]:
                await conn.fetch(sql, *params)
