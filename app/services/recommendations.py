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
from app.ml.hybrid import Candidate, Ranked
from app.ml.signals import UserHistory
from app.ml.sources import Source
from app.repositories.content import ContentRepository
from app.repositories.filters import ContentRules
from app.repositories.retrieval import Filters, RetrievalRepository
from app.services import candidates, result_cache
from app.services.controls import Controls, rerank_ids
from app.services.engine import GLOBAL_GENERATION, ActiveModel, Recommender
from app.services.explain import Reason, ReasonKind, reasons_for, sentence
from app.services.request import RecItem, RecJob, RecRequest, RecResult, Strategy
from app.services.users import generation_key
from app.services.validation import check_count

__all__ = ["RecItem", "RecRequest", "RecResult", "Strategy", "recommend", "rerank", "similar_content", "trending"]
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
        result, ttl = await _compute(recommender, request, model, request_id=request_id)
        if ttl > 0:
            await recommender.cache.set(key, result_cache.encode(result), ttl)
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
    recommender.note_generation(int(global_gen or 0))
    version = model.version_id if model else 0
    return result_cache.result_key(request, user_gen=user_gen, global_gen=global_gen, version=version)


async def _compute(
    recommender: Recommender, request: RecRequest, model: ActiveModel | None, *, request_id: str
) -> tuple[RecResult, int]:
    """The result and how long it may be cached (never past the next availability-window change)."""
    async with recommender.reads.session(request.user_id) as session:
        job = await build_job(recommender, session, request, model)
        # paging: the same candidates ranked `offset` deeper, so page n continues page n-1 exactly
        items = await rank(job, request.count + request.offset)
        window = await recommender.seconds_to_window_change(job.repo)
    result = RecResult(
        user_id=request.user_id,
        items=items,
        request_id=request_id,
        model_version=model.version_id if model else None,
        response_time_ms=0.0,
        timestamp=datetime.now(UTC),
        cached=False,
        strategy=request.strategy,
    )
    return result, int(min(recommender.settings.cache_ttl_seconds, window))


async def rank(job: RecJob, count: int) -> list[RecItem]:
    """Candidates of every weighted source, blended with the request's boosts and diversity, topped up, explained."""
    controls = job.request.controls
    sources, titles = await candidates.gather(job)
    ids = sorted({c.item_id for found in sources.values() for c in found})
    boosts = await ContentRepository(job.session).boost_factors(ids, [(b.rules, b.factor) for b in controls.boosts])
    vectors = await job.repo.embeddings(ids) if controls.diversity > 0 and ids else None
    ranked = hybrid.blend(
        sources, count, weights=job.weights, diversity=controls.diversity, vectors=vectors, boosts=boosts
    )
    ranked = await _top_up(job.recommender, job.repo, ranked, count, job.filters)
    return _explain(job, ranked, titles)


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
    rules = request.controls.rules
    if complete:
        return Filters(request.content_type, tuple(sorted(consumed | set(request.exclude_ids))), rules=rules)
    return Filters(request.content_type, tuple(sorted(request.exclude_ids)), exclude_user=request.user_id, rules=rules)


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


async def similar_content(
    recommender: Recommender,
    *,
    content_id: str,
    count: int,
    by: str = "content",
    rules: ContentRules | None = None,
    title: str | None = None,
) -> list[RecItem]:
    """Published, available items matching the rules, nearest to one item: by content embedding, or by the
    active model's item-factor neighbours. `title`: the item's, when the caller has loaded it (no lookup)."""
    check_count(count, name="count", maximum=recommender.settings.max_page_size)
    model = await recommender.active_model() if by == "collaborative" else None
    async with recommender.reads.session() as session:
        repo = RetrievalRepository(session)
        if title is None:
            title = await _anchor_title(repo, content_id)
        f = Filters(exclude=(content_id,), rules=rules)
        if by != "collaborative":
            found = await repo.embedding_neighbors(content_id, f=f, k=count)
        elif model is None:  # nothing trained yet: no collaborative neighbours
            found = []
        else:
            found = await repo.link_neighbors(
                content_id, version=model.version_id, source=Source.FACTOR_NEIGHBORS.value, f=f, k=count
            )
    return _neighbours(found, content_id, title, collaborative=by == "collaborative")


