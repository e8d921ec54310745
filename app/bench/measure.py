"""Latency sampling: run a request function under N concurrent workers; percentiles and throughput."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Request = Callable[[int], Awaitable[Any]]


@dataclass
class Stats:
    """One measured operation: latency percentiles (ms) and throughput (requests or events per second)."""

    size: int
    operation: str
    concurrency: int
    cached: bool
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rps: float
    n: int
    errors: int = 0

    def row(self) -> dict[str, Any]:
        """The bench.json form."""
        return asdict(self)


def summarize(
    latencies_s: list[float],
    wall_s: float,
    *,
    size: int,
    operation: str,
    concurrency: int,
    cached: bool,
    per_request: int = 1,
    errors: int = 0,
) -> Stats:
    """Percentiles of `latencies_s`; throughput = requests x per_request / wall time."""
    ms = np.asarray(latencies_s or [float("nan")], dtype=np.float64) * 1000
    p50, p95, p99 = (round(float(np.percentile(ms, q)), 3) for q in (50, 95, 99))
    rps = round(len(latencies_s) * per_request / wall_s, 1) if wall_s > 0 else 0.0
    return Stats(size, operation, concurrency, cached, p50, p95, p99, rps, len(latencies_s), errors)


async def drive(request: Request, *, total: int, concurrency: int) -> tuple[list[float], float, int]:
    """Call `request(i)` for i in 0..total-1 from `concurrency` workers; (latencies, wall seconds, errors)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            started = time.perf_counter()
            try:
                await request(i)
            except Exception:  # a failed request is counted, not timed
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


async def measure(
    request: Request,
    *,
    total: int,
    concurrency: int,
    size: int,
    operation: str,
    cached: bool,
    per_request: int = 1,
) -> Stats:
    """`drive` then `summarize`."""
    latencies, wall, errors = await drive(request, total=total, concurrency=concurrency)
    return summarize(
        latencies,
        wall,
        size=size,
        operation=operation,
        concurrency=concurrency,
        cached=cached,
        per_request=per_request,
        errors=errors,
    )
