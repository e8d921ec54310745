"""Evaluation report: report.json, a readable report.md and two matplotlib plots."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SERVED = "SERVED"  # HYBRID as the real service computes it, on a database holding only the training split
OURS = (SERVED, "HYBRID", "COLLABORATIVE", "CONTENT_BASED", "POPULAR")
BASELINES = ("EASE", "ALS", "BPR", "ItemKNN")
TARGET = "ndcg@10"


def best_baseline(results: Mapping[str, Mapping[str, float]], metric: str = TARGET) -> tuple[str, float]:
    """Name and score of the strongest baseline on a metric."""
    present = [(name, float(results[name].get(metric, 0.0))) for name in BASELINES if name in results]
    return max(present, key=lambda pair: pair[1]) if present else ("", 0.0)


def hybrid_ratio(results: Mapping[str, Mapping[str, float]], metric: str = TARGET, name: str = "HYBRID") -> float:
    """A row's score (HYBRID by default) divided by the best baseline's (0 when there is no baseline score)."""
    _, base = best_baseline(results, metric)
    return float(results.get(name, {}).get(metric, 0.0)) / base if base > 0 else 0.0


def served_vs_batch(results: Mapping[str, Mapping[str, float]], metric: str = TARGET) -> float | None:
    """SERVED / HYBRID (batch) - 1: how far the served engine is from the one tuned in batch."""
    if SERVED not in results or not results.get("HYBRID", {}).get(metric):
        return None
    return float(results[SERVED][metric]) / float(results["HYBRID"][metric]) - 1.0


def write_report(report: dict[str, Any], output: Path) -> None:
    """Write report.json, report.md, ndcg_at_10.png and metrics_vs_k.png into output."""
    output.mkdir(parents=True, exist_ok=True)
    results = report["results"]
    metric = _target(report)
    name, base = best_baseline(results, metric)
    report["summary"] = {
        "metric": metric,
        "best_baseline": name,
        "best_baseline_score": base,
        "hybrid_over_best_baseline": hybrid_ratio(results, metric),
        "served_over_best_baseline": hybrid_ratio(results, metric, SERVED) if SERVED in results else None,
        "served_vs_batch": served_vs_batch(results, metric),
    }
    (output / "report.json").write_text(json.dumps(report, indent=2, default=_plain) + "\n")
    (output / "report.md").write_text(markdown(report))
    plot_target(results, metric, output / "ndcg_at_10.png")
    plot_vs_k(results, report["protocol"]["ks"], output / "metrics_vs_k.png")


def _target(report: Mapping[str, Any]) -> str:
    """The headline metric: ndcg@10, or ndcg at the largest k when 10 is not evaluated."""
    ks = report["protocol"]["ks"]
    return TARGET if 10 in ks else f"ndcg@{max(ks)}"


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _order(results: Mapping[str, Any]) -> list[str]:
    """Our strategies first, then baselines, then anything else."""
    known = [n for n in (*OURS, *BASELINES) if n in results]
    return known + sorted(set(results) - set(known))


def markdown(report: Mapping[str, Any]) -> str:
    """The report as a Markdown page a person reads."""
    results, summary = report["results"], report["summary"]
    metric = summary["metric"]
    k = metric.split("@")[1]
    cols = [
        f"ndcg@{k}",
        f"recall@{k}",
        f"precision@{k}",
        f"map@{k}",
        f"hit_rate@{k}",
        "coverage",
        "novelty",
        "fit_seconds",
        "score_seconds",
    ]
    lines = [f"# Offline evaluation: {report['dataset'].get('name', '')}", "", *_headline(results, summary, metric)]
    lines += [
        "",
        "| model | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for name in _order(results):
        row = results[name]
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    lines += ["", "## Dataset", "", *[f"- {key}: {value}" for key, value in report["dataset"].items()]]
    lines += ["", "## Protocol", "", *[f"- {key}: {value}" for key, value in report["protocol"].items()]]
    lines += ["", "## Chosen on validation", ""]
    for name, params in report.get("tuning", {}).items():
        shown = {key: value for key, value in params.items() if key != "trace"}
        lines.append(
            f"- {name}: `{json.dumps(shown, default=_plain)}` (validation {metric} "
            f"{_fmt(report.get('validation', {}).get(name))})"
        )
    if report.get("ablation"):
        lines += [
            "",
            "## HYBRID ablation (test set, weights fixed from validation)",
            "",
            f"| variant | {metric} | recall@{k} | coverage |",
            "|---|---|---|---|",
            f"| HYBRID | {_fmt(results['HYBRID'][metric])} | {_fmt(results['HYBRID'][f'recall@{k}'])} | "
            f"{_fmt(results['HYBRID']['coverage'])} |",
        ]
        for variant, row in report["ablation"].items():
            lines.append(f"| {variant} | {_fmt(row[metric])} | {_fmt(row[f'recall@{k}'])} | {_fmt(row['coverage'])} |")
    return "\n".join(lines) + "\n"


def _headline(results: Mapping[str, Any], summary: Mapping[str, Any], metric: str) -> list[str]:
    """SERVED first (what users get), then the batch HYBRID it was tuned as."""
    base = summary["best_baseline"]
    lines = []
    if summary.get("served_over_best_baseline") is not None:
        lines += [
            f"SERVED (the real service on a database holding only the training split) {metric}: "
            f"**{_fmt(results[SERVED][metric])}**, SERVED / best baseline ({base}): "
            f"**{summary['served_over_best_baseline']:.3f}**",
            "",
            f"SERVED vs HYBRID computed in batch: {summary['served_vs_batch']:+.2%}",
            "",
        ]
    lines.append(f"HYBRID (batch) / best baseline ({base}) {metric}: **{summary['hybrid_over_best_baseline']:.3f}**")
    return lines


def _fmt(value: Any) -> str:
    """Four decimals for numbers, a dash for missing values."""
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def plot_target(results: Mapping[str, Mapping[str, float]], metric: str, path: Path) -> None:
    """Bar chart of the headline metric by model."""
    plt = _pyplot()
    names = _order(results)
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = ["tab:orange" if n in OURS else "tab:blue" for n in names]
    ax.bar(names, [results[n].get(metric, 0.0) for n in names], color=colors)
    ax.set_ylabel(metric.upper())
    ax.set_title(f"{metric.upper()} by model (orange: ours)")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_vs_k(results: Mapping[str, Mapping[str, float]], ks: list[int], path: Path) -> None:
    """NDCG, recall and precision against k, one line per model."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, metric in zip(axes, ("ndcg", "recall", "precision"), strict=True):
        for name in _order(results):
            ax.plot(ks, [results[name].get(f"{metric}@{k}", 0.0) for k in ks], marker="o", label=name)
        ax.set_xlabel("k")
        ax.set_title(metric)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