async def _anchor_title(repo: RetrievalRepository, content_id: str) -> str:
    titles = await repo.titles([content_id])
    if content_id not in titles:
        raise NotFound(f"content {content_id!r} not found", field="contentId")
    return titles[content_id][0]


def _neighbours(found: list[Candidate], anchor: str, title: str, *, collaborative: bool) -> list[RecItem]:
    """Neighbour candidates as ranked items; factor inner products are scaled by the nearest one into (0, 1]."""
    kind = ReasonKind.COLLABORATIVE if collaborative else ReasonKind.CONTENT_SIMILARITY
    text = f"People who engaged with {title} also engaged with this" if collaborative else f"Similar to {title}"
    top = found[0].score if collaborative and found and found[0].score > 0 else 1.0
    return [
        RecItem(
            c.item_id,
            round(min(max(c.score / top, 0.0), 1.0), 6),
            rank,
            text,
            [Reason(kind, anchor, round(c.score, 6))],
        )
        for rank, c in enumerate(found, start=1)
    ]


async def trending(
    recommender: Recommender,
    *,
    count: int,
    content_type: str | None,
    window_hours: int,
    rules: ContentRules | None = None,
) -> list[RecItem]:
    """Items with the most weighted engagement in the window, topped up with all-time popular ones."""
    check_count(count, name="count", maximum=recommender.settings.max_page_size)
    check_count(window_hours, name="windowHours", maximum=24 * 366)
    f = Filters(content_type, rules=rules)
    async with recommender.reads.session() as session:
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


async def rerank(
    recommender: Recommender, *, user_id: str, content_ids: list[str], controls: Controls, strategy: Strategy
) -> tuple[list[RecItem], list[str]]:
    """The eligible given items ordered for the user by the same blend; plus the given ids that are unknown
    or ineligible (unpublished, outside their window, not matching the placement's filter).

    Each source is read twice: as for `recommendations` (its own top list, which sets the rank scale the
    blend normalises over) and restricted to exactly the given items (so every one it can score is scored,
    seen items included); the blend runs over both and keeps the given items. Diversity is not applied:
    the caller's list is ordered, not replaced."""
    given = rerank_ids(content_ids)
    model = await recommender.active_model()
    async with recommender.sessions() as session:
        ok = await ContentRepository(session).eligible_ids(given, controls.rules)
        keep = [cid for cid in given if cid in ok]
        if keep:
            request = RecRequest(user_id=user_id, count=len(keep), strategy=strategy, controls=controls)
            job = await build_job(recommender, session, request, model)
            items = await _rerank(job, keep)
        else:
            items = []
    return items, [cid for cid in given if cid not in ok]


async def _rerank(job: RecJob, keep: list[str]) -> list[RecItem]:
    context, titles = await candidates.gather(job)
    job.filters = Filters(rules=job.request.controls.rules, only=tuple(keep))
    scored, more_titles = await candidates.gather(job)
    sources = {name: [*context.get(name, []), *scored.get(name, [])] for name in context.keys() | scored.keys()}
    ids = sorted({c.item_id for found in sources.values() for c in found})
    boosts = [(b.rules, b.factor) for b in job.request.controls.boosts]
    factors = await ContentRepository(job.session).boost_factors(ids, boosts)
    wanted = set(keep)
    ranked = hybrid.blend(sources, len(ids), weights=job.weights, boosts=factors)
    ranked = await _top_up(
        job.recommender, job.repo, [r for r in ranked if r.item_id in wanted], len(keep), job.filters
    )
    return _explain(job, ranked, titles | more_titles)
