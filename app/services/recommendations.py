"""The recommendation pipeline: cache, build the job, candidates, blend, fill, explain.

A request's journey: `recommend` looks up the cache (`result_cache`); on a miss `_compute`
builds one `RecJob` (user, history, active model and its serving configuration, filters,
weights), `candidates.gather` runs each weighted source on it, `hybrid.blend` ranks, `_fill`
tops up short lists, `_explain` attaches typed reasons.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, NotFound
from app.metrics import RECOMMENDATION_LATENCY, RECOMMENDATION_REQUESTS
from app.ml import hybrid
from app.ml.hybrid import Ranked
from app.ml.signals import UserHistory
from app.repositories.retrieval import Filters, RetrievalRepository
from app.services import candidates, result_cache
from app.services.engine import GLOBAL_GENERATION, ActiveModel, Recommender
from app.services.explain import Reason, ReasonKind, reasons_for, sentence
from app.services.request import RecItem, RecJob, RecRequest, RecResult, Strategy
from app.services.users import generation_key
from app.services.validation import check_count

__all__ = ["RecItem", "RecRequest", "RecResult", "Strategy", "recommend", "similar_content", "trending"]
MAX_OFFSET = 1000  # items a paging chain may have shown before its next page


async def recommend(recommender: Recommender, request: RecRequest, *, request_id: str) -> RecResult:
    """Recommendations for a user: cached per (user, arguments, model version), else computed."""
    started = time.perf_counter()
    _validate(request, recommender.settings.max_page_size)
    model = await recommender.model_for(request.model_version)
    key = await _cache_key(recommender, request, model)
    raw = await recommender.cache.get(key)
    if raw is not None:
        result = result_cache.decode(raw, request_id=request_id)
    else:
        result = await _compute(recommender, request, model, request_id=request_id)
        await recommender.cache.set(key, result_cache.encode(result), recommender.settings.cache_ttl_seconds)
    result.response_time_ms = round((time.perf_counter() - started) * 1000, 3)
    RECOMMENDATION_REQUESTS.labels(request.strategy.name, str(result.cached).lower()).inc()
    RECOMMENDATION_LATENCY.labels(request.strategy.name).observe(result.response_time_ms / 1000)
    return result


def _validate(request: RecRequest, max_count: int) -> None:
    check_count(request.count, name="count", maximum=max_count)
    check_count(request.offset, name="after", minimum=0, maximum=MAX_OFFSET)
    if len(request.exclude_ids) > 1000:
        raise InvalidInput("excludeIds may list at most 1000 ids", field="excludeIds")
    if request.context is not None and not isinstance(request.context, dict):
        raise InvalidInput("context must be a JSON object", field="context")
    if request.context is not None and len(json.dumps(request.context, default=str)) > 16_384:
        raise InvalidInput("context must be at most 16384 bytes of JSON", field="context")


async def _cache_key(recommender: Recommender, request: RecRequest, model: ActiveModel | None) -> str:
    user_gen, global_gen = await recommender.cache.get_many([generation_key(request.user_id), GLOBAL_GENERATION])
    version = model.version_id if model else 0
    return result_cache.result_key(request, user_gen=user_gen, global_gen=global_gen, version=version)


async def _compute(
    recommender: Recommender, request: RecRequest, model: ActiveModel | None, *, request_id: str
) -> RecResult:
    async with recommender.sessions() as session:
        job = await build_job(recommender, session, request, model)
        sources, titles = await candidates.gather(job)
        # paging: the same candidates ranked `offset` deeper, so page n continues page n-1 exactly
        ranked = hybrid.blend(sources, request.count + request.offset, weights=job.weights)
        ranked = await _top_up(recommender, job.repo, ranked, request.count + request.offset, job.filters)
        items = _explain(job, ranked, titles)
    return RecResult(
        user_id=request.user_id,
        items=items,
        request_id=request_id,
        model_version=model.version_id if model else None,
        response_time_ms=0.0,
        timestamp=datetime.now(UTC),
        cached=False,
        strategy=request.strategy,
    )


async def build_job(
    recommender: Recommender, session: AsyncSession, request: RecRequest, model: ActiveModel | None
) -> RecJob:
    """Everything the sources need, from one statement: history, stored vector, filters, weights."""
    repo = RetrievalRepository(session)
    table = await recommender.event_weights()
    version = model.version_id if model else None
    config = model.config if model is not None else recommender.serving_config()
    state = await repo.user_state(request.user_id, version=version, limit=config.history_events)
    rows = [(cid, et, val, datetime.fromtimestamp(ts, UTC)) for cid, et, val, ts in state.rows]
    job = RecJob(
        request=request,
        recommender=recommender,
        model=model,
        config=config,
        session=session,
        repo=repo,
        history=UserHistory.from_rows(rows, table),
        personalized=state.personalized,
        event_weights=table,
        stored_factor=state.factor,
        factor_at=state.factor_at,
    )
    job.filters = _filters(request, job.history.consumed(), complete=len(rows) < config.history_events)
    job.weights = job.blend_weights()
    return job


def _filters(request: RecRequest, consumed: set[str], *, complete: bool) -> Filters:
    """Exclude what the user consumed: shipped as ids when the history read holds it all, else by anti-join."""
    if complete:
        return Filters(request.content_type, tuple(sorted(consumed | set(request.exclude_ids))))
    return Filters(request.content_type, tuple(sorted(request.exclude_ids)), exclude_user=request.user_id)


async def _top_up(
    recommender: Recommender, repo: RetrievalRepository, ranked: list[Ranked], count: int, filters: Filters
) -> list[Ranked]:
    """Top up with popular, then newest, items so `count` items come back when the catalog has them."""
    if len(ranked) >= count:
        return ranked
    chosen = {r.item_id for r in ranked}
    f = replace(filters, exclude=tuple(sorted(set(filters.exclude) | chosen)))
    extra = await recommender.engagement(repo, f=f, k=count - len(ranked), window_hours=None)
    if len(extra) < count - len(ranked):
        f = replace(f, exclude=tuple(sorted(set(f.exclude) | {c.item_id for c in extra})))
        extra += await repo.newest(f=f, k=count - len(ranked) - len(extra))
    floor = ranked[-1].score if ranked else 1.0
    n = len(extra)
    fill = [
        Ranked(c.item_id, floor * (n - i) / (n + 1), {"popular": floor * (n - i) / (n + 1)}, {})
        for i, c in enumerate(extra)
    ]
    return ranked + fill


def _explain(job: RecJob, ranked: list[Ranked], titles: dict[str, tuple[str, str]]) -> list[RecItem]:
    window = round(job.config.trending_window_days * 24)
    items = []
    for rank, item in enumerate(ranked, start=1):
        reasons = reasons_for(item, job.fallback)
        items.append(
            RecItem(item.item_id, round(item.score, 6), rank, sentence(reasons, titles, window_hours=window), reasons)
        )
    return items


async def similar_content(recommender: Recommender, *, content_id: str, count: int) -> list[RecItem]:
    """Published items nearest to one item by content embedding."""
    check_count(count, name="count", maximum=recommender.settings.max_page_size)
    async with recommender.sessions() as session:
        repo = RetrievalRepository(session)
        titles = await repo.titles([content_id])
        if content_id not in titles:
            raise NotFound(f"content {content_id!r} not found", field="contentId")
        found = await repo.embedding_neighbors(content_id, f=Filters(exclude=(content_id,)), k=count)
    title = titles[content_id][0]
    return [
        RecItem(
            c.item_id,
            round(min(max(c.score, 0.0), 1.0), 6),
            rank,
            f"Similar to {title}",
            [Reason(ReasonKind.CONTENT_SIMILARITY, content_id, round(c.score, 6))],
        )
        for rank, c in enumerate(found, start=1)
    ]


async def trending(
    recommender: Recommender, *, count: int, content_type: str | None, window_hours: int
) -> list[RecItem]:
    """Items with the most weighted engagement in the window, topped up with all-time popular ones."""
    check_count(count, name="count", maximum=recommender.settings.max_page_size)
    check_count(window_hours, name="windowHours", maximum=24 * 366)
    f = Filters(content_type)
    async with recommender.sessions() as session:
        repo = RetrievalRepository(session)
        found = await repo.trending(f=f, k=count, window_hours=window_hours, now=datetime.now(UTC))
        ranked = hybrid.blend({"trending": found}, count, weights={"trending": 1.0})
        ranked = await _top_up(recommender, repo, ranked, count, f)
    items = []
    for rank, item in enumerate(ranked, start=1):
        kind = ReasonKind.TRENDING if "trending" in item.contributions else ReasonKind.POPULARITY
        reasons = [Reason(kind, None, round(item.score, 6))]
        items.append(
            RecItem(item.item_id, round(item.score, 6), rank, sentence(reasons, {}, window_hours=window_hours), reasons)
        )
    return items
