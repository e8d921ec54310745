"""Candidate sources computed in batch with numpy: the offline twin of the SQL retrieval.

Each function here is the definition of one source of `app.ml.hybrid.SOURCES`, computed
exactly over the full catalog for many users at once. The service computes the same
lists with pgvector queries (same vectors, same similarity, same "not already consumed"
filter); evaluation feeds these to the same `blend`. All return `(indices, scores)`
matrices of shape (n_users, k), best first, padded with index -1 and score -inf.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from app.ml import signals
from app.ml.hybrid import Candidate
from app.ml.sources import Source

if TYPE_CHECKING:
    from app.ml.serving import ServingConfig

SECONDS_PER_DAY = signals.SECONDS_PER_DAY
CHUNK = 512


@dataclass(frozen=True)
class History:
    """Training interactions in index space: who, what, how much, when."""

    n_users: int
    n_items: int
    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray
    user_ids: np.ndarray | None = None  # the id of every user index, where known

    def seen(self) -> sp.csr_matrix:
        """Binary users x items matrix of what each user has already interacted with."""
        ones = np.ones(self.users.size, dtype=np.float32)
        mat = sp.csr_matrix((ones, (self.users, self.items)), shape=(self.n_users, self.n_items))
        mat.data[:] = 1.0
        return mat


def top_k_masked(scores: np.ndarray, seen: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k columns per row after removing seen items (-1 / -inf padding)."""
    scores = np.array(scores, dtype=np.float64)
    rows, cols = seen.nonzero()
    scores[rows, cols] = -np.inf
    k_eff = min(k, scores.shape[1])
    part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    val = np.take_along_axis(part_scores, order, axis=1)
    idx[~np.isfinite(val)] = -1
    return _pad(idx, val, k)


