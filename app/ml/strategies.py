"""Our strategies in the offline evaluation: ALS + content sources, blended by `hybrid.blend`.

`fit_sources` trains what the service trains (ALS on event-weighted, time-decayed
confidences; item embeddings come precomputed) and computes every candidate source in
batch (`app.ml.batch`); `blend_top` ranks users by calling the serving blend on them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.ml import batch
from app.ml.baselines import EASE
from app.ml.batch import History
from app.ml.hybrid import ANCHOR_ITEMS, Candidate, blend

CANDIDATES_PER_SOURCE = 200
ALS_ITERATIONS = 15
SEED = 42
# Which trained model each source reads (the others need no training beyond embeddings).
MODEL_OF = {"collaborative": "als", "factor_neighbors": "als", "co_occurrence": "links"}


@dataclass(frozen=True)
class SourceParams:
    """Settings of the models behind the sources (tuned on validation)."""

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 2.0
    half_life_days: float | None = 365.0
    recent_items: int = ANCHOR_ITEMS
    trending_window_days: float = 30.0
    link_neighbors: int = 50
    link_kind: str = "cosine"
    link_regularization: float = 200.0


@dataclass
class Models:
    """What training produces for the sources: ALS factors, the item-link table."""

    factors: tuple[np.ndarray, np.ndarray] | None = None
    links: sp.csr_matrix | None = None


@dataclass
class SourceLists:
    """Candidates of every source for every user, plus how long they took."""

    lists: dict[str, list[list[Candidate]]]
    fit_timings: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def fit_seconds(self, used: Iterable[str]) -> float:
        """Training time of the models behind the used sources (ALS counted once)."""
        models = {MODEL_OF[s] for s in used if s in MODEL_OF}
        return sum(self.fit_timings.get(m, 0.0) for m in models)


def decayed_weights(history: History, half_life_days: float | None) -> np.ndarray:
    """Event weights decayed by age relative to each user's latest event (the user's now)."""
    if half_life_days is None:
        return history.weights.astype(np.float64)
    now = history.last_timestamp()[history.users]
    ages = (now - history.timestamps) / batch.SECONDS_PER_DAY
    return np.asarray(history.weights * np.power(0.5, ages / half_life_days), dtype=np.float64)


def fit_als(history: History, item_ids: np.ndarray, params: SourceParams) -> tuple[np.ndarray, np.ndarray]:
    """Train the service's ALSModel; (user factors, item factors) in History's index order."""
    from app.ml.als import ALSModel, build_interactions

    weights = decayed_weights(history, params.half_life_days)
    keep = weights > 0
    user_names = np.array([f"u{u}" for u in range(history.n_users)], dtype=object)
    inter = build_interactions(
        user_names[history.users[keep]],
        item_ids[history.items[keep]],
        weights[keep].astype(np.float32),
        item_universe=list(item_ids),
    )
    model = ALSModel(
        factors=params.factors,
        regularization=params.regularization,
        alpha=params.alpha,
        iterations=ALS_ITERATIONS,
        random_state=SEED,
    )
    model.fit(inter)
    return _reindex(model, inter, user_names, item_ids)


def _reindex(model: Any, inter: Any, user_names: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Factors reordered to our user/item indices (users without training rows get zeros)."""
    uf = np.asarray(model.user_factors, dtype=np.float32)
    itf = np.asarray(model.item_factors, dtype=np.float32)
    u_pos = {str(name): i for i, name in enumerate(inter.user_ids)}
    i_pos = {str(name): i for i, name in enumerate(inter.item_ids)}
    users = np.zeros((user_names.size, uf.shape[1]), dtype=np.float32)
    for u, name in enumerate(user_names):
        if str(name) in u_pos:
            users[u] = uf[u_pos[str(name)]]
    items = np.zeros((item_ids.size, itf.shape[1]), dtype=np.float32)
    for i, name in enumerate(item_ids):
        if str(name) in i_pos:
            items[i] = itf[i_pos[str(name)]]
    return users, items


