"""Model selection on validation, refit on training, scoring on test, for every model compared."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.ml import baselines, strategies
from app.ml.protocol import Split, item_popularity, score_top
from app.ml.serving import ServingConfig, default_config
from app.ml.sources import Source
from app.ml.strategies import SourceLists

EvalProgress = Callable[[str], None]
SOURCES = tuple(s.value for s in Source)
WEIGHT_VALUES = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
CONTENT_SOURCES = ("content", "item_neighbors")


@dataclass(frozen=True)
class EvalSetup:
    """What every model run shares: catalog ids, item embeddings, cut-offs, grid size."""

    item_ids: np.ndarray
    vectors: np.ndarray
    ks: tuple[int, ...]
    quick: bool = False

    @property
    def n(self) -> int:
        """Length of the ranked lists (the largest k)."""
        return max(self.ks)

    @property
    def target(self) -> str:
        """Selection metric."""
        return f"ndcg@{10 if 10 in self.ks else self.n}"


@dataclass
class Outcome:
    """Test results, chosen parameters, validation scores and the hybrid ablation."""

    results: dict[str, dict[str, float]] = field(default_factory=dict)
    tuning: dict[str, dict[str, Any]] = field(default_factory=dict)
    validation: dict[str, float] = field(default_factory=dict)
    ablation: dict[str, dict[str, float]] = field(default_factory=dict)
    config: ServingConfig | None = None


def baseline_grids(quick: bool) -> dict[str, list[dict[str, Any]]]:
    """Small hyper-parameter grids of the baselines."""
    if quick:
        return {
            "EASE": [{"regularization": 10.0}, {"regularization": 100.0}],
            "ALS": [{"factors": 8, "regularization": 0.05, "alpha": 1.0, "iterations": 5, "random_state": 42}],
            "BPR": [
                {
                    "factors": 8,
                    "learning_rate": 0.05,
                    "regularization": 0.01,
                    "iterations": 20,
                    "random_state": 42,
                }
            ],
            "ItemKNN": [{"K": 10}],
        }
    return {
        "EASE": [{"regularization": lam} for lam in (50.0, 100.0, 200.0, 500.0, 1000.0)],
        "ALS": [
            {"factors": f, "regularization": r, "alpha": a, "iterations": 15, "random_state": 42}
            for f in (64, 128)
            for r in (0.01, 0.1)
            for a in (1.0, 10.0)
        ],
        "BPR": [
            {"factors": f, "learning_rate": lr, "regularization": 0.01, "iterations": 100, "random_state": 42}
            for f in (64, 128)
            for lr in (0.01, 0.05)
        ],
        "ItemKNN": [{"K": k} for k in (20, 50, 100, 200)],
    }


def variant(config: ServingConfig, **changes: object) -> ServingConfig:
    """A copy of the configuration with top-level, `als.*` or `links.*` fields changed."""
    top = {k: v for k, v in changes.items() if "." not in k}
    for group in ("als", "links", "history"):
        inner = {k.split(".", 1)[1]: v for k, v in changes.items() if k.startswith(group + ".")}
        if inner:
            top[group] = getattr(config, group).model_copy(update=inner)
    return config.model_copy(update=top)


def source_grid(quick: bool) -> list[ServingConfig]:
    """Grid of the ALS/decay settings behind our collaborative source."""
    base = default_config()
    if quick:
        return [variant(base, **{"als.factors": 8, "half_life_days": hl}) for hl in (None, 365.0)]
    return [
        variant(base, **{"als.factors": f, "als.alpha": a, "als.regularization": r, "half_life_days": hl})
        for f in (32, 64)
        for a in (1.0,)
        for r in (0.05, 5.0)
        for hl in (None, 90.0)
    ]


def step_count(ctx: EvalSetup) -> int:
    """Progress steps of a full comparison."""
    grids = baseline_grids(ctx.quick)
    return sum(len(g) + 1 for g in grids.values()) + len(source_grid(ctx.quick)) + 8


def evaluate(top: np.ndarray, split: Split, ctx: EvalSetup) -> dict[str, float]:
    """Metrics of a top-n matrix on a split."""
    return score_top(top, split, ctx.ks, item_popularity(split))


def run_baseline(name: str, params: Mapping[str, Any], split: Split, ctx: EvalSetup) -> tuple[np.ndarray, float, float]:
    """Fit one baseline; its top-n for the split's users, fit and score seconds."""
    model: baselines.Baseline
    if name == "EASE":
        model = baselines.EASE(**params)
    else:
        model = baselines.ImplicitModel({"ALS": "als", "BPR": "bpr", "ItemKNN": "itemknn"}[name], **params)
    matrix = split.matrix()
    t0 = time.perf_counter()
    model.fit(matrix)
    t1 = time.perf_counter()
    top = model.recommend(matrix, ctx.n)[split.users]
    return top, t1 - t0, time.perf_counter() - t1


