"""Smoke test of `recengine bench run` at a tiny size: it runs and writes the contract; no thresholds."""

from __future__ import annotations

import json
from pathlib import Path

from app.bench.runner import Options, run
from app.bench.workload import Plan

TINY = Plan(
    concurrency=(1, 4),
    uncached_per_level=10,
    cached_per_level=20,
    cached_users=5,
    ingest_single=5,
    batches_100=1,
    batches_1000=1,
)


def test_bench_run_writes_the_contract(database_url: str, tmp_path: Path) -> None:
    options = Options(
        output=tmp_path,
        sizes=(500,),
        database_url=database_url,
        plan=TINY,
        recorded_users=5,
        recall_queries=5,
        ef_values=(40,),
        embed_texts=0,
        fresh=True,
    )
    run(options, say=lambda _: None)

    data = json.loads((tmp_path / "bench.json").read_text())
    assert {"machine", "results", "recall", "ratios", "rss_mb"} <= data.keys()
    operations = {r["operation"] for r in data["results"]}
    assert {
        "recommendations",
        "recommendations_filtered",
        "sql",
        "ingest_single",
        "ingest_batch100",
        "ingest_batch1000",
        "train",
    } <= operations
    for row in data["results"]:
        assert {
            "size",
            "operation",
            "concurrency",
            "cached",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "rps",
        } <= row.keys()
        assert row["errors"] == 0, row
    assert {r["filtered"] for r in data["recall"]} == {False, True}
    assert {r["filter"] for r in data["recall"]} == {
        "none",
        "content_type",
        "category+metadata",
        "category+metadata (hnsw walk)",
    }
    assert "500" in data["ratios"]["filtered_over_unfiltered_p99"]
    assert {"size", "filtered", "ef_search", "recall_at_10"} <= data["recall"][0].keys()
    assert "500" in data["ratios"]["graphql_over_sql_p99"]
    assert data["rss_mb"] > 0
    assert (tmp_path / "bench.md").exists() and (tmp_path / "latency_vs_size.png").exists()
