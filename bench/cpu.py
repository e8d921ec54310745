"""CPU per request: server CPU-seconds per 1,000 requests of each hot operation, against a live server.

python bench/cpu.py --url http://127.0.0.1:8000 --key KEY --pid SERVER_PID [--requests 600] [--concurrency 4]

The server's CPU (user + system, the process and its children, i.e. every uvicorn worker) is read with psutil
before and after each operation's batch, so the figure does not depend on how loaded the machine is, unlike
latency. Needs a catalog with trained recommendations (e.g. MovieLens imported and trained). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psutil

REC = "query R($u: ID!) { recommendations(userId: $u, count: 10) { items { contentId score } } }"
SIMILAR = "query C($c: ID!) { content(id: $c) { id title similar(count: 5) { contentId } } }"
LOG = "mutation L($e: EventInput!) { logEvent(input: $e) { duplicate } }"
TYPENAME = "query T { __typename }"
IDS = "query I($n: Int!) { contents(first: $n) { edges { node { id } } } }"


def server_cpu(pid: int) -> float:
    """User + system CPU seconds of the process and all its descendants."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def post(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """One operation; raise on any error."""
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"HTTP {response.status_code}: {json.dumps(body.get('errors'))[:300]}")
    return body


async def batch(
    http: httpx.AsyncClient, query: str, make: Callable[[int], dict[str, Any]], n: int, concurrency: int
) -> list[float]:
    """Send `n` requests from `concurrency` clients; the latencies in ms."""
    counter = itertools.count()
    latencies: list[float] = []

    async def worker() -> None:
        while (i := next(counter)) < n:
            started = time.perf_counter()
            await post(http, query, make(i))
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def measure(
    http: httpx.AsyncClient, pid: int, query: str, make: Callable[[int], dict[str, Any]], args: argparse.Namespace
) -> dict[str, float]:
    """Warm up, then CPU per 1,000 requests and latency of one batch."""
    await batch(http, query, make, args.warmup, args.concurrency)
    cpu_before, started = server_cpu(pid), time.perf_counter()
    latencies = sorted(await batch(http, query, make, args.requests, args.concurrency))
    cpu, wall = server_cpu(pid) - cpu_before, time.perf_counter() - started
    return {
        "cpu_s_per_1000": round(cpu / args.requests * 1000, 2),
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "rps": round(args.requests / wall, 1),
    }


def log_event(users: list[str], items: list[str]) -> Callable[[int], dict[str, Any]]:
    """Variables of a unique `logEvent` call."""

    def make(i: int) -> dict[str, Any]:
        event = {"userId": users[i % len(users)], "contentId": items[i % len(items)], "eventType": "view"}
        return {"e": {**event, "eventId": str(uuid.uuid4())}}

    return make


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Measure each operation in turn (the event writes last, on users the others do not read)."""
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=60) as http:
        body = await post(http, IDS, {"n": 100})
        items = [edge["node"]["id"] for edge in body["data"]["contents"]["edges"]]
        users = [str(u) for u in range(1, 21)]  # a few users: after the warm-up every request is a cache hit
        writers = [f"cpu-bench-{u}" for u in range(50)]
        operations: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
            "typename": (TYPENAME, lambda i: {}),
            "recommendations_cached": (REC, lambda i: {"u": users[i % len(users)]}),
            "content_similar": (SIMILAR, lambda i: {"c": items[i % len(items)]}),
            "logEvent": (LOG, log_event(writers, items)),
        }
        results = {name: await measure(http, args.pid, q, make, args) for name, (q, make) in operations.items()}
    return {"requests": args.requests, "concurrency": args.concurrency, "operations": results}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", required=True, help="Base URL of the server")
    parser.add_argument("--key", default=None, help="An API key (client or admin)")
    parser.add_argument("--pid", type=int, required=True, help="Process id of the server (its workers are included)")
    parser.add_argument("--requests", type=int, default=600, help="Measured requests per operation")
    parser.add_argument("--warmup", type=int, default=100, help="Unmeasured requests first")
    parser.add_argument("--concurrency", type=int, default=4)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse()))))
