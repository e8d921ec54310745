"""Load a synthetic data set with COPY; secondary indexes are dropped first and rebuilt, timed."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from app.bench import synth

Progress = Callable[[str], None]
MARKER = "bench_dataset"
CONTENT_COLUMNS = [
    "content_id",
    "title",
    "description",
    "content_type",
    "status",
    "category",
    "tags",
    "metadata",
    "created_at",
    "published_at",
    "embedding",
    "embedding_model",
]
EVENT_COLUMNS = ["event_id", "user_id", "content_id", "event_type", "value", "timestamp"]
KEY_COLUMNS = ["event_id", "user_id", "timestamp"]
# Index builds after a load: enough memory for a 1M-item HNSW graph (~2.5 GB) to be built in memory rather
# than spilled (pgvector's "graph no longer fits" slow path); an upper bound, small loads use less.
INDEX_BUILD = ("SET maintenance_work_mem = '4GB'", "SET max_parallel_maintenance_workers = 2")


def dsn(url: str) -> str:
    """The libpq/asyncpg form of an SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def connect(url: str) -> asyncpg.Connection:
    """A raw asyncpg connection with the pgvector codec."""
    conn = await asyncpg.connect(dsn(url), server_settings={"timezone": "UTC"})
    await register_vector(conn)
    return conn


@dataclass
class LoadReport:
    """Rows written and seconds spent per step and per index."""

    spec: dict[str, Any]
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    index_seconds: dict[str, float] = field(default_factory=dict)
    reused: bool = False


async def loaded_spec(conn: asyncpg.Connection) -> dict[str, Any] | None:
    """The spec of the data set already in this database, if any."""
    if await conn.fetchval("SELECT to_regclass($1)", MARKER) is None:
        return None
    raw = await conn.fetchval(f"SELECT spec FROM {MARKER} LIMIT 1")
    return dict(json.loads(raw)) if raw else None


async def _secondary_indexes(conn: asyncpg.Connection, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        """SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
           WHERE t.relname = ANY($1::text[]) AND NOT i.indisprimary AND NOT i.indisunique""",
        list(tables),
    )
    # a partitioned table's index reads "ON ONLY events": recreate it on the partitions too
    return [(r[0], r[1].replace(" ON ONLY ", " ON ")) for r in rows]


async def _timed(conn: asyncpg.Connection, sql: str, *args: Any) -> float:
    started = time.perf_counter()
    await conn.execute(sql, *args)
    return round(time.perf_counter() - started, 3)


async def load(url: str, spec: synth.Spec, *, fresh: bool = False, progress: Progress | None = None) -> LoadReport:
    """Load `spec` into the (migrated) database at `url`, unless it already holds it."""
    say = progress or (lambda _: None)
    conn = await connect(url)
    try:
        report = LoadReport(spec=spec.as_dict())
        if not fresh and await loaded_spec(conn) == spec.as_dict():
            report.reused = True
            return report
        await _reset(conn)
        indexes = await _secondary_indexes(conn, ("content", "events", "event_keys"))
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        await _copy_all(conn, spec, report, say)
        for setting in INDEX_BUILD:
            await conn.execute(setting)
        for name, ddl in indexes:
            say(f"index {name}")
            report.index_seconds[name] = await _timed(conn, ddl)
        report.seconds["analyze"] = await _timed(conn, "ANALYZE")
        await _mark(conn, spec, report)
        return report
    finally:
        await conn.close()


async def _reset(conn: asyncpg.Connection) -> None:
    await conn.execute(f"DROP TABLE IF EXISTS {MARKER}")
    await conn.execute(
        "TRUNCATE item_factors, user_factors, model_versions, event_keys, events, content, users CASCADE"
    )


async def _mark(conn: asyncpg.Connection, spec: synth.Spec, report: LoadReport) -> None:
    await conn.execute(f"CREATE TABLE {MARKER} (spec jsonb, report jsonb, loaded_at timestamptz DEFAULT now())")
    body = {"rows": report.rows, "seconds": report.seconds, "index_seconds": report.index_seconds}
    await conn.execute(
        f"INSERT INTO {MARKER} (spec, report) VALUES ($1, $2)", json.dumps(spec.as_dict()), json.dumps(body)
    )


async def _copy_all(conn: asyncpg.Connection, spec: synth.Spec, report: LoadReport, say: Progress) -> None:
    for name, step in (("users", _copy_users), ("content", _copy_content), ("events", _copy_events)):
        say(f"copy {name}")
        started = time.perf_counter()
        report.rows[name] = await step(conn, spec)
        report.seconds[f"copy_{name}"] = round(time.perf_counter() - started, 3)


async def _copy_users(conn: asyncpg.Connection, spec: synth.Spec) -> int:
    for start in range(0, spec.users, synth.CHUNK):
        ids = synth.user_id(np.arange(start, min(start + synth.CHUNK, spec.users)))
        await conn.copy_records_to_table("users", records=[(i,) for i in ids], columns=["user_id"])
    return spec.users


def _stamp(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def _copy_content(conn: asyncpg.Connection, spec: synth.Spec) -> int:
    for part in synth.item_chunks(spec):
        ids = synth.content_id(part.index)
        records = [
            (
                cid,
                f"Synthetic {ct} {i} of topic {c}",
                f"Synthetic item {i} in topic {c}.",
                ct,
                "draft" if draft else "published",
                f"topic-{c % synth.TOPICS}",
                [f"t{c}", ct],
                json.dumps({"inStock": stock}),
                _stamp(ts),
                _stamp(ts),
                vec,
                synth.EMBEDDING_MODEL,
            )
            for cid, i, c, ct, draft, stock, ts, vec in zip(
                ids,
                part.index.tolist(),
                part.cluster.tolist(),
                part.content_type.tolist(),
                part.draft.tolist(),
                part.in_stock.tolist(),
                part.created.tolist(),
                part.embedding,
                strict=True,
            )
        ]
        await conn.copy_records_to_table("content", records=records, columns=CONTENT_COLUMNS)
    return spec.items


async def _copy_events(conn: asyncpg.Connection, spec: synth.Spec) -> int:
    for part in synth.event_chunks(spec):
        ids = [uuid.UUID(bytes=b.tobytes()) for b in part.uuid_bytes]
        users = synth.user_id(part.user)
        stamps = [_stamp(t) for t in part.ts.tolist()]
        values = [None if np.isnan(v) else v for v in part.value.tolist()]
        records = list(zip(ids, users, synth.content_id(part.item), part.types.tolist(), values, stamps, strict=True))
        await conn.copy_records_to_table("events", records=records, columns=EVENT_COLUMNS)
        keys = [(r[0], r[1], r[5]) for r in records]
        await conn.copy_records_to_table("event_keys", records=keys, columns=KEY_COLUMNS)
    return spec.events
