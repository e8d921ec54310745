"""One definition of the signals every source is built from, shared by serving, training and evaluation.

Event weights (from the `event_types` table), time decay anchored on a clock passed in (the
training run's or the request's now, never the newest event), a user's anchor items, the
user's strongest items, the content profile and popularity. Serving calls these on one
user's arrays; the batch evaluation calls the same functions user by user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from app.ml.sources import Source

if TYPE_CHECKING:
    from app.ml.serving import ServingConfig

SECONDS_PER_DAY = 86_400.0
RATING_MIN = 0.5
RATING_MAX = 5.0
RATING_NEUTRAL = 2.5


def event_weights(
    types: np.ndarray | Sequence[str], values: np.ndarray | Sequence[Any], table: Mapping[str, float]
) -> np.ndarray:
    """Weight of every event: the type's table weight; a "rate" event's scaled by its rating.

    A missing rating is None or NaN (numeric arrays carry missing values as NaN).
    A rating is clamped to 0.5-5 (missing = the neutral 2.5), so every rating stays a positive
    signal and a 5-star rating sits between a like and an add-to-cart. Negative weights
    (dislike) are returned as they are; callers drop them from the positives. An unknown type
    raises ValueError.
    """
    kinds = np.asarray(types, dtype=object).astype(str)
    names, codes = np.unique(kinds, return_inverse=True)
    unknown = [str(n) for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}; known: {', '.join(sorted(table))}")
    out = np.array([float(table[n]) for n in names], dtype=np.float64)[codes.reshape(-1)]
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        raw = values.astype(np.float64).reshape(-1)
    else:
        raw = np.array([np.nan if v is None else v for v in values], dtype=np.float64).reshape(-1)
    if not np.isfinite(raw[~np.isnan(raw)]).all():
        raise ValueError("ratings must be finite numbers")
    rate = (kinds == "rate") & (out > 0)
    ratings = np.where(np.isnan(raw[rate]), RATING_NEUTRAL, raw[rate])
    out[rate] *= np.clip(ratings, RATING_MIN, RATING_MAX)
    return out


def event_weight(event_type: str, value: float | None, table: Mapping[str, float]) -> float:
    """`event_weights` of one event (here a NaN rating is an error, not a missing one)."""
    if value is not None and not np.isfinite(value):
        raise ValueError(f"rating must be a finite number, got {value!r}")
    return float(event_weights([event_type], [value], table)[0])


def decay(timestamps: np.ndarray, now: float, half_life_days: float | None) -> np.ndarray:
    """0.5 ** (age in days / half-life), age measured from `now`; events from the future count as fresh.

    Anchoring on the caller's clock (not on the newest event) means one event with a wrong,
    far-future date cannot age every other event into underflow.
    """
    stamps = np.asarray(timestamps, dtype=np.float64)
    if half_life_days is None:
        return np.ones(stamps.shape, dtype=np.float64)
    if not half_life_days > 0:
        raise ValueError(f"half_life_days must be > 0, got {half_life_days}")
    ages = np.maximum(float(now) - stamps, 0.0) / SECONDS_PER_DAY
    return np.asarray(np.power(0.5, ages / half_life_days), dtype=np.float64)


@dataclass(frozen=True)
class UserHistory:
    """One user's events, newest first: item ids, event weights and epoch-second timestamps."""

    items: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray

    @classmethod
    def empty(cls) -> UserHistory:
        """No events."""
        return cls(np.array([], dtype=object), np.zeros(0), np.zeros(0))

    @classmethod
    def from_rows(
        cls, rows: Sequence[tuple[str, str, float | None, datetime]], table: Mapping[str, float]
    ) -> UserHistory:
        """From (content_id, event_type, value, timestamp) rows, newest first."""
        if not rows:
            return cls.empty()
        items = np.array([r[0] for r in rows], dtype=object)
        weights = event_weights([r[1] for r in rows], [r[2] for r in rows], table)
        stamps = np.array([r[3].timestamp() for r in rows], dtype=np.float64)
        return cls(items, weights, stamps)

    def __len__(self) -> int:
        return int(self.items.size)

    @property
    def distinct_items(self) -> int:
        """Number of distinct items the user has events with."""
        return len(set(self.items.tolist()))

    def consumed(self) -> set[str]:
        """Items the user has any event with."""
        return {str(i) for i in self.items}

    def newest(self) -> float | None:
        """Time of the newest event (epoch seconds)."""
        return float(self.timestamps.max()) if self.items.size else None


def anchors(items: np.ndarray, weights: np.ndarray, n: int) -> list[Any]:
    """The user's n latest distinct items with a positive event (input newest first)."""
    out: list[Any] = []
    for item, weight in zip(items.tolist(), weights.tolist(), strict=True):
        if weight > 0 and item not in out:
            out.append(item)
            if len(out) == n:
                break
    return out


def item_totals(
    items: np.ndarray, weights: np.ndarray, timestamps: np.ndarray, *, now: float, half_life_days: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's summed, decayed event weight; positive totals only, strongest first (ties by item)."""
    if items.size == 0:
        return items[:0], np.zeros(0)
    names, codes = np.unique(items, return_inverse=True)
    totals = np.bincount(codes.reshape(-1), weights=weights * decay(timestamps, now, half_life_days))
    keep = totals > 0
    names, totals = names[keep], totals[keep]
    order = np.lexsort((names, -totals))
    return names[order], totals[order]


def strongest(
    items: np.ndarray, weights: np.ndarray, timestamps: np.ndarray, *, now: float, half_life_days: float | None, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The user's n items of largest decayed total weight (what co-engagement and the profile start from)."""
    names, totals = item_totals(items, weights, timestamps, now=now, half_life_days=half_life_days)
    return names[:n], totals[:n]


def profile(vectors: np.ndarray) -> np.ndarray:
    """The content profile: the mean embedding of the user's strongest items, L2-normalised.

    Serving computes the same mean in SQL (`avg(embedding)`); cosine ignores the scale.
    """
    mat = np.asarray(vectors, dtype=np.float64)
    if mat.ndim != 2 or mat.shape[0] == 0:
        return np.zeros(mat.shape[-1] if mat.ndim == 2 else 0, dtype=np.float32)
    mean = mat.mean(axis=0)
    norm = np.linalg.norm(mean)
    return np.asarray(mean / norm if norm > 0 else mean, dtype=np.float32)


def seeds(source: Source, history: UserHistory, config: ServingConfig, *, now: float) -> tuple[np.ndarray, np.ndarray]:
    """The user items a link source starts from, with their weights.

    co_occurrence: the strongest items and their decayed totals; sequential: the latest items,
    the newest weighing most (1, 1/2, 1/3, …); neighbour sources: the latest items, weight 1
    (their links combine by max: the best anchor counts).
    """
    if source is Source.CO_OCCURRENCE:
        return strongest(
            history.items,
            history.weights,
            history.timestamps,
            now=now,
            half_life_days=config.half_life_days,
            n=config.link_items,
        )
    latest = np.array(anchors(history.items, history.weights, config.anchor_items), dtype=object)
    if source is Source.SEQUENTIAL:
        return latest, 1.0 / np.arange(1, latest.size + 1, dtype=np.float64)
    return latest, np.ones(latest.size, dtype=np.float64)


def popularity(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """Distinct users per item (the users given are those who share data; events with positive weight)."""
    if items.size == 0:
        return np.zeros(n_items, dtype=np.float64)
    pairs = np.unique(np.stack([np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)]), axis=1)
    return np.bincount(pairs[1], minlength=n_items).astype(np.float64)
