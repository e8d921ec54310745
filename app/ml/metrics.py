"""Ranking metrics for offline evaluation: binary relevance, one ranked list per user.

Every function takes a user's ranked list (best first) and the set of that user's held-out
items. Lists longer than k are cut at k; shorter lists are scored as they are (missing
positions count as misses). The `*_many` helpers average over users and work on an
(n_users, k) matrix of item indices with a boolean hit matrix, so a whole evaluation is a
few numpy operations.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

Item = str | int


def _hits(ranked: Sequence[Item], relevant: Collection[Item], k: int) -> np.ndarray:
    """Boolean hit vector of the first k ranked items."""
    if k <= 0:
        raise ValueError("k must be positive")
    return np.array([item in relevant for item in list(ranked)[:k]], dtype=bool)


def precision_at_k(ranked: Sequence[Item], relevant: Collection[Item], k: int) -> float:
    """Share of the k slots filled by relevant items (a short list still divides by k)."""
    return float(_hits(ranked, relevant, k).sum()) / k


def recall_at_k(ranked: Sequence[Item], relevant: Collection[Item], k: int) -> float:
    """Share of the relevant items found in the first k positions."""
    if not relevant:
        return 0.0
    return float(_hits(ranked, relevant, k).sum()) / len(relevant)


def _discounts(k: int) -> np.ndarray:
    """DCG position discounts 1/log2(rank + 1) for ranks 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_at_k(ranked: Sequence[Item], relevant: Collection[Item], k: int) -> float:
    """NDCG@k with binary gains; the ideal DCG puts min(k, |relevant|) hits on top."""
    if not relevant:
        return 0.0
    hits = _hits(ranked, relevant, k)
    dcg = float((hits * _discounts(k)[: hits.size]).sum())
    ideal = float(_discounts(k)[: min(k, len(relevant))].sum())
    return dcg / ideal


def average_precision_at_k(ranked: Sequence[Item], relevant: Collection[Item], k: int) -> float:
    """AP@k: mean precision at each hit, normalised by min(k, |relevant|)."""
    if not relevant:
        return 0.0
    hits = _hits(ranked, relevant, k)
    precisions = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float((precisions * hits).sum()) / min(k, len(relevant))


def hit_rate_at_k(ranked: Sequence[Item], relevant: Collection[Item], k: int) -> float:
    """1.0 when at least one relevant item is in the first k, else 0.0."""
    return float(_hits(ranked, relevant, k).any())


def catalog_coverage(lists: Sequence[Sequence[Item]], catalog_size: int) -> float:
    """Share of the catalog that appears in at least one recommended list."""
    if catalog_size <= 0:
        return 0.0
    seen = {item for items in lists for item in items}
    return len(seen) / catalog_size


def novelty(lists: Sequence[Sequence[Item]], popularity: dict[Item, float]) -> float:
    """Mean self-information -log2 p(item) of recommended items; p = share of users."""
    values = [-np.log2(max(popularity.get(item, 0.0), 1e-12)) for items in lists for item in items]
    return float(np.mean(values)) if values else 0.0


def hit_matrix(top: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """Boolean (n_users, k) matrix: is top[u, j] one of user u's relevant item indices."""
    hits = np.zeros(top.shape, dtype=bool)
    for row, items in enumerate(relevant):
        hits[row] = np.isin(top[row], items)
    return hits


def metrics_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, float]:
    """Mean precision, recall, NDCG, MAP and hit rate at k from a hit matrix (≥ k columns)."""
    if k <= 0:
        raise ValueError("k must be positive")
    if hits.shape[0] == 0:
        return {name: 0.0 for name in ("precision", "recall", "ndcg", "map", "hit_rate")}
    h = hits[:, :k].astype(np.float64)
    n_rel = np.maximum(n_relevant.astype(np.float64), 1.0)
    count = h.sum(axis=1)
    capped = np.minimum(n_rel, k)
    disc = _discounts(k)[: h.shape[1]]
    ideal = np.cumsum(_discounts(k))[capped.astype(np.int64) - 1]
    precisions = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    return {
        "precision": float((count / k).mean()),
        "recall": float((count / n_rel).mean()),
        "ndcg": float(((h * disc).sum(axis=1) / ideal).mean()),
        "map": float(((precisions * h).sum(axis=1) / capped).mean()),
        "hit_rate": float((count > 0).mean()),
    }


def coverage_of(top: np.ndarray, catalog_size: int) -> float:
    """Catalog coverage of an (n_users, k) index matrix (negative indices are padding)."""
    items = np.unique(top[top >= 0])
    return float(items.size) / catalog_size if catalog_size else 0.0


def novelty_of(top: np.ndarray, item_popularity: np.ndarray) -> float:
    """Mean -log2 popularity of recommended item indices; popularity as a share of users."""
    items = top[top >= 0]
    if items.size == 0:
        return 0.0
    p = np.maximum(item_popularity[items], 1e-12)
    return float((-np.log2(p)).mean())