def _record(
    out: Outcome, name: str, top: np.ndarray, split: Split, ctx: EvalSetup, fit_s: float, score_s: float
) -> None:
    """Store a model's test metrics with its timings."""
    out.results[name] = {**evaluate(top, split, ctx), "fit_seconds": fit_s, "score_seconds": score_s}


def tune_baselines(ctx: EvalSetup, val: Split, test: Split, out: Outcome, step: EvalProgress) -> None:
    """Grid search every baseline on validation, refit the winner, score on test."""
    for name, grid in baseline_grids(ctx.quick).items():
        best: tuple[float, dict[str, Any]] = (-1.0, grid[0])
        for params in grid:
            step(f"{name} {params}")
            top, _, _ = run_baseline(name, params, val, ctx)
            value = evaluate(top, val, ctx)[ctx.target]
            if value > best[0]:
                best = (value, params)
        step(f"{name} refit")
        out.tuning[name] = dict(best[1])
        out.validation[name] = best[0]
        top, fit_s, score_s = run_baseline(name, best[1], test, ctx)
        _record(out, name, top, test, ctx, fit_s, score_s)


def sources_for(split: Split, ctx: EvalSetup, config: ServingConfig, wanted: tuple[str, ...] = SOURCES) -> SourceLists:
    """Candidates of the wanted sources for the split's users."""
    return strategies.fit_sources(split.history, ctx.item_ids, ctx.vectors, config, split.users, wanted)