def _pad(idx: np.ndarray, val: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad to k columns with -1 / -inf."""
    if idx.shape[1] >= k:
        return idx, val
    extra = k - idx.shape[1]
    return (
        np.hstack([idx, np.full((idx.shape[0], extra), -1, dtype=idx.dtype)]),
        np.hstack([val, np.full((val.shape[0], extra), -np.inf)]),
    )


def chunked_top_k(
    score_rows: Callable[[np.ndarray], np.ndarray], seen: sp.csr_matrix, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Run a dense scorer over users in chunks and keep each user's top k unseen items."""
    parts = [
        top_k_masked(score_rows(users), seen[users], k)
        for users in np.array_split(np.arange(seen.shape[0]), max(1, -(-seen.shape[0] // CHUNK)))
        if users.size
    ]
    return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def collaborative(
    user_factors: np.ndarray, item_factors: np.ndarray, history: History, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Collaborative source: items by inner product with the user's ALS vector."""
    return chunked_top_k(lambda users: user_factors[users] @ item_factors.T, history.seen(), k)


def user_rows(history: History, limit: int | None = None) -> list[np.ndarray]:
    """Each user's latest `limit` interaction rows, newest first (ties: higher item index first, as
    serving's `ORDER BY timestamp DESC, content_id DESC`)."""
    order = np.lexsort((-history.items, -history.timestamps, history.users))
    bounds = np.searchsorted(history.users[order], np.arange(history.n_users + 1))
    return [order[bounds[u] : bounds[u + 1]][:limit] for u in range(history.n_users)]


def user_history(history: History, rows: np.ndarray) -> signals.UserHistory:
    """One user's rows (newest first) as the serving side's `UserHistory`."""
    return signals.UserHistory(history.items[rows], history.weights[rows], history.timestamps[rows])


def seed_matrix(history: History, source: Source, config: ServingConfig, *, now: float) -> sp.csr_matrix:
    """Users x items matrix of every user's `signals.seeds` for a link source."""
    rows, cols, vals = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for u, sel in enumerate(user_rows(history, config.history_events)):
        items, weights = signals.seeds(source, user_history(history, sel), config, now=now)
        rows.append(np.full(items.size, u, dtype=np.int64))
        cols.append(items.astype(np.int64))
        vals.append(np.asarray(weights, dtype=np.float64))
    data = (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols)))
    return sp.csr_matrix(data, shape=(history.n_users, history.n_items))


def profiles(item_vectors: np.ndarray, history: History, *, now: float, config: ServingConfig) -> np.ndarray:
    """Every user's content profile (`signals.profile` of the user's strongest items)."""
    top = seed_matrix(history, Source.CO_OCCURRENCE, config, now=now)
    out = np.zeros((history.n_users, item_vectors.shape[1]), dtype=np.float32)
    for u in range(history.n_users):
        row = top.getrow(u)
        if row.nnz:
            out[u] = signals.profile(item_vectors[row.indices])
    return out


def linked(
    links: sp.csr_matrix, seeds: sp.csr_matrix, seen: sp.csr_matrix, k: int, *, combine: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A link source for every user: Σ (or max) over the user's seeds of seed weight x link weight.

    The batch twin of the serving aggregate over `item_links`; anchor = the seed contributing most.
    """
    n_users = seeds.shape[0]
    idx = np.full((n_users, k), -1, dtype=np.int64)
    val = np.full((n_users, k), -np.inf)
    anc = np.full((n_users, k), -1, dtype=np.int64)
    for u in range(n_users):
        own = seeds.getrow(u)
        if not own.nnz:
            continue
        parts = np.asarray(links[own.indices].todense()) * own.data[:, None]
        scores = parts.max(axis=0) if combine == "max" else parts.sum(axis=0)
        scores = np.where(scores > 0, scores, -np.inf)
        i_u, v_u = top_k_masked(scores[None, :], seen[u], k)
        idx[u], val[u] = i_u[0], v_u[0]
        anc[u] = np.where(i_u[0] >= 0, own.indices[parts.argmax(axis=0)[np.maximum(i_u[0], 0)]], -1)
    return idx, val, anc


def content(
    item_vectors: np.ndarray, history: History, k: int, *, now: float, config: ServingConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Content source: items by cosine similarity to the user's profile vector."""
    prof = profiles(item_vectors, history, now=now, config=config)
    return chunked_top_k(lambda users: prof[users] @ item_vectors.T, history.seen(), k)


def item_links(history: History, top_n: int, chunk: int = 1024) -> sp.csr_matrix:
    """Items x items table of each item's top_n co-occurrence neighbours by cosine.

    This is what training would store for serving (one row per item and neighbour), so
    the co_occurrence source is a GROUP BY over the user's items in SQL.
    """
    x = history.seen().tocsc().astype(np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    xn = sp.csr_matrix(x.multiply(1.0 / np.where(norms > 0, norms, 1.0)))
    xt = xn.T.tocsr()
    rows, cols, vals = [], [], []
    for start in range(0, history.n_items, chunk):
        block = np.asarray((xt[start : start + chunk] @ xn).todense())
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = 0.0
        idx, val = top_k_masked(block, sp.csr_matrix(block.shape), top_n)
        keep = (idx >= 0) & (val > 0)
        rows.append(np.nonzero(keep)[0] + start)
        cols.append(idx[keep])
        vals.append(val[keep])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(history.n_items,) * 2
    )


def same_list(counts: np.ndarray, seen: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One ranking for everyone (positive counts, ties by item as SQL's `ORDER BY score DESC, content_id`),
    each user's top k of it after their seen items."""
    order = np.lexsort((np.arange(counts.size), -counts))
    order = order[counts[order] > 0]
    idx = np.full((seen.shape[0], k), -1, dtype=np.int64)
    val = np.full((seen.shape[0], k), -np.inf)
    for u in range(seen.shape[0]):
        own = seen.indices[seen.indptr[u] : seen.indptr[u + 1]]
        top = order[~np.isin(order, own)][:k]
        idx[u, : top.size], val[u, : top.size] = top, counts[top]
    return idx, val


def popular(history: History, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Popular source: items by number of distinct users who interacted (`signals.popularity`)."""
    counts = signals.popularity(history.users, history.items, history.n_items)
    return same_list(counts, history.seen(), k)


def trending(history: History, k: int, *, window_days: float, now: float) -> tuple[np.ndarray, np.ndarray]:
    """Trending source: distinct users per item in the window before now (`signals.popularity`)."""
    recent = history.timestamps >= now - window_days * SECONDS_PER_DAY
    counts = signals.popularity(history.users[recent], history.items[recent], history.n_items)
    return same_list(counts, history.seen(), k)


def to_candidates(
    item_ids: np.ndarray, idx: np.ndarray, val: np.ndarray, anchors: np.ndarray | None = None
) -> list[list[Candidate]]:
    """Per-user Candidate lists from index/score matrices (padding dropped)."""
    out: list[list[Candidate]] = []
    for u in range(idx.shape[0]):
        keep = idx[u] >= 0
        ids = item_ids[idx[u][keep]]
        scores = val[u][keep]
        if anchors is None:
            out.append([Candidate(str(i), float(s)) for i, s in zip(ids, scores, strict=True)])
        else:
            anc = item_ids[anchors[u][keep]]
            out.append([Candidate(str(i), float(s), str(a)) for i, s, a in zip(ids, scores, anc, strict=True)])
    return out


def cached_embeddings(texts: list[str], cache_dir: Path, *, progress: bool = False) -> np.ndarray:
    """Embed texts with the service's embedder, cached on disk by a hash of all the texts."""
    from app.ml.embeddings import MODEL_NAME, get_embedder, text_hash

    key = text_hash(MODEL_NAME + "\n\x00".join(["", *texts]))[:32]
    path = Path(cache_dir) / f"embeddings-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            return np.asarray(stored["vectors"], dtype=np.float32)
    vectors = get_embedder().encode(texts, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, vectors=vectors)
    tmp.replace(path)
    return vectors
