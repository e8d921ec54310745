"""Our strategies in the offline evaluation: ALS + content sources, blended by `hybrid.blend`.

`fit_sources` trains what the service trains (ALS on event-weighted, time-decayed
confidences; item embeddings come precomputed) and computes every candidate source in
batch (`app.ml.batch`); `blend_top` ranks users by calling the serving blend on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.ml import batch, links
from app.ml.batch import History
from app.ml.hybrid import Candidate, blend
from app.ml.serving import ServingConfig
from app.ml.sources import LINK_SOURCES, SPECS, Need, Source

SEED = 42
# Which trained model each source reads (the others need no training beyond embeddings).
MODEL_OF = {
    "collaborative": ("als",),
    "factor_neighbors": ("als", "factor_neighbors"),
    "co_occurrence": ("co_occurrence",),
    "sequential": ("sequential",),
    "item_neighbors": ("item_neighbors",),
}


@dataclass
class Models:
    """What training produces for the sources: ALS factors, the item-link table."""

    factors: tuple[np.ndarray, np.ndarray] | None = None
    links: dict[Source, sp.csr_matrix] = field(default_factory=dict)
    fit_timings: dict[str, float] = field(default_factory=dict)


@dataclass
class SourceLists:
    """Candidates of every source for every user, plus how long they took."""

    lists: dict[str, list[list[Candidate]]]
    fit_timings: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def fit_seconds(self, used: Iterable[str]) -> float:
        """Training time of the models behind the used sources (ALS counted once)."""
        models = {m for s in used for m in MODEL_OF.get(s, ())}
        return sum(self.fit_timings.get(m, 0.0) for m in models)


def clock(history: History) -> float:
    """The evaluation's now: the end of the training data (as a training run right after it)."""
    return float(history.timestamps.max()) if history.timestamps.size else 0.0


