"""Requests against a running server: recommendations (cached, uncached), the SQL replay, event ingest."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.bench import synth
from app.bench.http import GraphQLClient
from app.bench.measure import Stats, measure
from app.bench.sqlpath import Recording, Replayer

RECOMMEND = """query Rec($u: ID!, $ctx: JSON) {
  recommendations(userId: $u, count: 10, context: $ctx) {
    items { contentId score rank explanation reasons { kind anchorContentId weight } }
    modelVersion cached responseTimeMs
  }
}"""
RECOMMEND_FILTERED = """query RecF($u: ID!, $ctx: JSON, $f: ContentFilterInput) {
  recommendations(userId: $u, count: 10, context: $ctx, filter: $f) {
    items { contentId score rank explanation reasons { kind anchorContentId weight } }
    modelVersion cached responseTimeMs
  }
}"""
LOG_ONE = "mutation One($e: EventInput!) { logEvent(input: $e) { duplicate } }"
LOG_MANY = "mutation Many($es: [EventInput!]!) { logEvents(inputs: $es) { accepted duplicates errors { index } } }"
_run_ids = itertools.count()


@dataclass
class Plan:
    """How many requests each measurement sends."""

    concurrency: tuple[int, ...] = (1, 8, 32)
    uncached_per_level: int = 150
    cached_per_level: int = 1500
    cached_users: int = 50
    ingest_single: int = 300
    batches_100: int = 20
    batches_1000: int = 4


def client(base_url: str, concurrency: int) -> GraphQLClient:
    """An HTTP/1.1 client with a connection per concurrent worker."""
    return GraphQLClient(base_url, connections=concurrency)


async def recommendations(base_url: str, users: list[str], size: int, plan: Plan) -> list[Stats]:
    """Cached (repeat users, warmed) and uncached (a unique context per request) at each concurrency."""
    out = []
    run = next(_run_ids)
    hot = users[: plan.cached_users]
    for c in plan.concurrency:
        async with client(base_url, c) as http:
            for u in hot:
                await http.data(RECOMMEND, {"u": u})

            async def cached(i: int, http: GraphQLClient = http) -> None:
                await http.data(RECOMMEND, {"u": hot[i % len(hot)]})

            async def uncached(i: int, http: GraphQLClient = http, c: int = c) -> None:
                await http.data(RECOMMEND, {"u": users[i % len(users)], "ctx": {"bench": f"{run}-{c}-{i}"}})

            async def filtered(i: int, http: GraphQLClient = http, c: int = c) -> None:
                ctx = {"bench": f"{run}-{c}-{i}-f"}
                await http.data(RECOMMEND_FILTERED, {"u": users[i % len(users)], "ctx": ctx, "f": synth.FILTER})

            for fn, total, operation, is_cached in (
                (cached, plan.cached_per_level, "recommendations", True),
                (uncached, plan.uncached_per_level, "recommendations", False),
                (filtered, plan.uncached_per_level, "recommendations_filtered", False),
            ):
                stats = await measure(fn, total=total, concurrency=c, size=size, operation=operation, cached=is_cached)
                out.append(stats)
    return out


async def sql(database_url: str, recording: Recording, size: int, plan: Plan) -> list[Stats]:
    """The recorded candidate SQL of the same users, replayed at each concurrency."""
    users = list(recording.statements)
    out = []
    for c in plan.concurrency:
        async with Replayer(database_url, recording, pool_size=min(c, 20)) as replayer:
            for u in users[:c]:
                await replayer.run(u)

            async def one(i: int, replayer: Replayer = replayer) -> None:
                await replayer.run(users[i % len(users)])

            out.append(
                await measure(
                    one,
                    total=plan.uncached_per_level,
                    concurrency=c,
                    size=size,
                    operation="sql",
                    cached=False,
                )
            )
    return out


def _event(users: list[str], items: list[str], i: int) -> dict[str, Any]:
    return {
        "eventId": str(uuid.uuid4()),
        "userId": users[i % len(users)],
        "contentId": items[(i * 7) % len(items)],
        "eventType": "view",
        "timestamp": datetime.now(UTC).isoformat(),
    }


async def ingest(base_url: str, users: list[str], items: list[str], size: int, plan: Plan) -> list[Stats]:
    """logEvent one at a time, logEvents in batches of 100 and 1,000; throughput in events per second."""
    out = []
    async with client(base_url, 1) as http:

        async def single(i: int) -> None:
            await http.data(LOG_ONE, {"e": _event(users, items, i)})

        out.append(
            await measure(
                single,
                total=plan.ingest_single,
                concurrency=1,
                size=size,
                operation="ingest_single",
                cached=False,
            )
        )
        for batch, total in ((100, plan.batches_100), (1000, plan.batches_1000)):

            async def many(i: int, batch: int = batch) -> None:
                await http.data(LOG_MANY, {"es": [_event(users, items, i * batch + j) for j in range(batch)]})

            out.append(
                await measure(
                    many,
                    total=total,
                    concurrency=1,
                    size=size,
                    operation=f"ingest_batch{batch}",
                    cached=False,
                    per_request=batch,
                )
            )
    return out
