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


def user_rows(history: History) -> list[np.ndarray]:
    """Each user's interaction rows, newest first (ties: higher item index first, as SQL's content_id DESC)."""
    order = np.lexsort((-history.items, -history.timestamps, history.users))
    bounds = np.searchsorted(history.users[order], np.arange(history.n_users + 1))
    return [order[bounds[u] : bounds[u + 1]] for u in range(history.n_users)]


def strongest_items(history: History, *, now: float, half_life_days: float | None, n: int) -> sp.csr_matrix:
    """Users x items matrix of each user's `signals.strongest` items and their decayed totals."""
    rows, cols, vals = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for u, sel in enumerate(user_rows(history)):
        names, totals = signals.strongest(
            history.items[sel],
            history.weights[sel],
            history.timestamps[sel],
            now=now,
            half_life_days=half_life_days,
            n=n,
        )
        rows.append(np.full(names.size, u, dtype=np.int64))
        cols.append(names.astype(np.int64))
        vals.append(totals)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(history.n_users, history.n_items)
    )


def profiles(item_vectors: np.ndarray, history: History, *, now: float, config: ServingConfig) -> np.ndarray:
    """Every user's content profile (`signals.profile` over the user's strongest items)."""
    top = strongest_items(history, now=now, half_life_days=config.half_life_days, n=config.link_items)
    out = np.zeros((history.n_users, item_vectors.shape[1]), dtype=np.float32)
    for u in range(history.n_users):
        row = top.getrow(u)
        if row.nnz:
            out[u] = signals.profile(item_vectors[row.indices], row.data)
    return out


def content(
    item_vectors: np.ndarray, history: History, k: int, *, now: float, config: ServingConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Content source: items by cosine similarity to the user's profile vector."""
    prof = profiles(item_vectors, history, now=now, config=config)
    return chunked_top_k(lambda users: prof[users] @ item_vectors.T, history.seen(), k)


def anchor_items(history: History, n: int) -> list[np.ndarray]:
    """Each user's `signals.anchors`: the n latest distinct items with a positive event."""
    return [
        np.array(signals.anchors(history.items[sel], history.weights[sel], n), dtype=np.int64)
        for sel in user_rows(history)
    ]


def neighbors(
    item_vectors: np.ndarray, history: History, k: int, *, recent: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbours of each user's `recent` latest items by cosine; best anchor kept per item.

    Returns (indices, scores, anchor indices). Used with content embeddings
    (item_neighbors) and with ALS item factors (factor_neighbors).
    """
    unit = unit_rows(item_vectors)
    anchors_of = anchor_items(history, recent)
    seen = history.seen()
    idx = np.full((history.n_users, k), -1, dtype=np.int64)
    val = np.full((history.n_users, k), -np.inf)
    anc = np.full((history.n_users, k), -1, dtype=np.int64)
    for u, anchors in enumerate(anchors_of):
        if anchors.size == 0:
            continue
        sims = unit[anchors] @ unit.T
        best = sims.argmax(axis=0)
        i_u, v_u = top_k_masked(sims.max(axis=0)[None, :], seen[u], k)
        idx[u], val[u] = i_u[0], v_u[0]
        anc[u] = np.where(i_u[0] >= 0, anchors[best[i_u[0]]], -1)
    return idx, val, anc


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


def co_occurrence(
    links: sp.csr_matrix, history: History, k: int, *, now: float, config: ServingConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Co-occurrence source: Σ over the user's strongest items of total x link score; anchor = top contributor.

    Only each user's `link_items` strongest items take part, as in serving, where the sum is one
    SQL GROUP BY whose cost grows with the items it starts from.
    """
    user_items = strongest_items(history, now=now, half_life_days=config.half_life_days, n=config.link_items)
    idx, val = chunked_top_k(lambda users: np.asarray((user_items[users] @ links).todense()), history.seen(), k)
    idx[val <= 0] = -1
    anc = np.full(idx.shape, -1, dtype=np.int64)
    for u in range(history.n_users):
        own = user_items[u]
        ok = idx[u] >= 0
        if own.nnz and ok.any():
            parts = np.asarray(links[own.indices][:, idx[u][ok]].todense()) * own.data[:, None]
            anc[u][ok] = own.indices[parts.argmax(axis=0)]
    return idx, np.where(val > 0, val, -np.inf), anc


def popular(history: History, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Popular source: items by number of distinct users who interacted (`signals.popularity`)."""
    seen = history.seen()
    counts = signals.popularity(history.users, history.items, history.n_items)
    return chunked_top_k(lambda users: np.tile(counts, (users.size, 1)), seen, k)


def trending(history: History, k: int, *, window_days: float, now: float) -> tuple[np.ndarray, np.ndarray]:
    """Trending source: distinct users per item in the window before now (`signals.popularity`)."""
    recent = history.timestamps >= now - window_days * SECONDS_PER_DAY
    counts = signals.popularity(history.users[recent], history.items[recent], history.n_items)
    idx, val = chunked_top_k(lambda users: np.tile(counts, (users.size, 1)), history.seen(), k)
    idx[val <= 0] = -1
    return idx, np.where(val > 0, val, -np.inf)


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
