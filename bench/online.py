"""Online-loop figures: the latency the impression writer adds, and `export recommendations` throughput.

Builds its own database on an embedded PostgreSQL (or `--database-url`): imports MovieLens
(ml-latest-small, or with `--slice` the test slice: movies with >= 12 ratings), embeds, trains,
then
1. cached p50/p95 of `serving.serve` (the function the GraphQL resolver calls) with the real
   impression writer and with a writer that records nothing, interleaved in blocks in one run;
2. `export_recommendations` for every user (count 20): users/s.

    python bench/online.py [--slice] [--calls 3000] [--data PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from app import embedded, migrate
from app.config import AuthMode, Settings
from app.context import AppState
from app.main import build_state, close_state
from app.ml.datasets import MovieLens, Ratings, load_movielens
from app.ml.training import train
from app.services import export, serving
from app.services.importer import import_movielens
from app.services.impressions import Impression, ImpressionWriter
from app.services.sessions import Subject

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small"
BLOCK = 250


class NullWriter(ImpressionWriter):
    """Records nothing: the baseline without impressions."""

    def record(self, impression: Impression) -> None:
        """Drop the list."""


def movielens_slice(data: MovieLens, min_ratings: int = 12) -> MovieLens:
    """Movies with at least `min_ratings` ratings and their ratings (the engine tests' slice)."""
    ids, counts = np.unique(data.ratings.item_ids.astype(str), return_counts=True)
    keep = set(ids[counts >= min_ratings].tolist()) | {"1", "3114", "78499"}
    mask = np.array([i in keep for i in data.ratings.item_ids], dtype=bool)
    r = data.ratings
    ratings = Ratings(r.user_ids[mask], r.item_ids[mask], r.values[mask], r.timestamps[mask])
    return MovieLens(movies=[m for m in data.movies if m.movie_id in keep], ratings=ratings)


async def prepare(url: str, data: MovieLens) -> AppState:
    """State over a freshly imported and trained database."""
    settings = Settings(
        database_url=url, auth=AuthMode.DISABLED, embedding_batch_size=128, db_statement_timeout_seconds=0.0
    )
    state = await build_state(settings)
    started = time.perf_counter()
    await import_movielens(state.sessions, data)
    report = await train(state.sessions, state.settings, seed=7)
    print(f"import + train: {time.perf_counter() - started:.0f}s (activated={report.activated})")
    return state


async def cached_latency(state: AppState, users: list[str], calls: int) -> dict[str, list[float]]:
    """Per-call ms of cached `serve` with and without the impression writer, interleaved in blocks."""
    null = NullWriter(state.sessions, batch_size=1, flush_seconds=1.0, queue_size=1)
    variants = {
        "with writer": serving.Serving(state.recommender, state.impressions, state.experiments),
        "without writer": serving.Serving(state.recommender, null, state.experiments),
    }
    for user in users:  # fill the cache
        await serving.serve(variants["without writer"], serving.ServeRequest(Subject(user, None), 10))
    times: dict[str, list[float]] = {name: [] for name in variants}
    for block in range(calls // BLOCK):
        for name, serve in variants.items():
            for i in range(BLOCK):
                request = serving.ServeRequest(Subject(users[(block * BLOCK + i) % len(users)], None), 10)
                started = time.perf_counter()
                served = await serving.serve(serve, request)
                times[name].append((time.perf_counter() - started) * 1000)
                assert served.result.cached
    return times


async def main() -> None:
    """Parse arguments, build the database, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--slice", action="store_true", help="Use the engine tests' MovieLens slice.")
    parser.add_argument("--calls", type=int, default=3000, help="Cached calls per variant.")
    parser.add_argument("--database-url", help="An empty, migrated database (default: an embedded one).")
    args = parser.parse_args()
    data = load_movielens(args.data)
    data = movielens_slice(data) if args.slice else data
    name = "ml-latest-small slice (movies with >= 12 ratings)" if args.slice else "ml-latest-small"
    print(f"{name}: {len(data.movies)} movies, {len(data.ratings)} ratings")
    url = args.database_url
    if url is None:
        uri = embedded.ensure_server(Path(tempfile.mkdtemp(prefix="recengine-bench-online-")))
        embedded.ensure_database(uri)
        url = embedded.async_url(uri)
        migrate.upgrade(url)
    state = await prepare(url, data)
    try:
        users = sorted({str(u) for u in data.ratings.user_ids.tolist()}, key=int)
        times = await cached_latency(state, users, args.calls)
        for label, values in times.items():
            p95 = float(np.percentile(values, 95))
            print(
                f"cached serve {label:15s} p50 {statistics.median(values):.3f} ms  p95 {p95:.3f} ms  (n={len(values)})"
            )
        out = Path(tempfile.mkdtemp()) / "recs.jsonl"
        serve = serving.Serving(state.recommender, state.impressions, state.experiments)
        report = await export.export_recommendations(serve, output=out, users=users, count=20)
        print(
            f"export recommendations: {report.exported} users in {report.seconds:.1f}s = "
            f"{report.users_per_second:.1f} users/s (count 20, uncached)"
        )
    finally:
        await close_state(state)


if __name__ == "__main__":
    asyncio.run(main())
