"""Soak: N concurrent clients of mixed traffic against a live server, then an exactly-once check of events.

python bench/soak.py --url http://127.0.0.1:8000 --key KEY --clients 50 --duration 60 [--database-url URL]
Ends by printing one JSON line: requests, errors, events_acknowledged, events_lost, events_duplicated,
throughput_rps and p50/p95/p99 per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from app.bench.http import GraphQLClient

USERS = [f"soak-u{i}" for i in range(200)]
CONTENT = [f"soak-c{i}" for i in range(100)]
OPERATIONS = {
    "recommendations": "{ recommendations(userId: $u, count: 10) { items { contentId score } } }",
    "content": "{ content(id: $c) { id title similar(count: 5) { contentId } } }",
    "search": '{ searchContent(query: "rocket space", count: 10, mode: TEXT) { score } }',
    "logEvent": "mutation { logEvent(input: $e) { duplicate } }",
    "logEvents": "mutation { logEvents(inputs: $es) { accepted duplicates errors { index } } }",
}
VARIABLES = {
    "recommendations": "($u: ID!)",
    "content": "($c: ID!)",
    "search": "",
    "logEvent": "($e: EventInput!)",
    "logEvents": "($es: [EventInput!]!)",
}
MIX = ["recommendations"] * 4 + ["content"] * 2 + ["search"] + ["logEvent"] * 2 + ["logEvents"]


@dataclass
class Stats:
    """What the clients saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)  # event id -> user id


def query_for(name: str) -> str:
    """The operation text with its variable definitions."""
    text = OPERATIONS[name]
    head, _, rest = text.partition("{")
    keyword = head.strip() or "query"
    return f"{keyword} {name}{VARIABLES[name]} {{{rest}"


