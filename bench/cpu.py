"""CPU per request: server CPU-seconds per 1,000 requests of each hot operation, against a live server.

python bench/cpu.py --server base=http://127.0.0.1:8001,PID1 --server new=http://127.0.0.1:8002,PID2 --key KEY
    [--db-pid POSTMASTER_PID]

The server's CPU (user + system, the process and its children, i.e. every uvicorn worker) is read with psutil
before and after each batch, so the figure depends far less on how loaded the machine is than latency does.
Several servers (e.g. the main branch and a change, on the same data) are measured in interleaved rounds, so
they see the same load; each figure is the median over the rounds. Each server is first left to go idle (its
start-up work, such as the embedding model warm-up, is not counted). With `--db-pid` the database's CPU (its
postmaster and backends) per 1,000 requests is reported too: on two shared cores it limits throughput as much as
the API's. Needs a catalog with trained recommendations (e.g. MovieLens imported and trained). Prints one JSON
line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import psutil

from app.bench.http import GraphQLClient

REC = "query R($u: ID!) { recommendations(userId: $u, count: 10) { items { contentId score } } }"
# a unique `context` per request: a distinct cache key, the same work (as the bench's uncached figure)
REC_UNCACHED = (
    "query R($u: ID!, $x: JSON) { recommendations(userId: $u, count: 10, context: $x) { items { contentId score } } }"
)
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


async def post(http: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """One operation; raise on any error."""
    body: dict[str, Any] = await http.data(query, variables)
    return body


async def batch(
    http: GraphQLClient, query: str, make: Callable[[int], dict[str, Any]], n: int, concurrency: int
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
    http: GraphQLClient, pid: int, query: str, make: Callable[[int], dict[str, Any]], args: argparse.Namespace
) -> tuple[float, float, float]:
    """One batch: server CPU seconds per 1,000 requests, the p50 latency in ms, and the database's CPU seconds
    per 1,000 requests (its postmaster and backends, when `--db-pid` is given; batches run one at a time, so
    the database's CPU during a batch is that server's)."""
    cpu_before, db_before = server_cpu(pid), server_cpu(args.db_pid) if args.db_pid else 0.0
    latencies = sorted(await batch(http, query, make, args.requests, args.concurrency))
    cpu = server_cpu(pid) - cpu_before
    db = server_cpu(args.db_pid) - db_before if args.db_pid else 0.0
    return cpu / args.requests * 1000, latencies[len(latencies) // 2], db / args.requests * 1000


async def wait_idle(pid: int, limit_s: float = 180.0) -> None:
    """Wait until the server uses under 5% of a core for a second (its start-up work is done)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = server_cpu(pid)
        await asyncio.sleep(1.0)
        if server_cpu(pid) - before < 0.05:
            return


def log_event(users: list[str], items: list[str]) -> Callable[[int], dict[str, Any]]:
    """Variables of a unique `logEvent` call."""

    def make(i: int) -> dict[str, Any]:
        event = {"userId": users[i % len(users)], "contentId": items[i % len(items)], "eventType": "view"}
        return {"e": {**event, "eventId": str(uuid.uuid4())}}

    return make


def operations(items: list[str]) -> dict[str, tuple[str, Callable[[int], dict[str, Any]]]]:
    """The measured operations (the event writes last, on users the others do not read)."""
    users = [str(u) for u in range(1, 21)]  # a few users: after the warm-up every request is a cache hit
    writers = [f"cpu-bench-{u}" for u in range(50)]
    return {
        "typename": (TYPENAME, lambda i: {}),
        "recommendations_cached": (REC, lambda i: {"u": users[i % len(users)]}),
        "recommendations_uncached": (
            REC_UNCACHED,
            lambda i: {"u": users[i % len(users)], "x": {"n": uuid.uuid4().hex}},
        ),
        "content_similar": (SIMILAR, lambda i: {"c": items[i % len(items)]}),
        "logEvent": (LOG, log_event(writers, items)),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Warm every server up, then measure each operation on each server in interleaved rounds."""
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    servers = [parse_server(text) for text in args.server]
    samples: dict[str, dict[str, list[tuple[float, float, float]]]] = {name: {} for name, _, _ in servers}
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(GraphQLClient(url, connections=args.concurrency, headers=headers))
            for name, url, _ in servers
        }
        body = await post(clients[servers[0][0]], IDS, {"n": 100})
        ops = operations([edge["node"]["id"] for edge in body["data"]["contents"]["edges"]])
        for name, _, pid in servers:
            await wait_idle(pid)
            for query, make in ops.values():
                await batch(clients[name], query, make, args.warmup, args.concurrency)
        for _ in range(args.rounds):
            for op, (query, make) in ops.items():
                for name, _, pid in servers:
                    samples[name].setdefault(op, []).append(await measure(clients[name], pid, query, make, args))
    return {
        "requests_per_batch": args.requests,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "cpu_s_per_1000": {name: {op: median(v, 0) for op, v in ops_.items()} for name, ops_ in samples.items()},
        "p50_ms": {name: {op: median(v, 1) for op, v in ops_.items()} for name, ops_ in samples.items()},
        **(
            {"db_cpu_s_per_1000": {name: {op: median(v, 2) for op, v in o.items()} for name, o in samples.items()}}
            if args.db_pid
            else {}
        ),
    }


def median(values: list[tuple[float, float, float]], index: int) -> float:
    """The median of one member of the samples, rounded."""
    return round(statistics.median(v[index] for v in values), 2)


def parse_server(text: str) -> tuple[str, str, int]:
    """NAME=URL,PID -> (name, url, pid)."""
    name, _, rest = text.partition("=")
    url, _, pid = rest.rpartition(",")
    return name, url, int(pid)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--server", action="append", required=True, help="NAME=URL,PID of a server to measure (repeatable)"
    )
    parser.add_argument("--key", default=None, help="An API key (client or admin) valid on every server")
    parser.add_argument("--requests", type=int, default=200, help="Measured requests per batch")
    parser.add_argument("--rounds", type=int, default=3, help="Batches per operation and server")
    parser.add_argument("--warmup", type=int, default=60, help="Unmeasured requests per operation first")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--db-pid", type=int, default=None, help="The PostgreSQL postmaster's pid: also count the database's CPU"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse()))))
