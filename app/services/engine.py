"""Process-wide engine state: the active model's item factors (for fold-in) and the embedder."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from cachetools import LRUCache

from app.config import Settings
from app.db import SessionFactory
from app.db_routing import ReadRouter
from app.errors import NotFound
from app.metrics import ACTIVE_MODEL_VERSION
from app.ml.embeddings import get_embedder
from app.ml.hybrid import Candidate
from app.ml.serving import ServingConfig, default_config
from app.models import ModelVersion
from app.repositories.event_types import EventTypeRepository
from app.repositories.filters import ContentRules
from app.repositories.model_versions import ModelVersionRepository
from app.repositories.retrieval import Filters, RetrievalRepository
from app.services.cache import Cache

logger = logging.getLogger(__name__)
MEMO_SECONDS = 2.0
# the popular/trending aggregates scan every event in their window: share one top list per
# (content type, window) for a few seconds and filter each user's exclusions in Python
ENGAGEMENT_MEMO_SECONDS = 10.0
# ...or longer, so that refreshing a list costs at most this share of a core (the trending window's
# aggregate takes seconds on 10M events: refreshed every few minutes there, every 10 s on small data)
REFRESH_BUDGET = 0.05
ENGAGEMENT_DEPTH = 500
GLOBAL_GENERATION = "gen:global"
WINDOW_MEMO_SECONDS = 60.0
EngagementKey = tuple[str | None, ContentRules | None, int | None]
EXTRA_VERSIONS = 4  # non-active model versions (experiment arms) kept in memory


@dataclass(frozen=True)
class SharedList:
    """A popular/trending top list shared by a process's requests (monotonic times)."""

    fresh_until: float  # refreshed in the background after this
    valid_until: float  # an item enters or leaves its availability window here: never served after it
    items: list[Candidate]


async def _load_model(repo: ModelVersionRepository, version: ModelVersion) -> ActiveModel:
    """A version's item factors, their Gram matrix and its serving configuration."""
    ids, factors = await repo.item_factors(version.id)
    y = factors.astype(np.float64)
    return ActiveModel(
        version_id=version.id,
        item_index={cid: i for i, cid in enumerate(ids)},
        item_factors=factors,
        yty=y.T @ y if factors.size else np.zeros((0, 0)),
        config=ServingConfig.from_params(version.params),
    )


@dataclass(frozen=True)
class ActiveModel:
    """The active ALS version's item factors, kept in memory only to fold in users online."""

    version_id: int
    item_index: dict[str, int]
    item_factors: np.ndarray
    yty: np.ndarray
    config: ServingConfig

    @property
    def dim(self) -> int:
        """Number of latent factors."""
        return int(self.item_factors.shape[1])

    @property
    def alpha(self) -> float:
        """ALS confidence scale the factors were trained with."""
        return self.config.als.alpha

    @property
    def regularization(self) -> float:
        """ALS regularization the factors were trained with."""
        return self.config.als.regularization