def variables_for(name: str, rng: random.Random) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Variables of one call and the events it logs."""
    user, item = rng.choice(USERS), rng.choice(CONTENT)
    if name == "logEvent":
        ev = {
            "userId": user,
            "contentId": item,
            "eventType": rng.choice(["view", "click", "like"]),
            "eventId": str(uuid.uuid4()),
        }
        return {"e": ev}, [ev]
    if name == "logEvents":
        evs = [
            {"userId": user, "contentId": rng.choice(CONTENT), "eventType": "view", "eventId": str(uuid.uuid4())}
            for _ in range(5)
        ]
        return {"es": evs}, evs
    return {"u": user, "c": item}, []


async def call(http: GraphQLClient, name: str, variables: dict[str, Any]) -> dict[str, Any]:
    """POST one operation; raise on a transport or GraphQL error."""
    only = {k: v for k, v in variables.items() if f"${k}" in VARIABLES[name]}
    body: dict[str, Any] = await http.data(query_for(name), only, operation=name)
    return body


async def client(http: GraphQLClient, deadline: float, stats: Stats, seed: int) -> None:
    """One client: random operations from the mix until the deadline."""
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        name = rng.choice(MIX)
        variables, events = variables_for(name, rng)
        started = time.perf_counter()
        try:
            body = await call(http, name, variables)
        except Exception as exc:  # every failure counts as an error, whatever its kind
            stats.errors.append(f"{type(exc).__name__}: {exc}"[:300])
            continue
        stats.latencies[name].append((time.perf_counter() - started) * 1000)
        if name == "logEvents" and body["data"]["logEvents"]["errors"]:
            stats.errors.append(f"logEvents rejected {body['data']['logEvents']['errors']}")
            continue
        for ev in events:
            stats.acknowledged[ev["eventId"]] = ev["userId"]


async def seed_catalog(http: GraphQLClient) -> None:
    """Create the soak users and content when the catalog lacks them (needs an admin key)."""
    found = (await http.post(f'{{ content(id: "{CONTENT[-1]}") {{ id }} }}')).body
    if found.get("data", {}).get("content"):
        return
    words = ["space", "rocket", "moon", "ocean", "forest", "city", "music", "cooking", "history", "robots"]
    items = [
        {
            "id": c,
            "title": f"{words[i % 10]} {words[(i * 3) % 10]} {i}",
            "contentType": "VIDEO",
            "tags": [words[i % 10]],
        }
        for i, c in enumerate(CONTENT)
    ]
    query = "mutation($c: [ContentInput!]!) { upsertContents(inputs: $c) { accepted errors { message } } }"
    for start in range(0, len(items), 20):  # small batches stay inside the request time budget
        body = (await http.post(query, {"c": items[start : start + 20]}, timeout=300)).body
        if body.get("errors") or body["data"]["upsertContents"]["errors"]:
            raise SystemExit(f"seeding failed: {body}")
    for user in USERS:
        await http.post(f'mutation {{ upsertUser(input: {{id: "{user}"}}) {{ id }} }}')


async def stored_ids_graphql(http: GraphQLClient, users: set[str]) -> list[str]:
    """Every stored event id of `users`, paging through `events(userId)`."""
    ids: list[str] = []
    query = (
        "query($u: ID!, $a: String) { events(userId: $u, first: 100, after: $a) "
        "{ edges { node { id } } pageInfo { hasNextPage endCursor } } }"
    )
    for user in sorted(users):
        after = None
        while True:
            body = (await http.post(query, {"u": user, "a": after})).body
            page = body["data"]["events"]
            ids += [edge["node"]["id"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    return ids


async def stored_ids_sql(database_url: str, users: set[str]) -> list[str]:
    """Every stored event id of `users`, read with asyncpg."""
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        rows = await conn.fetch("SELECT event_id::text AS id FROM events WHERE user_id = ANY($1)", sorted(users))
        return [row["id"] for row in rows]
    finally:
        await conn.close()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 2) if ordered else 0.0


def report(stats: Stats, stored: list[str], elapsed: float) -> dict[str, Any]:
    """The summary JSON object."""
    requests = sum(len(v) for v in stats.latencies.values()) + len(stats.errors)
    stored_counts: dict[str, int] = defaultdict(int)
    for event_id in stored:
        stored_counts[event_id] += 1
    acked = set(stats.acknowledged)
    return {
        "requests": requests,
        "errors": len(stats.errors),
        "throughput_rps": round(requests / elapsed, 1),
        "events_acknowledged": len(acked),
        "events_lost": sum(1 for e in acked if stored_counts[e] == 0),
        "events_duplicated": sum(1 for e in acked if stored_counts[e] > 1),
        "operations": {
            name: {
                "count": len(v),
                "p50_ms": percentile(v, 50),
                "p95_ms": percentile(v, 95),
                "p99_ms": percentile(v, 99),
            }
            for name, v in sorted(stats.latencies.items())
        },
        "first_errors": stats.errors[:5],
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Seed, run the clients, then verify every acknowledged event."""
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    async with GraphQLClient(args.url, connections=args.clients + 5, headers=headers) as http:
        await seed_catalog(http)
        started = time.monotonic()
        stats = Stats()
        await asyncio.gather(*(client(http, started + args.duration, stats, i) for i in range(args.clients)))
        elapsed = time.monotonic() - started
        users = set(stats.acknowledged.values())
        if args.database_url:
            stored = await stored_ids_sql(args.database_url, users)
        else:
            stored = await stored_ids_graphql(http, users)
    return report(stats, stored, elapsed)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Base URL of the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", default=None, help="An admin API key (seeding needs admin)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds of load")
    parser.add_argument("--database-url", default=None, help="Verify with asyncpg instead of GraphQL paging")
    return parser.parse_args(argv)


if __name__ == "__main__":
    result = asyncio.run(main(parse()))
    print(json.dumps(result))
    sys.exit(0 if result["errors"] == 0 and result["events_lost"] == 0 and result["events_duplicated"] == 0 else 1)