def fit_als(history: History, item_ids: np.ndarray, config: ServingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Train ALS exactly as `recengine train` does (`training.fit`, same ids, seed and decay clock);
    (user factors, item factors) in History's index order."""
    from app.ml.gate import EventArrays
    from app.ml.training import fit, interactions

    names = (
        history.user_ids
        if history.user_ids is not None
        else np.array([f"u{u}" for u in range(history.n_users)], dtype=object)
    )
    events = EventArrays(
        names[history.users].astype(object),
        item_ids[history.items].astype(object),
        history.weights.astype(np.float32),
        history.timestamps.astype(np.float64),
    )
    inter = interactions(events, config, now=clock(history))
    model, _ = fit(events, config, seed=SEED, inter=inter)
    return _reindex(model, inter, names, item_ids)


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


@dataclass(frozen=True)
class Fitted:
    """What every batch source function reads: training history, item vectors, trained models, settings."""

    history: History
    item_vectors: np.ndarray
    models: Models
    config: ServingConfig
    k: int

    @property
    def now(self) -> float:
        """The evaluation's clock."""
        return clock(self.history)


BatchFn = Callable[[Fitted], tuple[np.ndarray, ...]]


def _collaborative(f: Fitted) -> tuple[np.ndarray, ...]:
    assert f.models.factors is not None
    return batch.collaborative(f.models.factors[0], f.models.factors[1], f.history, f.k)


def _linked(f: Fitted, source: Source) -> tuple[np.ndarray, ...]:
    seeds = batch.seed_matrix(f.history, source, f.config, now=f.now)
    return batch.linked(f.models.links[source], seeds, f.history.seen(), f.k, combine=SPECS[source].combine)


def _factor_neighbors(f: Fitted) -> tuple[np.ndarray, ...]:
    return _linked(f, Source.FACTOR_NEIGHBORS)


def _co_occurrence(f: Fitted) -> tuple[np.ndarray, ...]:
    return _linked(f, Source.CO_OCCURRENCE)


def _sequential(f: Fitted) -> tuple[np.ndarray, ...]:
    return _linked(f, Source.SEQUENTIAL)


def _content(f: Fitted) -> tuple[np.ndarray, ...]:
    return batch.content(f.item_vectors, _positive(f.history), f.k, now=f.now, config=f.config)


def _item_neighbors(f: Fitted) -> tuple[np.ndarray, ...]:
    return _linked(f, Source.ITEM_NEIGHBORS)


def _popular(f: Fitted) -> tuple[np.ndarray, ...]:
    return batch.popular(f.history, f.k)


def _trending(f: Fitted) -> tuple[np.ndarray, ...]:
    return batch.trending(f.history, f.k, window_days=f.config.trending_window_days, now=f.now)


BATCH: dict[Source, BatchFn] = {
    Source.COLLABORATIVE: _collaborative,
    Source.CO_OCCURRENCE: _co_occurrence,
    Source.SEQUENTIAL: _sequential,
    Source.CONTENT: _content,
    Source.ITEM_NEIGHBORS: _item_neighbors,
    Source.FACTOR_NEIGHBORS: _factor_neighbors,
    Source.POPULAR: _popular,
    Source.TRENDING: _trending,
}


def fit_models(
    history: History, item_ids: np.ndarray, item_vectors: np.ndarray, config: ServingConfig, wanted: set[Source]
) -> Models:
    """Train what the wanted sources need (ALS; the neighbour tables, with training's own functions), timed."""
    models = Models()
    if any(Need.FACTORS in SPECS[s].needs for s in wanted):
        start = time.perf_counter()
        models.factors = fit_als(history, item_ids, config)
        models.fit_timings["als"] = time.perf_counter() - start
    for source in sorted(wanted & set(LINK_SOURCES)):
        start = time.perf_counter()
        models.links[source] = link_table(source, history, item_vectors, models, config)
        models.fit_timings[source.value] = time.perf_counter() - start
    return models


def link_table(
    source: Source, history: History, item_vectors: np.ndarray, models: Models, config: ServingConfig
) -> sp.csr_matrix:
    """One neighbour table over the catalog, built as training builds it (`app.ml.links`)."""
    params = config.links
    if source is Source.CO_OCCURRENCE:
        table, _kind = links.co_engagement(history.seen(), params)
        return table if table is not None else sp.csr_matrix((history.n_items, history.n_items))
    if source is Source.FACTOR_NEIGHBORS:
        assert models.factors is not None
        return links.cosine_neighbors(models.factors[1], params.factor_neighbors)
    if source is Source.ITEM_NEIGHBORS:
        return links.cosine_neighbors(item_vectors, params.embedding_neighbors)
    return links.sequential(history, params.sequential_neighbors)


def fit_sources(
    history: History,
    item_ids: np.ndarray,
    item_vectors: np.ndarray,
    config: ServingConfig,
    users: np.ndarray,
    wanted: tuple[str, ...],
) -> SourceLists:
    """Fit what the wanted sources need and compute their candidates for `users`."""
    sources = [Source(name) for name in wanted]
    models = fit_models(history, item_ids, item_vectors, config, set(sources))
    fitted = Fitted(history, item_vectors, models, config, config.candidates)
    lists: dict[str, list[list[Candidate]]] = {}
    timings: dict[str, float] = {}
    for source in sources:
        t0 = time.perf_counter()
        result = BATCH[source](fitted)
        idx, val = result[0][users], result[1][users]
        anc = result[2][users] if len(result) == 3 else None
        lists[source.value] = batch.to_candidates(item_ids, idx, val, anc)
        timings[source.value] = time.perf_counter() - t0
    return SourceLists(lists, models.fit_timings, timings)


def _positive(history: History) -> History:
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
    config: ServingConfig | None = None,
) -> np.ndarray:
    """Each user's top-n item indices from the serving blend (-1 padding).

    With `history_lengths` (distinct training items per user, in the lists' user order) and the
    `config`, the blend adapts its weights to each user's history exactly as the service does.
    """
    names = list(sources.lists)
    n_users = len(next(iter(sources.lists.values()))) if sources.lists else 0
    top = np.full((n_users, n), -1, dtype=np.int64)
    for u in range(n_users):
        ranked = blend(
            {name: sources.lists[name][u] for name in names},
            n,
            weights=weights
            if history_lengths is None or config is None
            else config.adapt(weights, int(history_lengths[u])),
            diversity=diversity,
            vectors=vectors,
        )
        for j, item in enumerate(ranked):
            top[u, j] = item_pos[item.item_id]
    return top
