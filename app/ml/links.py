"""The item-to-item link table behind the co_occurrence source, computed at training time.

Serving sums, over the user's items, event weight x link weight in one SQL GROUP BY
(`RetrievalRepository.co_occurrence`); the offline evaluation does the same sum in batch
(`app.ml.batch.co_occurrence`) over links built by the same functions.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from app.ml.als import Interactions
from app.ml.baselines import EASE
from app.ml.batch import History, item_links

EASE_REGULARIZATION = 200.0
EASE_NEIGHBORS = 200
COSINE_NEIGHBORS = 50
EASE_MAX_CELLS = 20_000_000  # users x items of the dense matrix EASE works on
EASE_MAX_SIDE = 12_000  # the smaller side is inverted
COSINE_MAX_ITEMS = 200_000  # beyond this the dense per-chunk similarity blocks get too large


def link_matrix(matrix: sp.csr_matrix, kind: str = "ease") -> tuple[sp.csr_matrix | None, str]:
    """Sparsified EASE weights (the evaluation's choice on validation) where EASE fits in memory,
    else cosine co-occurrence links; none past COSINE_MAX_ITEMS."""
    n_users, n_items = matrix.shape
    ease_fits = n_users * n_items <= EASE_MAX_CELLS and min(n_users, n_items) <= EASE_MAX_SIDE
    if kind == "ease" and ease_fits:
        model = EASE(EASE_REGULARIZATION)
        model.fit(matrix)
        return model.item_links(EASE_NEIGHBORS), "ease"
    if n_items <= COSINE_MAX_ITEMS:
        coo = matrix.tocoo()
        zeros = np.zeros(coo.nnz, dtype=np.int64)
        history = History(n_users, n_items, coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data, zeros)
        chunk = max(16, min(1024, 50_000_000 // max(n_items, 1)))
        return item_links(history, COSINE_NEIGHBORS, chunk=chunk), "cosine"
    return None, "none"


def link_rows(inter: Interactions) -> tuple[list[tuple[str, str, float]], str]:
    """(item, neighbour, weight) rows for the interactions' catalog, and which kind of links."""
    links, kind = link_matrix(inter.matrix)
    if links is None:
        return [], kind
    coo = links.tocoo()
    ids = inter.item_ids
    rows = [(ids[r], ids[c], float(v)) for r, c, v in zip(coo.row, coo.col, coo.data, strict=True) if v > 0]
    return rows, kind
