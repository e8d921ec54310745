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
from app.ml.serving import LinkParams

EASE_MAX_CELLS = 20_000_000  # users x items of the dense matrix EASE works on
EASE_MAX_SIDE = 12_000  # the smaller side is inverted
COSINE_MAX_ITEMS = 200_000  # beyond this the dense per-chunk similarity blocks get too large


def link_matrix(matrix: sp.csr_matrix, params: LinkParams) -> tuple[sp.csr_matrix | None, str]:
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


def link_rows(inter: Interactions, params: LinkParams) -> tuple[list[tuple[str, str, float]], str]:
    """(item, neighbour, weight) rows for the interactions' catalog, and which kind of links."""
    links, kind = link_matrix(inter.matrix, params)
    if links is None:
        return [], kind
    coo = links.tocoo()
    ids = inter.item_ids
    rows = [(ids[r], ids[c], float(v)) for r, c, v in zip(coo.row, coo.col, coo.data, strict=True) if v > 0]
    return rows, kind