class Recommender:
    """The recommendation runtime shared by all requests of a process: active model, memos, embedder.

    It holds nothing another replica would need to know; `forget_model` is the reload entry point.
    """

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
        self._engagement: dict[EngagementKey, SharedList] = {}
        self._engagement_locks: dict[EngagementKey, asyncio.Lock] = {}
        self._refreshing: set[EngagementKey] = set()
        self._lists_epoch = 0
        self._tasks: set[asyncio.Future[None]] = set()
        self._window_change: datetime | None = None
        self._window_at = -WINDOW_MEMO_SECONDS
        self._generation = 0
        self._versions: LRUCache[int, ActiveModel] = LRUCache(maxsize=EXTRA_VERSIONS)
        self._lock = asyncio.Lock()
        self.clock: Callable[[], float] = time.time  # decay and trending windows are measured from here

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
                self._model = await _load_model(repo, active)
                self._active_id = active.id
        self._checked_at = time.monotonic()
        ACTIVE_MODEL_VERSION.set(self._active_id or 0)

    async def model_for(self, version_id: int | None) -> ActiveModel | None:
        """The active version (None), or a stored version an experiment arm serves with its own factors
        and blend; a version's factors never change, so each is loaded once and kept (a few at most)."""
        active = await self.active_model()
        if version_id is None or (active is not None and active.version_id == version_id):
            return active
        if version_id not in self._versions:
            async with self.sessions() as session:
                repo = ModelVersionRepository(session)
                row = await repo.get_by_id(version_id)
                if row is None:
                    raise NotFound(f"model version {version_id} not found", field="modelVersion")
                self._versions[version_id] = await _load_model(repo, row)
        return self._versions[version_id]

    def serving_config(self) -> ServingConfig:
        """The active version's serving configuration (the committed defaults before any training)."""
        return self._model.config if self._model is not None else default_config()

    def forget_model(self) -> None:
        """Re-read the active version (and the popularity lists) on next use."""
        self._checked_at = 0.0
        self._forget_lists()
        self._window_at = -WINDOW_MEMO_SECONDS

    async def engagement(
        self, repo: RetrievalRepository, *, f: Filters, k: int, window_hours: int | None
    ) -> list[Candidate]:
        """Popular (no window) or trending items for `f`, from a list shared for a few seconds.

        The shared list is per (content type, content rules, window) and expires early when an item's
        availability window opens or closes; re-ranking (an id restriction) and long histories query."""
        if f.exclude_user is not None or not f.shared:  # the shared list cannot know a long history
            return await repo.popular(f=f, k=k, since=self._since(window_hours))
        shared = await self._shared_engagement(repo, (f.content_type, f.rules, window_hours))
        excluded = set(f.exclude)
        found = [c for c in shared if c.item_id not in excluded][:k]
        if len(found) < k and len(shared) >= ENGAGEMENT_DEPTH:  # exclusions ate the shared list
            return await repo.popular(f=f, k=k, since=self._since(window_hours))
        return found

    async def shared_list(self, repo: RetrievalRepository, f: Filters, window_hours: int | None) -> list[Candidate]:
        """The process-wide popular (no window) or trending list for `f`'s content type and rules, before any
        exclusion (the caller filters it: `CandidateQuery.listed` for long histories)."""
        return await self._shared_engagement(repo, (f.content_type, f.rules, window_hours))

    def _since(self, window_hours: int | None) -> datetime | None:
        return datetime.fromtimestamp(self.clock(), UTC) - timedelta(hours=window_hours) if window_hours else None

    async def warm(self) -> None:
        """Load the active model and fill the unfiltered popular and trending lists, so that the first burst
        of requests after start-up finds them (rather than waiting in line for them)."""
        await self.active_model()
        (generation,) = await self.cache.get_many([GLOBAL_GENERATION])
        self.note_generation(int(generation or 0))  # so that the first request does not drop these lists
        hours = round(self.serving_config().trending_window_days * 24)
        async with self.sessions() as session:
            repo = RetrievalRepository(session)
            for window in (None, hours):
                await self.engagement(repo, f=Filters(), k=1, window_hours=window)

    async def _shared_engagement(self, repo: RetrievalRepository, key: EngagementKey) -> list[Candidate]:
        """The shared top list for `key`. A list past its few seconds is still served while it is valid (no
        availability window has changed since) and refreshed by one background task, so requests never wait
        for the aggregate once a list exists; a missing or invalid list is computed by one request at a time
        (single flight), the others waiting for that result instead of each running the aggregate."""
        hit = self._engagement.get(key)
        if hit is not None and time.monotonic() < hit.valid_until:
            if time.monotonic() >= hit.fresh_until:
                self._refresh_in_background(key)
            return hit.items
        lock = self._engagement_locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._engagement.get(key)
            if hit is None or time.monotonic() >= hit.valid_until:
                hit = self._engagement[key] = await self._compute_list(repo, key)
        return hit.items

    async def _compute_list(self, repo: RetrievalRepository, key: EngagementKey) -> SharedList:
        content_type, rules, window_hours = key
        since = self._since(window_hours)
        started = time.monotonic()
        top = await repo.popular(f=Filters(content_type, rules=rules), k=ENGAGEMENT_DEPTH, since=since)
        now = time.monotonic()
        fresh_for = max(ENGAGEMENT_MEMO_SECONDS, (now - started) / REFRESH_BUDGET)
        until_change = await self.seconds_to_window_change(repo)
        return SharedList(now + min(fresh_for, until_change), now + until_change, top)

    def _refresh_in_background(self, key: EngagementKey) -> None:
        if key in self._refreshing:
            return
        self._refreshing.add(key)
        task = asyncio.ensure_future(self._refresh(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(self, key: EngagementKey) -> None:
        epoch = self._lists_epoch
        try:
            async with self.reads.session() as session:
                fresh = await self._compute_list(RetrievalRepository(session), key)
            if self._lists_epoch == epoch and key in self._engagement:  # not forgotten meanwhile
                self._engagement[key] = fresh
        except Exception:  # the stale list stays until it is invalid; the next request tries again
            logger.exception("refreshing a shared popularity list failed")
        finally:
            self._refreshing.discard(key)

    async def seconds_to_window_change(self, repo: RetrievalRepository) -> float:
        """Seconds until an item next enters or leaves its availability window (inf when none will).

        Cached results and shared lists must not outlive that moment. The lookup is memoised until that
        moment passes, the global cache generation changes (a content write that sets or clears a window
        bumps it, on any replica: `note_generation`) or WINDOW_MEMO_SECONDS pass (writes that bypass the
        API, such as imports)."""
        now = datetime.now(UTC)
        passed = self._window_change is not None and self._window_change <= now
        if passed or time.monotonic() - self._window_at >= WINDOW_MEMO_SECONDS:
            self._window_change = await repo.next_window_change()
            self._window_at = time.monotonic()
        if self._window_change is None:
            return float("inf")
        return max((self._window_change - now).total_seconds(), 0.0)

    def note_generation(self, generation: int) -> None:
        """The global cache generation a request saw; a change means the catalog (its windows, statuses) may
        have changed too: the shared lists are dropped, so none outlives an item's eligibility."""
        if generation != self._generation:
            self._generation = generation
            self._window_at = -WINDOW_MEMO_SECONDS
            self._forget_lists()

    def _forget_lists(self) -> None:
        self._engagement.clear()
        self._lists_epoch += 1  # a refresh started before this must not write its (older) list back

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
        """Stop the worker thread and any list refresh under way."""
        for task in self._tasks:
            task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
