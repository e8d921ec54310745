"""Process-wide engine state: the active model's item factors (for fold-in) and the embedder."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from app.config import Settings
from app.db import SessionFactory
from app.db_routing import ReadRouter
from app.metrics import ACTIVE_MODEL_VERSION
from app.ml.embeddings import get_embedder
from app.ml.hybrid import Candidate
from app.repositories.event_types import EventTypeRepository
from app.repositories.model_versions import ModelVersionRepository
from app.repositories.retrieval import Filters, RetrievalRepository
from app.services.cache import Cache

MEMO_SECONDS = 2.0
# the popular/trending aggregates scan every event in their window: share one top list per
# (content type, window) for a few seconds and filter each user's exclusions in Python
ENGAGEMENT_MEMO_SECONDS = 10.0
ENGAGEMENT_DEPTH = 500
GLOBAL_GENERATION = "gen:global"


@dataclass(frozen=True)
class ActiveModel:
    """The active ALS version's item factors, kept in memory only to fold in users online."""

    version_id: int
    item_index: dict[str, int]
    item_factors: np.ndarray
    yty: np.ndarray
    alpha: float
    regularization: float

    @property
    def dim(self) -> int:
        """Number of latent factors."""
        return int(self.item_factors.shape[1])


class Engine:
    """Shared by all requests of a process; holds nothing another replica would need to know."""

    def __init__(
        self, settings: Settings, sessions: SessionFactory, cache: Cache, reads: ReadRouter | None = None
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.reads = reads or ReadRouter.primary_only(settings, sessions)  # where lag-tolerant reads run
        self.cache = cache
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        self._model: ActiveModel | None = None
        self._active_id: int | None = None
        self._checked_at = 0.0
        self._weights: dict[str, float] = {}
        self._weights_at = 0.0
        self._engagement: dict[tuple[str | None, int | None], tuple[float, list[Candidate]]] = {}
        self._lock = asyncio.Lock()

    async def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts on a worker thread (never on the event loop)."""
        loop = asyncio.get_running_loop()
        batch = self.settings.embedding_batch_size
        return await loop.run_in_executor(self._executor, lambda: get_embedder(batch).encode(texts))

    async def active_model(self) -> ActiveModel | None:
        """The active version, re-read from the database at most every couple of seconds."""
        if time.monotonic() - self._checked_at < MEMO_SECONDS:
            return self._model
        async with self._lock:
            if time.monotonic() - self._checked_at >= MEMO_SECONDS:
                await self._refresh_model()
        return self._model

    async def _refresh_model(self) -> None:
        async with self.sessions() as session:
            repo = ModelVersionRepository(session)
            active = await repo.get_active()
            if active is None:
                self._model, self._active_id = None, None
            elif active.id != self._active_id:
                ids, factors = await repo.item_factors(active.id)
                y = factors.astype(np.float64)
                self._model = ActiveModel(
                    version_id=active.id,
                    item_index={cid: i for i, cid in enumerate(ids)},
                    item_factors=factors,
                    yty=y.T @ y if factors.size else np.zeros((0, 0)),
                    alpha=float(active.params.get("alpha", self.settings.als_alpha)),
                    regularization=float(active.params.get("regularization", self.settings.als_regularization)),
                )
                self._active_id = active.id
        self._checked_at = time.monotonic()
        ACTIVE_MODEL_VERSION.set(self._active_id or 0)

    def forget_model(self) -> None:
        """Re-read the active version (and the popularity lists) on next use."""
        self._checked_at = 0.0
        self._engagement.clear()

    async def engagement(
        self, repo: RetrievalRepository, *, f: Filters, k: int, window_hours: int | None
    ) -> list[Candidate]:
        """Popular (no window) or trending items for `f`, from a list shared for a few seconds."""
        key = (f.content_type, window_hours)
        since = datetime.now(UTC) - timedelta(hours=window_hours) if window_hours else None
        hit = self._engagement.get(key)
        if hit is None or time.monotonic() - hit[0] >= ENGAGEMENT_MEMO_SECONDS:
            top = await repo.popular(f=Filters(f.content_type), k=ENGAGEMENT_DEPTH, since=since)
            hit = self._engagement[key] = (time.monotonic(), top)
        excluded = set(f.exclude)
        found = [c for c in hit[1] if c.item_id not in excluded][:k]
        if len(found) < k and len(hit[1]) >= ENGAGEMENT_DEPTH:  # exclusions ate the shared list
            return await repo.popular(f=f, k=k, since=since)
        return found

    async def event_weights(self) -> dict[str, float]:
        """Event type weights, re-read every couple of seconds."""
        if time.monotonic() - self._weights_at >= MEMO_SECONDS:
            async with self.sessions() as session:
                self._weights = await EventTypeRepository(session).weights()
            self._weights_at = time.monotonic()
        return self._weights

    async def invalidate_all(self) -> None:
        """Make every cached result stale (model activation, catalog status changes)."""
        await self.cache.incr(GLOBAL_GENERATION)
        self.forget_model()

    def close(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)
