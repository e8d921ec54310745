"""`recengine bench run`: per catalog size, load, train, serve and measure; then write the report."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from app.bench import database, load, model, recall, report, sqlpath, synth, workload
from app.bench.measure import Stats, summarize
from app.bench.server import Server
from app.config import Settings, get_settings
from app.db import create_engine, session_factory
from app.repositories import popularity

Say = Callable[[str], None]


@dataclass
class Options:
    """What one bench run measures."""

    output: Path
    sizes: tuple[int, ...] = (10_000, 100_000)
    database_url: str | None = None
    seed: int = 42
    plan: workload.Plan = field(default_factory=workload.Plan)
    recorded_users: int = 60
    recall_queries: int = 50
    ef_values: tuple[int, ...] = (40, 100)
    embed_texts: int = 500
    fresh: bool = False
    profile: bool = False


@dataclass
class Outcome:
    """Everything bench.json holds."""

    machine: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    recall: list[dict[str, Any]] = field(default_factory=list)
    ratios: dict[str, dict[str, float]] = field(default_factory=dict)
    rss_mb: float = 0.0
    rss_mb_by_size: dict[str, float] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    round_trips: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def machine(settings: Settings) -> dict[str, Any]:
    """Where the numbers come from."""
    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "")
    return {
        "node": platform.node(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "ef_search_setting": settings.hnsw_ef_search,
    }


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def run(options: Options, say: Say = print) -> Outcome:
    """Measure every size, then write bench.json, bench.md and the plots into `options.output`."""
    settings = get_settings()
    base = database.server_url(settings, options.database_url)
    outcome = Outcome(machine=machine(settings))
    for size in options.sizes:
        _one_size(options, settings, base, size, outcome, say)
        outcome.ratios = report.ratios(outcome.results)
        report.write(outcome, options.output)  # partial report after each size
    if options.embed_texts:
        say("embedding throughput (real model)")
        outcome.results.append(embed_stats(options.embed_texts, options.sizes[0]).row())
    outcome.rss_mb = max(outcome.rss_mb_by_size.values(), default=0.0)
    outcome.ratios = report.ratios(outcome.results)
    report.write(outcome, options.output)
    return outcome


def _one_size(options: Options, settings: Settings, base: str, size: int, outcome: Outcome, say: Say) -> None:
    spec = synth.default_spec(size, options.seed)
    url = database.ensure(database.bench_url(base, size))
    say(f"[{size}] load {spec.as_dict()}")
    loaded = asyncio.run(load.load(url, spec, fresh=options.fresh, progress=lambda m: say(f"[{size}] {m}")))
    outcome.load[str(size)] = asdict(loaded) | {"stored": asyncio.run(_stored_load(url))}
    report.write(outcome, options.output, plots=False)  # each step's figures are on disk as soon as it ends
    say(f"[{size}] train")
    timing = asyncio.run(_train(url, settings, spec, store=not loaded.reused))
    outcome.train[str(size)] = asdict(timing)
    outcome.results.append(
        summarize(
            [timing.fit_s],
            timing.fit_s,
            size=size,
            operation="train",
            concurrency=1,
            cached=False,
            per_request=timing.events,
        ).row()
    )
    report.write(outcome, options.output, plots=False)
    users = asyncio.run(_users(url, max(options.recorded_users, options.plan.cached_users), options.seed))
    say(f"[{size}] record the SQL of {options.recorded_users} uncached requests")
    recording = asyncio.run(sqlpath.record(url, users[: options.recorded_users], settings))
    outcome.round_trips[str(size)] = recording.round_trips
    profile = str(options.output / f"profile_{size}.svg") if options.profile else None
    options.output.mkdir(parents=True, exist_ok=True)
    with Server(url, profile=profile) as server:
        say(f"[{size}] recommendations over HTTP")
        rec_users = users[: options.recorded_users]
        rows = asyncio.run(workload.recommendations(server.url, rec_users, size, options.plan))
        say(f"[{size}] raw SQL replay")
        rows += asyncio.run(workload.sql(url, recording, size, options.plan))
        say(f"[{size}] ingest")
        items = asyncio.run(_items(url, 1000, options.seed))
        rows += asyncio.run(workload.ingest(server.url, users, items, size, options.plan))
        outcome.rss_mb_by_size[str(size)] = server.peak_rss_mb
    asyncio.run(_forget_ingested(url, spec))
    outcome.results += [r.row() for r in rows]
    say(f"[{size}] recall")
    found = asyncio.run(
        recall.measure_recall(url, size, ef_values=options.ef_values, queries=options.recall_queries, seed=options.seed)
    )
    outcome.recall += [r.row() for r in found]


async def _train(url: str, settings: Settings, spec: synth.Spec, *, store: bool) -> model.TrainTiming:
    # index builds on large catalogs outlast the API's statement timeout
    engine = create_engine(url, settings.model_copy(update={"db_statement_timeout_seconds": 0}))
    try:
        sessions = session_factory(engine)
        if not store and await has_active_model(url):
            async with sessions() as session:  # data loaded before the snapshot existed
                if await popularity.never_refreshed(session):
                    await popularity.refresh(session)
            return await asyncio.to_thread(model.fit_only, await _weights(sessions), settings, spec)
        return await model.train_and_activate(sessions, settings, spec)
    finally:
        await engine.dispose()


async def _weights(sessions: Any) -> dict[str, float]:
    from app.repositories.event_types import EventTypeRepository

    async with sessions() as session:
        return await EventTypeRepository(session).weights()


async def has_active_model(url: str) -> bool:
    """Whether the database at `url` has an active model version."""
    conn = await load.connect(url)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM model_versions WHERE status = 'active'"))
    finally:
        await conn.close()


async def _stored_load(url: str) -> dict[str, Any]:
    conn = await load.connect(url)
    try:
        raw = await conn.fetchval(f"SELECT report FROM {load.MARKER} LIMIT 1")
        return dict(json.loads(raw)) if raw else {}
    finally:
        await conn.close()


async def _users(url: str, n: int, seed: int) -> list[str]:
    """A deterministic sample of users with history."""
    conn = await load.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT user_id FROM users u WHERE EXISTS (SELECT 1 FROM events e WHERE "
            "e.user_id = u.user_id) ORDER BY md5(user_id || $1) LIMIT $2",
            str(seed),
            n,
        )
        return [r[0] for r in rows]
    finally:
        await conn.close()


async def _items(url: str, n: int, seed: int) -> list[str]:
    conn = await load.connect(url)
    try:
        rows = await conn.fetch("SELECT content_id FROM content ORDER BY md5(content_id || $1) LIMIT $2", str(seed), n)
        return [r[0] for r in rows]
    finally:
        await conn.close()


async def _forget_ingested(url: str, spec: synth.Spec) -> None:
    """Remove the events the ingest step logged, so a rerun measures the same data."""
    conn = await load.connect(url)
    try:
        await conn.execute('DELETE FROM events WHERE "timestamp" > to_timestamp($1)', spec.end_ts)
        await conn.execute('DELETE FROM event_keys WHERE "timestamp" > to_timestamp($1)', spec.end_ts)
    finally:
        await conn.close()


def embed_stats(n: int, size: int, batch: int = 64) -> Stats:
    """Texts per second of the real embedding model; latency per batch of `batch` texts."""
    from app.ml.embeddings import get_embedder

    embedder = get_embedder(batch)
    texts = [f"Synthetic item {i}: a short description of topic {i % 37} with a few tags" for i in range(n)]
    embedder.encode(texts[:batch])  # load and warm the model outside the timing
    latencies = []
    started = time.perf_counter()
    for start in range(0, n, batch):
        t = time.perf_counter()
        embedder.encode(texts[start : start + batch])
        latencies.append(time.perf_counter() - t)
    wall = time.perf_counter() - started
    stats = summarize(latencies, wall, size=size, operation="embed", concurrency=1, cached=False, per_request=batch)
    stats.rps = round(n / wall, 1)
    return stats
