"""Deterministic synthetic catalog and event log, generated in bounded numpy chunks.

Shape: power-law item popularity, log-normal user activity, users with a home cluster,
clustered 384-dim unit vectors as embeddings (marked `synthetic-clustered`, not a real model),
timestamps over the last year skewed to recent, mixed content and event types.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

DIM = 384
EMBEDDING_MODEL = "synthetic-clustered"
CONTENT_TYPES = np.array(["product", "video", "article", "post", "image", "audio"], dtype=object)
CONTENT_TYPE_P = np.array([0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
EVENT_TYPES = np.array(["view", "click", "like", "bookmark", "share", "add_to_cart", "purchase", "rate"], dtype=object)
EVENT_TYPE_P = np.array([0.6, 0.2, 0.07, 0.03, 0.02, 0.04, 0.02, 0.02])
YEAR_SECONDS = 365 * 86_400.0
CHUNK = 200_000
HOME_SHARE = 0.5  # share of a user's events drawn from the user's home cluster
FORMAT = 2  # bump when the generated rows change, so stored bench databases are reloaded
TOPICS = 50  # items of cluster c have category topic-(c mod TOPICS)
IN_STOCK_SHARE = 0.5  # metadata {"inStock": true}, independent of the topic
# The bench's filtered row: 5 of 50 topics x in stock ~ 5% of the items.
FILTER = {"categories": [f"topic-{t}" for t in range(10, 15)], "metadata": {"inStock": True}}


@dataclass(frozen=True)
class Spec:
    """What to generate; the same spec and seed always give the same data."""

    items: int
    users: int
    events: int
    seed: int = 42
    end: float = 0.0  # unix time of the newest event; 0 = midnight UTC today

    @property
    def clusters(self) -> int:
        """Topic clusters: grows with the catalog."""
        return int(max(8, min(1000, round(np.sqrt(self.items) / 2))))

    @property
    def end_ts(self) -> float:
        """Newest event time (a fixed day keeps a rerun on the same day identical)."""
        if self.end:
            return self.end
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return today.timestamp()

    def as_dict(self) -> dict[str, int | float]:
        """JSON form."""
        return {"items": self.items, "users": self.users, "events": self.events, "seed": self.seed, "format": FORMAT}


def default_spec(items: int, seed: int = 42) -> Spec:
    """Ten events per item and one user per ten items (at least 500 users)."""
    return Spec(items=items, users=max(500, items // 10), events=items * 10, seed=seed)


def _rng(spec: Spec, stream: int, chunk: int = 0) -> np.random.Generator:
    return np.random.default_rng([spec.seed, stream, chunk])


def content_id(i: np.ndarray) -> list[str]:
    """Content ids of item indices."""
    return [f"s{int(x):07d}" for x in i]


def user_id(u: np.ndarray) -> list[str]:
    """User ids of user indices."""
    return [f"u{int(x):07d}" for x in u]


def centers(spec: Spec) -> np.ndarray:
    """Unit cluster centres."""
    c = _rng(spec, 1).standard_normal((spec.clusters, DIM)).astype(np.float32)
    unit: np.ndarray = c / np.linalg.norm(c, axis=1, keepdims=True)
    return unit


@dataclass(frozen=True)
class ItemChunk:
    """A slice of the catalog."""

    index: np.ndarray
    cluster: np.ndarray
    content_type: np.ndarray
    embedding: np.ndarray
    created: np.ndarray
    draft: np.ndarray
    in_stock: np.ndarray


def item_chunks(spec: Spec, chunk: int = CHUNK // 4) -> Iterator[ItemChunk]:
    """The catalog in chunks: item i is in cluster i mod clusters."""
    cen = centers(spec)
    for n, start in enumerate(range(0, spec.items, chunk)):
        idx = np.arange(start, min(start + chunk, spec.items))
        rng = _rng(spec, 2, n)
        cluster = idx % spec.clusters
        vec = cen[cluster] + 0.045 * rng.standard_normal((idx.size, DIM)).astype(np.float32)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        ctype = CONTENT_TYPES[rng.choice(CONTENT_TYPES.size, idx.size, p=CONTENT_TYPE_P)]
        created = spec.end_ts - YEAR_SECONDS * 1.2 * rng.random(idx.size)
        draft = rng.random(idx.size) < 0.02
        yield ItemChunk(idx, cluster, ctype, vec, created, draft, rng.random(idx.size) < IN_STOCK_SHARE)


def _cdf(weights: np.ndarray) -> np.ndarray:
    c = np.cumsum(weights, dtype=np.float64)
    cdf: np.ndarray = c / c[-1]
    return cdf


def popularity_cdf(spec: Spec) -> np.ndarray:
    """Zipf-like (exponent 1.0) popularity over a random permutation of items."""
    rank = _rng(spec, 3).permutation(spec.items) + 1
    return _cdf(1.0 / rank.astype(np.float64))


def activity_cdf(spec: Spec) -> np.ndarray:
    """Log-normal user activity: a few heavy users, a long tail of light ones."""
    return _cdf(_rng(spec, 4).lognormal(0.0, 1.2, spec.users))


@dataclass(frozen=True)
class EventChunk:
    """A slice of the event log."""

    user: np.ndarray
    item: np.ndarray
    type_code: np.ndarray
    value: np.ndarray
    ts: np.ndarray
    uuid_bytes: np.ndarray

    @property
    def types(self) -> np.ndarray:
        """Event type names."""
        names: np.ndarray = EVENT_TYPES[self.type_code]
        return names


def event_chunks(spec: Spec, chunk: int = CHUNK) -> Iterator[EventChunk]:
    """The event log in chunks (memory bounded by `chunk`)."""
    pop, act = popularity_cdf(spec), activity_cdf(spec)
    k = spec.clusters
    per_cluster = -(-spec.items // k)
    for n, start in enumerate(range(0, spec.events, chunk)):
        size = min(chunk, spec.events - start)
        rng = _rng(spec, 5, n)
        user = np.searchsorted(act, rng.random(size)).astype(np.int64)
        item = np.searchsorted(pop, rng.random(size)).astype(np.int64)
        home = rng.random(size) < HOME_SHARE
        j = np.floor(per_cluster * rng.random(size) ** 3).astype(np.int64)
        local = (user * 7919) % k + k * j  # skewed towards the first items of the user's home cluster
        item = np.where(home & (local < spec.items), local, item)
        code = rng.choice(EVENT_TYPES.size, size, p=EVENT_TYPE_P)
        value = np.where(EVENT_TYPES[code] == "rate", rng.integers(1, 11, size) / 2.0, np.nan)
        ts = spec.end_ts - YEAR_SECONDS * rng.random(size) ** 1.5
        uuid_bytes = rng.integers(0, 256, (size, 16), dtype=np.uint8)
        uuid_bytes[:, 6] = (uuid_bytes[:, 6] & 0x0F) | 0x40
        uuid_bytes[:, 8] = (uuid_bytes[:, 8] & 0x3F) | 0x80
        yield EventChunk(user, item, code, value, ts, uuid_bytes)
