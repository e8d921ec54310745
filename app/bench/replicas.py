"""`recengine bench run --replicas`: the recommendation workload with retrieval on a streaming standby,
beside the primary-only run, with the standby's replay lag sampled meanwhile; and read-your-writes
(a user's event, then that user's recommendations) in both modes, `lsn` and `primary`."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from app import embedded
from app.bench import database, load, runner, synth, workload
from app.bench.measure import Stats, summarize
from app.bench.server import Server
from app.bench.standby import Standby
from app.config import get_settings

Say = Callable[[str], None]
LAG_SQL = """SELECT coalesce(max(extract(epoch FROM replay_lag)) * 1000, 0),
                    coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)
             FROM pg_stat_replication"""
LIKE = "mutation Like($e: EventInput!) { logEvent(input: $e) { duplicate } }"
READS = re.compile(r'^recengine_db_reads_total\{target="(\w+)"\} ([0-9.e+]+)$', re.MULTILINE)


@dataclass
class ReplicaOptions:
    """One replica bench: a catalog size, the plan, and an existing standby or none (one is made)."""

    output: Path
    size: int = 2_000
    seed: int = 42
    database_url: str | None = None
    replica_url: str | None = None
    plan: workload.Plan = field(default_factory=workload.Plan)
    users: int = 40
    writes: int = 40


@dataclass
class LagSamples:
    """Replay lag seen from the primary (pg_stat_replication) while the workload ran."""

    ms: list[float] = field(default_factory=list)
    bytes: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Max and mean of both series."""

        def stats(values: list[float]) -> tuple[float, float]:
            return (round(max(values), 3), round(sum(values) / len(values), 3)) if values else (0.0, 0.0)

        (ms_max, ms_mean), (b_max, b_mean) = stats(self.ms), stats(self.bytes)
        return {
            "replay_lag_ms_max": ms_max,
            "replay_lag_ms_mean": ms_mean,
            "bytes_behind_max": b_max,
            "bytes_behind_mean": b_mean,
            "samples": len(self.ms),
        }


def run(options: ReplicaOptions, say: Say = print) -> dict[str, Any]:
    """Load and train at `options.size`, then measure primary-only, replica and read-your-writes."""
    settings = get_settings()
    base = database.server_url(settings, options.database_url)
    url = database.ensure(database.bench_url(base, options.size))
    spec = synth.default_spec(options.size, options.seed)
    say(f"[{options.size}] load {spec.as_dict()}")
    loaded = asyncio.run(load.load(url, spec, progress=lambda m: say(f"[{options.size}] {m}")))
    say(f"[{options.size}] train")
    asyncio.run(runner._train(url, settings, spec, store=not loaded.reused))
    users = asyncio.run(runner._users(url, options.users, options.seed))
    standby = None
    replica_url = options.replica_url
    if replica_url is None:
        if settings.database_url or options.database_url:
            raise SystemExit("--replicas makes a standby of the embedded server only; give --replica-url otherwise")
        standby = Standby(embedded.ensure_server(settings.data_dir))
        say("creating a streaming standby (pg_basebackup -R)")
        standby.create()
        replica_url = standby.url(str(make_url(url).database))
    try:
        if standby is not None:
            standby.catch_up()
        return _measure(options, url, replica_url, users, say)
    finally:
        if standby is not None:
            standby.remove()


def _measure(options: ReplicaOptions, url: str, replica_url: str, users: list[str], say: Say) -> dict[str, Any]:
    out: dict[str, Any] = {"size": options.size, "rows": [], "read_your_writes": {}}
    read_urls = {"RECENGINE_DATABASE_READ_URLS": replica_url}
    for target, env in (("primary", {}), ("replica", read_urls)):
        say(f"recommendations, retrieval on the {target}")
        with Server(url, env=env) as server:
            samples = LagSamples()
            rows = asyncio.run(
                _with_lag(url, samples, workload.recommendations(server.url, users, options.size, options.plan))
            )
            reads = _reads(server.url)
        out["rows"] += [r.row() | {"target": target} for r in rows]
        out[f"lag_during_{target}_run"] = samples.summary()
        out[f"reads_{target}_run"] = reads
    items = asyncio.run(runner._items(url, 200, options.seed))
    for mode in ("lsn", "primary"):
        say(f"read-your-writes: {mode}")
        with Server(url, env=read_urls | {"RECENGINE_READ_YOUR_WRITES": mode}) as server:
            before = _reads(server.url)
            stats = asyncio.run(_read_after_write(server.url, users, items, options))
            after = _reads(server.url)
        served = {k: after.get(k, 0) - before.get(k, 0) for k in ("replica", "primary")}
        out["read_your_writes"][mode] = stats.row() | {"reads": served}
    _write(out, options.output)
    return out


async def _with_lag(url: str, samples: LagSamples, work: Any) -> list[Stats]:
    conn = await load.connect(url)
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            lag_ms, behind = await conn.fetchrow(LAG_SQL)
            samples.ms.append(float(lag_ms))
            samples.bytes.append(float(behind))
            await asyncio.wait({task}, timeout=0.2)
        result: list[Stats] = task.result()
        return result
    finally:
        await conn.close()


async def _read_after_write(base_url: str, users: list[str], items: list[str], options: ReplicaOptions) -> Stats:
    """Per iteration: a user's event, then (timed) that user's uncached recommendations."""
    latencies = []
    started = time.perf_counter()
    async with workload.client(base_url, 1) as http:
        for i in range(options.writes):
            user = users[i % len(users)]
            event = {"userId": user, "contentId": items[i % len(items)], "eventType": "click"}
            await http.data(LIKE, {"e": event}, operation="logEvent")
            t = time.perf_counter()
            await http.data(workload.RECOMMEND, {"u": user, "ctx": {"ryw": i}}, operation="recommendations")
            latencies.append(time.perf_counter() - t)
    wall = time.perf_counter() - started
    return summarize(latencies, wall, size=options.size, operation="read_after_write", concurrency=1, cached=False)


def _reads(base_url: str) -> dict[str, float]:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return {target: float(value) for target, value in READS.findall(text)}


def _write(out: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "replicas.json").write_text(json.dumps(out, indent=2))
    (folder / "replicas.md").write_text(markdown(out))


def markdown(out: dict[str, Any]) -> str:
    """The report table: p50/p99 per target and concurrency, lag, read-your-writes."""
    lines = [f"## Read replicas ({out['size']} items)", ""]
    lines += ["| retrieval on | cached | concurrency | p50 ms | p99 ms | req/s | errors |", "|---" * 7 + "|"]
    for r in out["rows"]:
        lines.append(
            f"| {r['target']} | {r['cached']} | {r['concurrency']} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r['rps']} | {r['errors']} |"
        )
    lines += ["", "| run | replay lag max ms | mean ms | bytes behind max | samples |", "|---|---|---|---|---|"]
    for target in ("primary", "replica"):
        lag = out[f"lag_during_{target}_run"]
        lines.append(
            f"| {target} | {lag['replay_lag_ms_max']} | {lag['replay_lag_ms_mean']} "
            f"| {lag['bytes_behind_max']} | {lag['samples']} |"
        )
    lines += [
        "",
        "| read-your-writes | p50 ms | p99 ms | reads on replica | reads on primary |",
        "|---|---|---|---|---|",
    ]
    for mode, r in out["read_your_writes"].items():
        lines.append(
            f"| {mode} | {r['p50_ms']} | {r['p99_ms']} | {r['reads']['replica']:.0f} | {r['reads']['primary']:.0f} |"
        )
    return "\n".join(lines) + "\n"
