"""The promotion gate: NDCG@10 of a factor model on each user's most recent events."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.ml.als import fold_in_vector
from app.ml.metrics import metrics_at_k
from app.ml.protocol import temporal_split

MAX_GATE_USERS = 2000


@dataclass(frozen=True)
class EventArrays:
    """Positive interactions as parallel arrays (user, item, confidence weight, unix time)."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray


@dataclass(frozen=True)
class FactorModel:
    """What the gate needs of a model: item ids and factors and the fold-in hyper-parameters."""

    item_ids: list[str]
    item_factors: np.ndarray
    alpha: float
    regularization: float


def holdout_ndcg(model: FactorModel, events: EventArrays, *, k: int = 10, seed: int = 0) -> dict[str, float]:
    """Fold each user's older events into a vector and rank the catalog; score the newest 20%."""
    train, test = temporal_split(events.user_ids, events.timestamps)
    index = {item: i for i, item in enumerate(model.item_ids)}
    items = np.array([index.get(str(i), -1) for i in events.item_ids], dtype=np.int64)
    names, codes = np.unique(events.user_ids.astype(str), return_inverse=True)
    tested = np.unique(codes[test])
    if tested.size > MAX_GATE_USERS:
        tested = np.sort(np.random.default_rng(seed).choice(tested, MAX_GATE_USERS, replace=False))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(names.size + 1))
    y = model.item_factors.astype(np.float64)
    yty = y.T @ y
    tops, relevant = [], []
    for code in tested:
        rows = order[bounds[code] : bounds[code + 1]]
        rows = rows[items[rows] >= 0]
        top, rel = _rank_user(model, items, events.weights, rows[train[rows]], rows[test[rows]], yty, k)
        if rel.size:
            tops.append(top)
            relevant.append(rel)
    if not tops:
        return {f"ndcg@{k}": 0.0, "users": 0.0}
    hits = np.array([np.isin(t, r) for t, r in zip(tops, relevant, strict=True)])
    scores = metrics_at_k(hits, np.array([r.size for r in relevant]), k)
    return {f"{name}@{k}": value for name, value in scores.items()} | {"users": float(len(tops))}


def _rank_user(
    model: FactorModel,
    items: np.ndarray,
    weights: np.ndarray,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    yty: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    seen = items[train_rows]
    relevant = np.setdiff1d(items[test_rows], seen)
    vector = fold_in_vector(
        model.item_factors,
        yty,
        seen,
        weights[train_rows].astype(np.float64),
        alpha=model.alpha,
        regularization=model.regularization,
    )
    scores = model.item_factors @ vector
    scores[seen] = -np.inf
    return np.argsort(-scores, kind="stable")[:k], relevant
