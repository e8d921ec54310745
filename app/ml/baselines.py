"""Baseline recommenders for the offline comparison: EASE, implicit's ALS, BPR and ItemKNN.

Every baseline fits on a users x items CSR matrix (binary: every interaction is a
positive) and recommends each user's top-n unseen items as an (n_users, n) index matrix
padded with -1, the same shape `app.ml.batch` produces.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from app.ml.batch import chunked_top_k, top_k_masked


def _threads() -> int:
    """Worker threads for implicit: the machine's cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


class Baseline(Protocol):
    """What the evaluation needs from a model: fit on interactions, recommend top-n."""

    def fit(self, matrix: sp.csr_matrix) -> None:
        """Learn from a users x items matrix."""

    def recommend(self, matrix: sp.csr_matrix, n: int) -> np.ndarray:
        """Top-n unseen item indices for every row of `matrix`."""


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The matrix with every stored entry set to 1 (float32)."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data[:] = 1.0
    out.eliminate_zeros()
    return out


class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019): B = I - P / diag(P), P = (XᵀX + λI)⁻¹."""

    def __init__(self, regularization: float = 200.0) -> None:
        """λ is the L2 regularization of the item-item weights."""
        self.regularization = regularization
        self._x: np.ndarray | None = None
        self._xp: np.ndarray | None = None
        self._diag: np.ndarray | None = None
        self._inner: np.ndarray | None = None
        self._p: np.ndarray | None = None

    def fit(self, matrix: sp.csr_matrix) -> None:
        """Closed form; through the users' Gram matrix (Woodbury) when users < items."""
        x = binary(matrix).toarray().astype(np.float64)
        lam = self.regularization
        n_users, n_items = x.shape
        if n_users < n_items:
            inner = np.linalg.inv(lam * np.eye(n_users) + x @ x.T)
            self._inner, self._p = inner, None
            # P = (I - Xᵀ M X) / λ, so XP and diag(P) never need the items x items matrix.
            mx = inner @ x
            self._diag = (1.0 - np.einsum("ui,ui->i", x, mx)) / lam
            self._xp = (x - (x @ x.T) @ mx) / lam
        else:
            p = np.linalg.inv(x.T @ x + lam * np.eye(n_items))
            self._inner, self._p = None, p
            self._diag = np.diag(p).copy()
            self._xp = x @ p
        self._x = x

    def item_links(self, top_n: int, chunk: int = 1024) -> sp.csr_matrix:
        """Each item's top_n positive weights of B as a sparse items x items table (for serving)."""
        if self._x is None or self._diag is None:
            raise RuntimeError("EASE is not fitted")
        x, lam, n_items = self._x, self.regularization, self._x.shape[1]
        inner = self._inner
        rows, cols, vals = [], [], []
        for start in range(0, n_items, chunk):
            stop = min(start + chunk, n_items)
            if inner is not None:
                p = -(x[:, start:stop].T @ (inner @ x)) / lam
                p[np.arange(stop - start), np.arange(start, stop)] += 1.0 / lam
            elif self._p is not None:
                p = self._p[start:stop]
            else:
                raise RuntimeError("EASE is not fitted")
            b = -p / self._diag
            b[np.arange(stop - start), np.arange(start, stop)] = 0.0
            idx, val = top_k_masked(b, sp.csr_matrix(b.shape), top_n)
            keep = (idx >= 0) & (val > 0)
            rows.append(np.nonzero(keep)[0] + start)
            cols.append(idx[keep])
            vals.append(val[keep])
        data = (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols)))
        return sp.csr_matrix(data, shape=(n_items, n_items))

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Dense scores X B for the training rows `users`."""
        if self._x is None or self._xp is None or self._diag is None:
            raise RuntimeError("EASE is not fitted")
        return np.asarray(self._x[users] - self._xp[users] / self._diag)

    def recommend(self, matrix: sp.csr_matrix, n: int) -> np.ndarray:
        """Top-n unseen items for every training user (rows of the fitted matrix)."""
        return chunked_top_k(self.scores, binary(matrix), n)[0]


class ImplicitModel:
    """Adapter over an `implicit` recommender (ALS, BPR, CosineRecommender)."""

    def __init__(self, kind: str, **params: Any) -> None:
        """kind: "als", "bpr" or "itemknn"; params go to the implicit constructor."""
        self.kind = kind
        self.params = params
        self.model: Any = None

    def _build(self) -> Any:
        """A fresh implicit model."""
        if self.kind == "als":
            from implicit.cpu.als import AlternatingLeastSquares

            return AlternatingLeastSquares(num_threads=_threads(), **self.params)
        if self.kind == "bpr":
            from implicit.cpu.bpr import BayesianPersonalizedRanking

            return BayesianPersonalizedRanking(num_threads=_threads(), **self.params)
        if self.kind == "itemknn":
            from implicit.nearest_neighbours import CosineRecommender

            return CosineRecommender(num_threads=_threads(), **self.params)
        raise ValueError(f"unknown implicit model {self.kind!r}")

    def fit(self, matrix: sp.csr_matrix) -> None:
        """Fit on the binary matrix."""
        from threadpoolctl import threadpool_limits

        # implicit parallelises itself (a threaded BLAS underneath only slows it), and its
        # CosineRecommender converts an internal COO to CSR with a ParameterWarning.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            warnings.filterwarnings("ignore", message="OpenBLAS is configured")
            self.model = self._build()
            self.model.fit(binary(matrix), show_progress=False)

    def recommend(self, matrix: sp.csr_matrix, n: int) -> np.ndarray:
        """Top-n unseen items per row, through implicit's own recommend."""
        seen = binary(matrix)
        if self.kind in ("als", "bpr"):
            users = np.asarray(self.model.user_factors)
            items = np.asarray(self.model.item_factors)
            return chunked_top_k(lambda rows: users[rows] @ items.T, seen, n)[0]
        ids, scores = self.model.recommend(np.arange(seen.shape[0]), seen, N=n, filter_already_liked_items=True)
        ids = np.asarray(ids, dtype=np.int64)
        ids[~np.isfinite(np.asarray(scores)) | (np.asarray(scores) <= 0)] = -1
        return ids
