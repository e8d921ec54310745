"""The evaluation protocol's data: interactions, the temporal split, the validation split, scoring.

Shared by the offline evaluation (`app.ml.evaluation`), model selection (`app.ml.tuning`)
and the training gate (`app.ml.gate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from app.ml import metrics
from app.ml.batch import History
from app.ml.signals import event_weights as weigh_events

MIN_INTERACTIONS_FOR_TEST = 2
SEED_EVENT_WEIGHTS: Mapping[str, float] = {"rate": 1.0}  # a file of ratings has one event type


@dataclass(frozen=True)
class EvalData:
    """Interactions to evaluate on and the text of every catalog item."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    event_types: np.ndarray | None
    item_texts: dict[str, str]
    type_weights: Mapping[str, float] | None = None  # the event_types table when the database is the source


@dataclass(frozen=True)
class Split:
    """Training history and, for the evaluated users, their held-out relevant items."""

    history: History
    users: np.ndarray
    relevant: list[np.ndarray]

    def matrix(self) -> sp.csr_matrix:
        """Binary users x items training matrix."""
        return self.history.seen()


def temporal_split(
    user_ids: np.ndarray, timestamps: np.ndarray, fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks: each user's latest max(1, ⌊fraction·n⌋) interactions are test.

    Ties in time are broken by input order. Users with fewer than two interactions keep
    everything in training: with nothing left to learn from they would measure cold start,
    not the model.
    """
    n = len(user_ids)
    _, users = np.unique(np.asarray(user_ids).astype(str), return_inverse=True)
    order = np.lexsort((np.arange(n), np.asarray(timestamps), users))
    sorted_users = users[order]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    ends = np.searchsorted(sorted_users, sorted_users, side="right")
    size = ends - starts
    position = np.arange(n) - starts
    n_test = np.maximum(1, np.floor(fraction * size).astype(np.int64))
    is_test = (size >= MIN_INTERACTIONS_FOR_TEST) & (position >= size - n_test)
    test = np.zeros(n, dtype=bool)
    test[order] = is_test
    return ~test, test


@dataclass(frozen=True)
class Indexed:
    """The data in index space: catalog, users and per-interaction weights."""

    item_ids: np.ndarray
    n_users: int
    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray
    user_names: np.ndarray  # the user id of every user index
    rows: np.ndarray  # the data's row of every interaction (they are stored in canonical order)

    def history(self, mask: np.ndarray) -> History:
        """History of the selected interactions."""
        return History(
            self.n_users,
            self.item_ids.size,
            self.users[mask],
            self.items[mask],
            self.weights[mask],
            self.timestamps[mask],
            self.user_names,
        )


def index_data(data: EvalData) -> Indexed:
    """Map ids to indices; catalog = item texts | interacted items, sorted.

    Interactions are put in a canonical order (user, time, item), so ties in time split the
    same way whatever order the source delivered them in (a file or the database).
    """
    catalog = np.array(sorted(set(data.item_texts) | {str(i) for i in data.item_ids}), dtype=object)
    pos = {item: i for i, item in enumerate(catalog)}
    names, users = np.unique(np.asarray(data.user_ids).astype(str), return_inverse=True)
    items = np.array([pos[str(i)] for i in data.item_ids], dtype=np.int64)
    stamps = np.asarray(data.timestamps, dtype=np.int64)
    order = np.lexsort((items, stamps, users))
    return Indexed(
        catalog,
        int(users.max()) + 1 if users.size else 0,
        users.astype(np.int64)[order],
        items[order],
        event_weights(data)[order],
        stamps[order],
        names.astype(object),
        order,
    )


def event_weights(data: EvalData) -> np.ndarray:
    """Weight of every interaction (`signals.event_weights` with the data's event-type table)."""
    types = data.event_types if data.event_types is not None else np.full(len(data.values), "rate", dtype=object)
    table = data.type_weights if data.type_weights is not None else SEED_EVENT_WEIGHTS
    return weigh_events(types, np.asarray(data.values, dtype=np.float64), table)


def make_split(indexed: Indexed, train: np.ndarray, test: np.ndarray) -> Split:
    """Training history plus each evaluated user's new (unseen in training) test items."""
    history = indexed.history(train)
    seen = history.seen().tolil().rows
    per_user: dict[int, set[int]] = {}
    for u, i in zip(indexed.users[test], indexed.items[test], strict=True):
        if i not in seen[u]:
            per_user.setdefault(int(u), set()).add(int(i))
    users = np.array(sorted(per_user), dtype=np.int64)
    return Split(history, users, [np.array(sorted(per_user[u]), dtype=np.int64) for u in users])


def validation_split(indexed: Indexed, train: np.ndarray) -> Split:
    """The training part cut again by the same rule: its last 20% per user validate."""
    rows = np.flatnonzero(train)
    inner_train, inner_val = temporal_split(indexed.users[rows], indexed.timestamps[rows])
    fit_mask = np.zeros(train.size, dtype=bool)
    val_mask = np.zeros(train.size, dtype=bool)
    fit_mask[rows[inner_train]] = True
    val_mask[rows[inner_val]] = True
    return make_split(indexed, fit_mask, val_mask)


def score_top(top: np.ndarray, split: Split, ks: Sequence[int], popularity: np.ndarray) -> dict[str, float]:
    """Metrics of a top-n matrix over the evaluated users of a split."""
    hits = metrics.hit_matrix(top, split.relevant)
    n_rel = np.array([r.size for r in split.relevant])
    out: dict[str, float] = {}
    for k in ks:
        for name, value in metrics.metrics_at_k(hits, n_rel, k).items():
            out[f"{name}@{k}"] = value
    cut = 10 if 10 in ks else max(ks)
    out["coverage"] = metrics.coverage_of(top[:, :cut], popularity.size)
    out["novelty"] = metrics.novelty_of(top[:, :cut], popularity)
    return out


def item_popularity(split: Split) -> np.ndarray:
    """Share of users who interacted with each item in training (at least 1/n_users)."""
    counts = np.asarray(split.matrix().sum(axis=0)).ravel()
    n = max(split.history.n_users, 1)
    return np.asarray(np.maximum(counts, 1) / n, dtype=np.float64)
