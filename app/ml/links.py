"""The neighbour tables built at training: every item-to-item source precomputed, top-N per item.

Training writes them all into `item_links` (one `source` per table, per model version); serving
reads every source's links of the user's items in one aggregate query
(`RetrievalRepository.candidates`); the batch evaluation computes the same tables with these
same functions. Content created after training gets its embedding neighbours at upsert.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from app.ml.baselines import EASE
from app.ml.batch import History, item_links, top_k_masked, unit_rows
from app.ml.serving import LinkParams
from app.ml.sources import Source

EASE_MAX_CELLS = 20_000_000  # users x items of the dense matrix EASE works on
EASE_MAX_SIDE = 12_000  # the smaller side is inverted
COSINE_MAX_ITEMS = 200_000  # beyond this the dense per-chunk similarity blocks get too large
SEQUENCE_WINDOW = 3  # an item links to the next few items after it, the next one weighing most
LinkRow = tuple[str, str, str, float]  # (source, item, neighbour, weight)


def co_engagement(matrix: sp.csr_matrix, params: LinkParams) -> tuple[sp.csr_matrix | None, str]:
    """Sparsified EASE weights where the configuration asks for them and EASE fits in memory,
    else cosine co-occurrence links; none past COSINE_MAX_ITEMS."""
    n_users, n_items = matrix.shape
    ease_fits = n_users * n_items <= EASE_MAX_CELLS and min(n_users, n_items) <= EASE_MAX_SIDE
    if params.kind == "ease" and ease_fits:
        model = EASE(params.regularization)
        model.fit(matrix)
        return model.item_links(params.neighbors), "ease"
    if n_items <= COSINE_MAX_ITEMS:
        coo = matrix.tocoo()
        zeros = np.zeros(coo.nnz, dtype=np.int64)
        history = History(n_users, n_items, coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data, zeros)
        chunk = max(16, min(1024, 50_000_000 // max(n_items, 1)))
        return item_links(history, params.cosine_neighbors, chunk=chunk), "cosine"
    return None, "none"


def cosine_neighbors(vectors: np.ndarray, top_n: int, chunk: int = 1024) -> sp.csr_matrix:
    """Each row's top_n most cosine-similar other rows (positive similarities; zero rows link nowhere)."""
    n = vectors.shape[0]
    if n == 0 or n > COSINE_MAX_ITEMS:
        return sp.csr_matrix((n, n), dtype=np.float64)
    unit = unit_rows(np.asarray(vectors, dtype=np.float32))
    rows, cols, vals = [], [], []
    for start in range(0, n, chunk):
        block = (unit[start : start + chunk] @ unit.T).astype(np.float64)
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = -np.inf
        idx, val = top_k_masked(block, sp.csr_matrix(block.shape), top_n)
        keep = (idx >= 0) & (val > 0)
        rows.append(np.nonzero(keep)[0] + start)
        cols.append(idx[keep])
        vals.append(val[keep])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def sequential(history: History, top_n: int, window: int = SEQUENCE_WINDOW) -> sp.csr_matrix:
    """P(next | item) from every user's time-ordered positive events: item -> the items after it.

    Within each user's sequence (time, then item index; repeats of one item collapsed) each item
    links to the `window` items that follow it, the d-th one with weight 1/d; a row is normalised
    to sum to 1 and cut to its top_n.
    """
    keep = history.weights > 0
    users, items, stamps = history.users[keep], history.items[keep], history.timestamps[keep]
    order = np.lexsort((items, stamps, users))
    users, items = users[order], items[order]
    fresh = np.ones(items.size, dtype=bool)
    fresh[1:] = (items[1:] != items[:-1]) | (users[1:] != users[:-1])
    users, items = users[fresh], items[fresh]
    src, dst, w = [], [], []
    for d in range(1, window + 1):
        same = users[d:] == users[:-d]
        src.append(items[:-d][same])
        dst.append(items[d:][same])
        w.append(np.full(int(same.sum()), 1.0 / d))
    n = history.n_items
    counts = sp.csr_matrix((np.concatenate(w), (np.concatenate(src), np.concatenate(dst))), shape=(n, n))
    counts.sum_duplicates()
    counts.setdiag(0)
    counts.eliminate_zeros()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    probs = sp.csr_matrix(sp.diags(1.0 / np.where(totals > 0, totals, 1.0)) @ counts)
    return top_n_per_row(probs, top_n)


def top_n_per_row(matrix: sp.csr_matrix, top_n: int) -> sp.csr_matrix:
    """The matrix with each row cut to its top_n positive entries (ties by column)."""
    rows, cols, vals = [], [], []
    for r in range(matrix.shape[0]):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        idx, data = matrix.indices[start:end], matrix.data[start:end]
        best = np.lexsort((idx, -data))[:top_n]
        best = best[data[best] > 0]
        rows.append(np.full(best.size, r))
        cols.append(idx[best])
        vals.append(data[best])
    if not rows:
        return sp.csr_matrix(matrix.shape)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape)


def to_rows(source: Source, links: sp.csr_matrix | None, ids: Sequence[str]) -> list[LinkRow]:
    """(source, item, neighbour, weight) rows of one table whose rows and columns are `ids`."""
    if links is None:
        return []
    coo = links.tocoo()
    return [
        (source.value, ids[r], ids[c], float(v)) for r, c, v in zip(coo.row, coo.col, coo.data, strict=True) if v > 0
    ]


def from_rows(rows: Sequence[tuple[str, str, float]], index: dict[str, int]) -> sp.csr_matrix:
    """A table from (item, neighbour, weight) rows, in the index space `index` (unknown ids dropped)."""
    kept = [(index[a], index[b], w) for a, b, w in rows if a in index and b in index]
    n = len(index)
    if not kept:
        return sp.csr_matrix((n, n))
    r, c, w = zip(*kept, strict=True)
    return sp.csr_matrix((np.array(w, dtype=np.float64), (np.array(r), np.array(c))), shape=(n, n))