def fit_sources(
    history: History,
    item_ids: np.ndarray,
    item_vectors: np.ndarray,
    params: SourceParams,
    users: np.ndarray,
    wanted: tuple[str, ...],
) -> SourceLists:
    """Fit ALS (if needed) and compute the wanted sources' candidates for `users`."""
    k = CANDIDATES_PER_SOURCE
    timings: dict[str, float] = {}
    models = Models()
    fits: dict[str, float] = {}
    if {"collaborative", "factor_neighbors"} & set(wanted):
        start = time.perf_counter()
        models.factors = fit_als(history, item_ids, params)
        fits["als"] = time.perf_counter() - start
    if "co_occurrence" in wanted:
        start = time.perf_counter()
        models.links = item_links(history, params)
        fits["links"] = time.perf_counter() - start
    lists: dict[str, list[list[Candidate]]] = {}
    for name in wanted:
        t0 = time.perf_counter()
        result = _source(name, history, item_vectors, models, params, k)
        idx, val = result[0][users], result[1][users]
        anc = result[2][users] if len(result) == 3 else None
        lists[name] = batch.to_candidates(item_ids, idx, val, anc)
        timings[name] = time.perf_counter() - t0
    return SourceLists(lists, fits, timings)


def item_links(history: History, params: SourceParams) -> sp.csr_matrix:
    """The item-to-item table behind co_occurrence: cosine co-occurrence or sparsified EASE weights."""
    if params.link_kind == "cosine":
        return batch.item_links(history, params.link_neighbors)
    if params.link_kind == "ease":
        model = EASE(params.link_regularization)
        model.fit(history.seen())
        return model.item_links(params.link_neighbors)
    raise ValueError(f"unknown link kind {params.link_kind!r}")


def _source(
    name: str,
    history: History,
    item_vectors: np.ndarray,
    models: Models,
    params: SourceParams,
    k: int,
) -> tuple[np.ndarray, ...]:
    """One source's (indices, scores[, anchors]) for all users."""
    if name == "collaborative" and models.factors is not None:
        return batch.collaborative(models.factors[0], models.factors[1], history, k)
    if name == "factor_neighbors" and models.factors is not None:
        return batch.neighbors(models.factors[1], history, k, recent=params.recent_items)
    if name == "co_occurrence" and models.links is not None:
        return batch.co_occurrence(models.links, history, decayed_weights(history, params.half_life_days), k)
    if name == "content":
        return batch.content(item_vectors, _decayed(history, params), k, half_life_days=_hl(params))
    if name == "item_neighbors":
        return batch.neighbors(item_vectors, history, k, recent=params.recent_items)
    if name == "popular":
        return batch.popular(history, k)
    if name == "trending":
        return batch.trending(history, k, window_days=params.trending_window_days)
    raise ValueError(f"unknown source {name!r}")


def _hl(params: SourceParams) -> float:
    """Half-life for the profile vector (no decay = a very long half-life)."""
    return params.half_life_days if params.half_life_days is not None else 1e9


def _decayed(history: History, params: SourceParams) -> History:
    """History with non-positive weights dropped (dislikes do not pull the profile)."""
    keep = history.weights > 0
    return History(
        history.n_users,
        history.n_items,
        history.users[keep],
        history.items[keep],
        history.weights[keep],
        history.timestamps[keep],
    )


def blend_top(
    sources: SourceLists,
    weights: Mapping[str, float],
    n: int,
    item_pos: Mapping[str, int],
    *,
    diversity: float = 0.0,
    vectors: Mapping[str, np.ndarray] | None = None,
    history_lengths: np.ndarray | None = None,
) -> np.ndarray:
    """Each user's top-n item indices from the serving blend (-1 padding).

    With `history_lengths` (distinct training items per user, in the lists' user order) the
    blend adapts its weights to each user's history exactly as the service does.
    """
    names = list(sources.lists)
    n_users = len(next(iter(sources.lists.values()))) if sources.lists else 0
    top = np.full((n_users, n), -1, dtype=np.int64)
    for u in range(n_users):
        ranked = blend(
            {name: sources.lists[name][u] for name in names},
            n,
            weights=weights,
            diversity=diversity,
            vectors=vectors,
            history_length=None if history_lengths is None else int(history_lengths[u]),
        )
        for j, item in enumerate(ranked):
            top[u, j] = item_pos[item.item_id]
    return top