def blended(
    lists: SourceLists,
    weights: Mapping[str, float],
    split: Split,
    ctx: EvalSetup,
    config: ServingConfig,
    diversity: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Top-n of the blend (weights adapted to each user's history as served) and the seconds it took."""
    pos = {str(item): i for i, item in enumerate(ctx.item_ids)}
    vecs = {str(item): ctx.vectors[i] for i, item in enumerate(ctx.item_ids)} if diversity > 0 else None
    t0 = time.perf_counter()
    lengths = split.history.seen().getnnz(axis=1)[split.users]
    top = strategies.blend_top(
        lists, weights, ctx.n, pos, diversity=diversity, vectors=vecs, history_lengths=lengths, config=config
    )
    return top, time.perf_counter() - t0


def tune_collaborative(ctx: EvalSetup, val: Split, out: Outcome, step: EvalProgress) -> ServingConfig:
    """ALS factors, confidence scale and time decay of our collaborative source."""
    best: tuple[float, ServingConfig] = (-1.0, source_grid(ctx.quick)[0])
    for config in source_grid(ctx.quick):
        step(f"COLLABORATIVE {config.als} half-life {config.half_life_days}")
        lists = sources_for(val, ctx, config, ("collaborative",))
        value = evaluate(blended(lists, {"collaborative": 1.0}, val, ctx, config)[0], val, ctx)[ctx.target]
        if value > best[0]:
            best = (value, config)
    out.validation["COLLABORATIVE"] = best[0]
    out.tuning["COLLABORATIVE"] = {"als": best[1].als.model_dump(), "half_life_days": best[1].half_life_days}
    return best[1]


def coordinate_ascent(
    names: tuple[str, ...],
    start: dict[str, float],
    score: Callable[[dict[str, float]], float],
    passes: int = 2,
) -> tuple[dict[str, float], float, list[dict[str, Any]]]:
    """Tune blend weights one source at a time over WEIGHT_VALUES; returns weights, score, trace."""
    weights = dict(start)
    seen: dict[tuple[float, ...], float] = {}

    def value(w: dict[str, float]) -> float:
        key = tuple(w.get(n, 0.0) for n in names)
        if key not in seen:
            seen[key] = score(w)
        return seen[key]

    best = value(weights)
    trace: list[dict[str, Any]] = [{"weights": dict(weights), "score": best}]
    for _ in range(passes):
        for name in names:
            for candidate in WEIGHT_VALUES:
                trial = {**weights, name: candidate}
                if not any(trial.values()):
                    continue
                if (v := value(trial)) > best + 1e-9:
                    best, weights = v, trial
                    trace.append({"weights": dict(weights), "score": best})
    return weights, best, trace


def link_variants(config: ServingConfig, out: Outcome, quick: bool) -> list[ServingConfig]:
    """Item-link tables to try for co_occurrence: cosine top-50, EASE top-200 (EASE's tuned lambda)."""
    lam = float(out.tuning.get("EASE", {}).get("regularization", config.links.regularization))
    ease = variant(config, **{"links.kind": "ease", "links.regularization": lam})
    return [ease] if quick else [variant(config, **{"links.kind": "cosine"}), ease]


def tune_blends(ctx: EvalSetup, val: Split, config: ServingConfig, out: Outcome, step: EvalProgress) -> ServingConfig:
    """Item-link table and blend weights of HYBRID and CONTENT_BASED, on validation."""
    best: tuple[float, ServingConfig, dict[str, float], list[dict[str, Any]]] = (-1.0, config, {}, [])
    for candidate in link_variants(config, out, ctx.quick):
        step(f"HYBRID weights, {candidate.links.kind} links")
        lists = sources_for(val, ctx, candidate)

        def score(w: dict[str, float], lists: SourceLists = lists, c: ServingConfig = candidate) -> float:
            return evaluate(blended(lists, w, val, ctx, c)[0], val, ctx)[ctx.target]

        weights, value, trace = coordinate_ascent(SOURCES, {"collaborative": 1.0}, score)
        out.validation[f"HYBRID ({candidate.links.kind} links)"] = value
        if value > best[0]:
            best = (value, candidate, weights, trace)
    step("CONTENT_BASED weights")
    content, c_score, _ = coordinate_ascent(CONTENT_SOURCES, {"content": 1.0}, score, passes=1)
    out.validation.update({"HYBRID": best[0], "CONTENT_BASED": c_score, "POPULAR": score({"popular": 1.0})})
    out.tuning["HYBRID"] = {"weights": best[2], "links": best[1].links.model_dump(), "trace": best[3]}
    out.tuning["CONTENT_BASED"] = {"weights": content}
    out.tuning["POPULAR"] = {}
    chosen = best[1].weights | {"hybrid": _positive(best[2]), "content_based": _positive(content)}
    return best[1].model_copy(update={"weights": chosen})


def _positive(weights: Mapping[str, float]) -> dict[str, float]:
    """The weights above zero (what a configuration file lists)."""
    return {name: float(w) for name, w in weights.items() if w > 0}


STRATEGY_ROWS = {
    "HYBRID": "hybrid",
    "COLLABORATIVE": "collaborative",
    "CONTENT_BASED": "content_based",
    "POPULAR": "popular",
}


def score_strategies(
    ctx: EvalSetup, test: Split, config: ServingConfig, out: Outcome, step: EvalProgress
) -> SourceLists:
    """Refit the sources on the training part and score each strategy on test."""
    step("sources on test")
    lists = sources_for(test, ctx, config)
    for name, strategy in STRATEGY_ROWS.items():
        w = config.blend(strategy)
        top, blend_s = blended(lists, w, test, ctx, config)
        used = [s for s in w if w[s] > 0]
        fit_s = lists.fit_seconds(used)
        _record(out, name, top, test, ctx, fit_s, blend_s + sum(lists.timings.get(s, 0.0) for s in used))
    return lists


def ablate(
    ctx: EvalSetup, test: Split, lists: SourceLists, config: ServingConfig, out: Outcome, step: EvalProgress
) -> None:
    """HYBRID on test without each source, and with MMR diversity (reported, never tuned on)."""
    step("ablation")
    weights = config.blend("hybrid")
    for name in [s for s in SOURCES if weights.get(s, 0.0) > 0]:
        top, _ = blended(lists, {**weights, name: 0.0}, test, ctx, config)
        out.ablation[f"without {name}"] = evaluate(top, test, ctx)
    for diversity in (0.1, 0.3):
        top, _ = blended(lists, weights, test, ctx, config, diversity=diversity)
        out.ablation[f"diversity {diversity}"] = evaluate(top, test, ctx)
    if config.half_life_days is not None:
        step("ablation: no time decay")
        no_decay = config.model_copy(update={"half_life_days": None})
        top, _ = blended(sources_for(test, ctx, no_decay), weights, test, ctx, no_decay)
        out.ablation["without time decay"] = evaluate(top, test, ctx)


def compare(ctx: EvalSetup, val: Split, test: Split, step: EvalProgress) -> Outcome:
    """Tune on validation, refit, score on test: baselines and our strategies; the chosen configuration."""
    out = Outcome()
    step("POPULAR baseline")
    tune_baselines(ctx, val, test, out, step)
    config = tune_collaborative(ctx, val, out, step)
    config = tune_blends(ctx, val, config, out, step)
    lists = score_strategies(ctx, test, config, out, step)
    ablate(ctx, test, lists, config, out, step)
    out.config = config
    return out
