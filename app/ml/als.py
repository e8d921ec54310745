"""Implicit-feedback ALS: interaction matrices, training, fold-in, save and load."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from app.ml.signals import decay, event_weight

__all__ = ["DEFAULT_EVENT_WEIGHTS", "ALSModel", "Interactions", "build_interactions", "event_weight", "fold_in_vector"]

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "like": 4.0,
    "share": 4.0,
    "bookmark": 3.0,
    "add_to_cart": 6.0,
    "purchase": 10.0,
    "rate": 1.0,
    "dislike": -4.0,
}
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Interactions:
    """A users x items matrix of positive confidences with the ids of its rows and columns."""

    matrix: sp.csr_matrix
    user_ids: list[str]
    item_ids: list[str]

    def user_index(self) -> dict[str, int]:
        """Row number of each user id."""
        return {user: row for row, user in enumerate(self.user_ids)}

    def item_index(self) -> dict[str, int]:
        """Column number of each item id."""
        return {item: col for col, item in enumerate(self.item_ids)}


def build_interactions(
    user_ids: Sequence[str] | np.ndarray,
    item_ids: Sequence[str] | np.ndarray,
    weights: np.ndarray,
    timestamps: np.ndarray | None = None,
    *,
    half_life_days: float | None = None,
    now: float | None = None,
    item_universe: Sequence[str] | None = None,
) -> Interactions:
    """Sum time-decayed event weights per (user, item); keep only positive totals.

    Rows are every user seen in the events and columns every item seen or listed in
    item_universe, both sorted by id. ``now`` defaults to the newest timestamp, so the
    same events always give the same matrix.
    """
    users = np.asarray(user_ids, dtype=object)
    items = np.asarray(item_ids, dtype=object)
    values = np.asarray(weights, dtype=np.float64)
    n = values.shape[0]
    if values.ndim != 1 or users.shape != (n,) or items.shape != (n,):
        raise ValueError(
            f"user_ids, item_ids and weights must be 1-d of one length, "
            f"got {users.shape}, {items.shape}, {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError("weights must be finite")
    if half_life_days is not None:
        if timestamps is None or now is None:
            raise ValueError("half_life_days needs timestamps and now")
        stamps = np.asarray(timestamps, dtype=np.float64)
        if stamps.shape != (n,):
            raise ValueError(f"timestamps has shape {stamps.shape}, expected ({n},)")
        values = values * decay(stamps, now, half_life_days)
    user_list = sorted({str(u) for u in users})
    item_list = sorted({str(i) for i in items} | {str(i) for i in item_universe or ()})
    rows = _codes(users, user_list)
    cols = _codes(items, item_list)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(user_list), len(item_list)), dtype=np.float64)
    matrix.sum_duplicates()
    matrix = matrix.astype(np.float32)
    matrix.data[matrix.data <= 0] = 0.0
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return Interactions(matrix=matrix, user_ids=user_list, item_ids=item_list)


def _codes(ids: np.ndarray, ordered: list[str]) -> np.ndarray:
    """Position of each id in the sorted list of distinct ids."""
    lookup = {value: code for code, value in enumerate(ordered)}
    return np.fromiter((lookup[str(v)] for v in ids), dtype=np.int64, count=ids.shape[0])


def fold_in_vector(
    item_factors: np.ndarray,
    yty: np.ndarray,
    item_indices: np.ndarray,
    confidences: np.ndarray,
    *,
    alpha: float,
    regularization: float,
) -> np.ndarray:
    """A user vector from that user's interactions against fixed item factors.

    Solves (YtY + reg*I + Yu' diag(alpha*c) Yu) x = Yu' (1 + alpha*c), the
    Hu-Koren-Volinsky least squares with confidence 1 + alpha*c that
    ALSModel.fit trains with. Repeated items are summed; entries with c <= 0 are
    ignored; no positive interaction gives the zero vector.
    """
    idx, conf = _positive_totals(item_factors.shape[0], item_indices, confidences)
    factors = item_factors.shape[1]
    if idx.size == 0:
        return np.zeros(factors, dtype=np.float32)
    y = item_factors[idx].astype(np.float64)
    a = np.asarray(yty, dtype=np.float64) + regularization * np.eye(factors)
    a += (y.T * (alpha * conf)) @ y
    b = y.T @ (1.0 + alpha * conf)
    try:
        solution = np.linalg.solve(a, b)
    except np.linalg.LinAlgError:  # singular only when regularization is 0
        solution = np.linalg.lstsq(a, b, rcond=None)[0]
    return solution.astype(np.float32)


def _positive_totals(n_items: int, item_indices: np.ndarray, confidences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct item indices with their summed confidences, positives only."""
    idx = np.asarray(item_indices, dtype=np.int64).ravel()
    conf = np.asarray(confidences, dtype=np.float64).ravel()
    if idx.shape != conf.shape:
        raise ValueError(f"{idx.size} item indices but {conf.size} confidences")
    if idx.size and (idx.min() < 0 or idx.max() >= n_items):
        raise IndexError(f"item index out of range for {n_items} items")
    if not np.isfinite(conf).all():
        raise ValueError("confidences must be finite")
    unique, inverse = np.unique(idx, return_inverse=True)
    totals = np.bincount(inverse, weights=conf, minlength=unique.size)
    keep = totals > 0
    return unique[keep], totals[keep]


def top_n(scores: np.ndarray, n: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the n best scores, best first, ties by lower index."""
    scores = np.asarray(scores, dtype=np.float32).copy()
    allowed = np.ones(scores.shape[0], dtype=bool)
    if exclude is not None and exclude.size:
        allowed[exclude] = False
    candidates = np.flatnonzero(allowed)
    if 0 < n < candidates.size:  # cut to the n best (and ties) before the full sort
        negated = -scores[candidates]
        candidates = candidates[negated <= np.partition(negated, n - 1)[n - 1]]
    order = np.lexsort((candidates, -scores[candidates]))[: max(n, 0)]
    best = candidates[order]
    return best.astype(np.int64), scores[best]


class ALSModel:
    """Implicit ALS (implicit.cpu.als) with fold-in for users unseen at training time."""

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        random_state: int = 42,
        num_threads: int = 0,
    ) -> None:
        """Set the hyper-parameters; num_threads 0 means all cores."""
        if factors < 1 or iterations < 1 or num_threads < 0:
            raise ValueError("factors and iterations must be >= 1 and num_threads >= 0")
        if regularization < 0 or alpha <= 0:
            raise ValueError("regularization must be >= 0 and alpha > 0")
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self.user_factors = np.zeros((0, factors), dtype=np.float32)
        self.item_factors = np.zeros((0, factors), dtype=np.float32)
        self.user_ids: list[str] = []
        self.item_ids: list[str] = []
        self._seen = sp.csr_matrix((0, 0), dtype=np.float32)
        self._yty: np.ndarray | None = None

    @property
    def params(self) -> dict[str, float | int]:
        """The hyper-parameters, as saved with the model."""
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "random_state": self.random_state,
        }

    @property
    def yty(self) -> np.ndarray:
        """Gram matrix of the item factors, cached for fold-in."""
        if self._yty is None:
            y = self.item_factors.astype(np.float64)
            self._yty = y.T @ y
        return self._yty

    def fit(self, interactions: Interactions, show_progress: bool = False) -> ALSModel:
        """Train on the interactions with confidence 1 + alpha * c for every stored c."""
        from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped,unused-ignore]
        from threadpoolctl import threadpool_limits

        matrix = sp.csr_matrix(interactions.matrix, dtype=np.float32)
        confidence = matrix.copy()
        confidence.data = 1.0 + self.alpha * confidence.data
        # implicit parallelises over users itself; a threaded BLAS underneath only slows it.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,  # confidence is already 1 + alpha * c
                iterations=self.iterations,
                num_threads=self.num_threads,
                random_state=self.random_state,
            )
            model.fit(confidence, show_progress=show_progress)
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.user_ids = list(interactions.user_ids)
        self.item_ids = list(interactions.item_ids)
        self._seen = matrix
        self._yty = None
        return self

    def recommend(self, user_index: int, n: int = 10, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-n item indices and scores for a trained user."""
        if not 0 <= user_index < self.user_factors.shape[0]:
            raise IndexError(f"user index {user_index} out of range")
        seen = self.seen_items(user_index) if exclude_seen else None
        return self.recommend_vector(self.user_factors[user_index], n, exclude=seen)

    def recommend_vector(
        self, user_vector: np.ndarray, n: int = 10, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-n item indices and scores for a user vector (e.g. from fold_in)."""
        return top_n(self.item_factors @ np.asarray(user_vector, dtype=np.float32), n, exclude)

    def seen_items(self, user_index: int) -> np.ndarray:
        """Item indices the user interacted with in the training data."""
        start, end = self._seen.indptr[user_index], self._seen.indptr[user_index + 1]
        return np.asarray(self._seen.indices[start:end], dtype=np.int64)

    def similar_items(self, item_index: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The n items with the highest cosine similarity of factors, the item itself excluded."""
        if not 0 <= item_index < self.item_factors.shape[0]:
            raise IndexError(f"item index {item_index} out of range")
        norms = np.linalg.norm(self.item_factors, axis=1)
        norms[norms == 0] = 1.0
        unit = self.item_factors / norms[:, None]
        return top_n(unit @ unit[item_index], n, exclude=np.array([item_index]))

    def fold_in(self, item_indices: np.ndarray, confidences: np.ndarray) -> np.ndarray:
        """A user vector for these interactions, against the trained item factors."""
        return fold_in_vector(
            self.item_factors,
            self.yty,
            item_indices,
            confidences,
            alpha=self.alpha,
            regularization=self.regularization,
        )

    def save(self, path: Path) -> None:
        """Write factors, ids, training matrix and params to path with np.savez (atomic)."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "format_version": np.array(_FORMAT_VERSION),
            "user_factors": self.user_factors,
            "item_factors": self.item_factors,
            "user_ids": np.array(self.user_ids, dtype=np.str_),
            "item_ids": np.array(self.item_ids, dtype=np.str_),
            "seen_indptr": self._seen.indptr,
            "seen_indices": self._seen.indices,
            "seen_data": self._seen.data,
            "seen_shape": np.array(self._seen.shape, dtype=np.int64),
        }
        arrays.update({f"param_{k}": np.array(v) for k, v in self.params.items()})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> ALSModel:
        """Read a model written by save (no pickle)."""
        with np.load(Path(path), allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != _FORMAT_VERSION:
                raise ValueError(f"{path}: unsupported model format {version}")
            model = cls(
                factors=int(data["param_factors"]),
                regularization=float(data["param_regularization"]),
                alpha=float(data["param_alpha"]),
                iterations=int(data["param_iterations"]),
                random_state=int(data["param_random_state"]),
            )
            model.user_factors = data["user_factors"].astype(np.float32)
            model.item_factors = data["item_factors"].astype(np.float32)
            model.user_ids = [str(u) for u in data["user_ids"]]
            model.item_ids = [str(i) for i in data["item_ids"]]
            shape = tuple(int(x) for x in data["seen_shape"])
            model._seen = sp.csr_matrix((data["seen_data"], data["seen_indices"], data["seen_indptr"]), shape=shape)
        return model
