"""bench.json, bench.md and the PNG plots (matplotlib Agg) of a bench run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.bench.runner import Outcome

TARGETS = [
    "cached p50 <= 2 ms",
    "uncached p99 <= 25 ms at 100k items, <= 50 ms at 1M",
    "GraphQL p99 <= 2 x raw SQL p99",
    ">= 500 cached requests/s per core",
    "batched ingest >= 5,000 events/s",
    "ALS on 10M events <= 60 s",
    "recall@10 >= 0.95 with filters",
    "filtered (category + metadata, ~5% of items) uncached p99 <= 2 x unfiltered at 100k items",
]


def _find(results: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    return next((r for r in results if all(r.get(k) == v for k, v in match.items())), None)


def ratios(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """GraphQL (uncached) p99 over raw SQL p99 per size: at concurrency 1 (contract key) and per level."""
    out: dict[str, dict[str, float]] = {"graphql_over_sql_p99": {}, "graphql_over_sql_p50": {}}
    for r in results:
        if r["operation"] != "sql":
            continue
        g = _find(results, operation="recommendations", cached=False, size=r["size"], concurrency=r["concurrency"])
        if g is None or not r["p99_ms"]:
            continue
        key = str(r["size"]) if r["concurrency"] == 1 else f"{r['size']}@c{r['concurrency']}"
        out["graphql_over_sql_p99"][key] = round(g["p99_ms"] / r["p99_ms"], 2)
        out["graphql_over_sql_p50"][key] = round(g["p50_ms"] / r["p50_ms"], 2)
    out["filtered_over_unfiltered_p99"] = filtered_ratios(results)
    return out


def filtered_ratios(results: list[dict[str, Any]]) -> dict[str, float]:
    """Uncached p99 with the bench's ~5% content filter over the unfiltered uncached p99, per size and level."""
    out: dict[str, float] = {}
    for r in results:
        if r["operation"] != "recommendations_filtered":
            continue
        g = _find(results, operation="recommendations", cached=False, size=r["size"], concurrency=r["concurrency"])
        if g is not None and g["p99_ms"]:
            key = str(r["size"]) if r["concurrency"] == 1 else f"{r['size']}@c{r['concurrency']}"
            out[key] = round(r["p99_ms"] / g["p99_ms"], 2)
    return out


def write(outcome: Outcome, folder: Path, *, plots: bool = True) -> None:
    """Write everything into `folder` (`plots=False`: the JSON and markdown of a step, mid-run)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps(asdict(outcome), indent=2, default=str) + "\n")
    (folder / "bench.md").write_text(markdown(outcome))
    if plots:
        plot(outcome.results, folder)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return lines


def markdown(outcome: Outcome) -> str:
    """A readable report."""
    m = outcome.machine
    lines = [
        "# recengine bench",
        "",
        f"Machine: {m.get('cpu_affinity')} usable CPU(s) of {m.get('cpus')} ({m.get('cpu_model')}), "
        f"{m.get('ram_gb')} GiB RAM, Python {m.get('python')}. Client and server share these cores.",
        "",
        "## Latency and throughput",
        "",
        "rps is requests/s, or events/s for ingest and train, texts/s for embed.",
        "",
    ]
    lines += _table(
        outcome.results,
        ["size", "operation", "concurrency", "cached", "p50_ms", "p95_ms", "p99_ms", "rps", "n", "errors"],
    )
    lines += [
        "",
        "## GraphQL (uncached) over raw SQL",
        "",
        "```",
        json.dumps(outcome.ratios, indent=2),
        "```",
        "",
        f"SQL statements per uncached request: {outcome.round_trips}",
        "",
        "## HNSW recall@10",
        "",
    ]
    lines += _table(
        outcome.recall,
        ["size", "filter", "ef_search", "recall_at_10", "queries", "hnsw_ms_p50", "exact_ms_p50"],
    )
    lines += [
        "",
        f"Peak API RSS: {outcome.rss_mb} MB (by size: {outcome.rss_mb_by_size})",
        "",
        "## Load and training (seconds)",
        "",
        "```",
        json.dumps({"load": outcome.load, "train": outcome.train}, indent=2, default=str),
        "```",
        "",
        "## Targets",
        "",
    ] + [f"- {t}" for t in TARGETS]
    return "\n".join(lines + outcome.notes) + "\n"


def plot(results: list[dict[str, Any]], folder: Path) -> None:
    """latency_vs_size.png (p50 and p99) and rps_vs_size.png for recommendations and SQL."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if r["operation"] in ("recommendations", "recommendations_filtered", "sql"):
            label = f"{r['operation']} {'cached' if r['cached'] else 'uncached'} c={r['concurrency']}"
            series.setdefault(label, []).append(r)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, metric in zip(axes, ("p50_ms", "p99_ms"), strict=True):
        for label, rows in sorted(series.items()):
            rows = sorted(rows, key=lambda r: r["size"])
            ax.plot([r["size"] for r in rows], [r[metric] for r in rows], marker="o", label=label)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="catalog size (items)",
            ylabel=f"{metric[:3]} latency (ms)",
            title=f"{metric[:3]} latency vs catalog size",
        )
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "latency_vs_size.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 5))
    for label, rows in sorted(series.items()):
        rows = sorted(rows, key=lambda r: r["size"])
        ax.plot([r["size"] for r in rows], [r["rps"] for r in rows], marker="o", label=label)
    ax.set(xscale="log", yscale="log", xlabel="catalog size (items)", ylabel="requests/s", title="throughput")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / "rps_vs_size.png", dpi=110)
    plt.close(fig)
