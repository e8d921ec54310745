"""Latency of `recommendations` on MovieLens ml-latest-small: GraphQL over HTTP (cached, uncached) and the
raw candidate SQL of the same users, in one run; prints the GraphQL/SQL ratio.

Imports the data set with `recengine import movielens` and trains with `recengine train` into its own
database (`recengine_bench_movielens` on the configured or embedded server) the first time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from app.bench import database, load, report, runner, sqlpath, workload
from app.bench.server import Server
from app.config import get_settings

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small"


def prepare(url: str, data: Path) -> None:
    """Import and train once; later runs reuse the database."""
    if asyncio.run(runner.has_active_model(url)):
        return
    env = os.environ | {"RECENGINE_DATABASE_URL": url}
    script = Path(sys.executable).parent / "recengine"
    recengine = [str(script)] if script.exists() else [sys.executable, "-m", "app"]
    subprocess.run([*recengine, "import", "movielens", str(data)], env=env, check=True)
    subprocess.run([*recengine, "train"], env=env, check=True)


async def _users(url: str, n: int) -> list[str]:
    conn = await load.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT user_id FROM users WHERE last_active IS NOT NULL ORDER BY md5(user_id) LIMIT $1", n
        )
        return [r[0] for r in rows]
    finally:
        await conn.close()


def main() -> None:
    """Parse arguments, prepare the data, measure, print the table and ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--database-url", default=None, help="Server to use (default: configured or embedded).")
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--output", type=Path, default=None, help="Write the rows as JSON here.")
    args = parser.parse_args()
    settings = get_settings()
    base = database.server_url(settings, args.database_url)
    url = database.ensure(database.with_database(base, "recengine_bench_movielens"))
    prepare(url, args.data)
    users = asyncio.run(_users(url, args.users))
    plan = workload.Plan(cached_users=min(50, len(users)))
    recording = asyncio.run(sqlpath.record(url, users, settings))
    with Server(url) as server:
        rows = asyncio.run(workload.recommendations(server.url, users, 9742, plan))
        rows += asyncio.run(workload.sql(url, recording, 9742, plan))
    results = [r.row() for r in rows]
    print(
        "\n".join(
            report._table(
                results, ["operation", "concurrency", "cached", "p50_ms", "p95_ms", "p99_ms", "rps", "errors"]
            )
        )
    )
    ratios = report.ratios(results)
    print(f"\nSQL statements per uncached request: {recording.round_trips}")
    print(f"peak API RSS: {server.peak_rss_mb} MB")
    print("GraphQL/SQL p99 (uncached):", json.dumps(ratios["graphql_over_sql_p99"]))
    if args.output:
        args.output.write_text(json.dumps({"results": results, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
