"""The recommendation pipeline: SQL candidates, blend, explain, cache, fold-in freshness."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, NotFound
from app.metrics import RECOMMENDATION_LATENCY, RECOMMENDATION_REQUESTS
from app.ml import hybrid
from app.ml.als import event_weight, fold_in_vector
from app.ml.batch import CO_OCCURRENCE_ITEMS
from app.ml.hybrid import Candidate, Ranked
from app.repositories.model_versions import ModelVersionRepository
from app.repositories.retrieval import Filters, RetrievalRepository
from app.repositories.users import UserRepository
from app.services.engine import GLOBAL_GENERATION, ActiveModel, Engine
from app.services.explain import Reason, ReasonKind, reasons_for, sentence
from app.services.users import generation_key, result_prefix
from app.services.validation import check_count

HISTORY_LIMIT = 500


class Strategy(str, Enum):
    """Which candidate sources a request blends."""

    HYBRID = "hybrid"
    COLLABORATIVE = "collaborative"
    CONTENT_BASED = "content_based"
    POPULAR = "popular"
    TRENDING = "trending"


@dataclass(frozen=True)
class RecRequest:
    """Arguments of one recommendation request."""

    user_id: str
    count: int = 10
    content_type: str | None = None
    strategy: Strategy = Strategy.HYBRID
    exclude_ids: tuple[str, ...] = ()
    context: object | None = None


@dataclass
class RecItem:
    """One recommended item."""

    content_id: str
    score: float
    rank: int
    explanation: str
    reasons: list[Reason]


@dataclass
class RecResult:
    """A full recommendation response."""

    user_id: str
    items: list[RecItem]
    request_id: str
    model_version: int | None
    response_time_ms: float
    timestamp: datetime
    cached: bool
    strategy: Strategy
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class _UserState:
    history: list[tuple[str, str, float | None, datetime]]
    personalized: bool
    known: bool


async def recommend(engine: Engine, request: RecRequest, *, request_id: str) -> RecResult:
    """Recommendations for a user: cached per (user, arguments, model version), else computed."""
    started = time.perf_counter()
    _validate(request, engine.settings.max_page_size)
    model = await engine.active_model()
    key = await _cache_key(engine, request, model)
    raw = await engine.cache.get(key)
    if raw is not None:
        result = _decode(raw, request_id=request_id)
    else:
        result = await _compute(engine, request, model, request_id=request_id)
        await engine.cache.set(key, _encode(result), engine.settings.cache_ttl_seconds)
    result.response_time_ms = round((time.perf_counter() - started) * 1000, 3)
    RECOMMENDATION_REQUESTS.labels(request.strategy.name, str(result.cached).lower()).inc()
    RECOMMENDATION_LATENCY.labels(request.strategy.name).observe(result.response_time_ms / 1000)
    return result


def _validate(request: RecRequest, max_count: int) -> None:
    check_count(request.count, name="count", maximum=max_count)
    if len(request.exclude_ids) > 1000:
        raise InvalidInput("excludeIds may list at most 1000 ids", field="excludeIds")
    if request.context is not None and not isinstance(request.context, dict):
        raise InvalidInput("context must be a JSON object", field="context")
    if request.context is not None and len(json.dumps(request.context, default=str)) > 16_384:
        raise InvalidInput("context must be at most 16384 bytes of JSON", field="context")


async def _cache_key(engine: Engine, request: RecRequest, model: ActiveModel | None) -> str:
    user_gen, global_gen = await engine.cache.get_many([generation_key(request.user_id), GLOBAL_GENERATION])
    args = json.dumps(
        [request.count, request.content_type, request.strategy.value, sorted(request.exclude_ids), request.context],
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(args.encode()).hexdigest()[:24]
    version = model.version_id if model else 0
    return f"{result_prefix(request.user_id)}{_int(user_gen)}:{_int(global_gen)}:{version}:{digest}"


def _int(raw: bytes | None) -> int:
    return int(raw) if raw else 0


def _encode(result: RecResult) -> bytes:
    data = asdict(result)
    data["timestamp"] = result.timestamp.isoformat()
    data["strategy"] = result.strategy.value
    return json.dumps(data).encode()


def _decode(raw: bytes, *, request_id: str) -> RecResult:
    data = json.loads(raw)
    items = [
        RecItem(
            **{
                **item,
                "reasons": [
                    Reason(ReasonKind(r["kind"]), r["anchor_content_id"], r["weight"]) for r in item["reasons"]
                ],
            }
        )
        for item in data["items"]
    ]
    return RecResult(
        user_id=data["user_id"],
        items=items,
        request_id=request_id,
        model_version=data["model_version"],
        response_time_ms=0.0,
        timestamp=datetime.fromisoformat(data["timestamp"]),
        cached=True,
        strategy=Strategy(data["strategy"]),
        notes=data.get("notes", {}),
    )


async def _compute(engine: Engine, request: RecRequest, model: ActiveModel | None, *, request_id: str) -> RecResult:
    async with engine.reads.session(request.user_id) as session:
        state = await _user_state(session, request.user_id)
        repo = RetrievalRepository(session)
        consumed = await _consumed(repo, request.user_id, state.history)
        filters = Filters(request.content_type, tuple(sorted(set(consumed) | set(request.exclude_ids))))
        fallback = _fallback_kind(state)
        weights = _weights(request, fallback, len({cid for cid, *_ in state.history}))
        if fallback is None:
            sources = await _sources(engine, session, request, model, state, filters, weights)
        else:
            sources = await _non_personal(engine, repo, request, filters)
        ranked = hybrid.blend(sources, request.count, weights=weights)
        ranked = await _fill(repo, ranked, request.count, filters)
        items = await _explain(engine, repo, ranked, fallback)
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


async def _consumed(
    repo: RetrievalRepository, user_id: str, history: list[tuple[str, str, float | None, datetime]]
) -> list[str]:
    """Items the user has events with: the history holds them all unless it hit its limit."""
    if len(history) < HISTORY_LIMIT:
        return sorted({cid for cid, *_ in history})
    return await repo.consumed(user_id)


async def _user_state(session: AsyncSession, user_id: str) -> _UserState:
    user = await UserRepository(session).get_by_id(user_id)
    if user is None:
        return _UserState(history=[], personalized=True, known=False)
    history = await RetrievalRepository(session).history(user_id, limit=HISTORY_LIMIT)
    return _UserState(history=history, personalized=user.personalization, known=True)


def _fallback_kind(state: _UserState) -> ReasonKind | None:
    if not state.personalized:
        return ReasonKind.PERSONALIZATION_OFF
    if not state.history:
        return ReasonKind.COLD_START
    return None


NON_PERSONAL_WEIGHTS = {"popular": 0.5, "trending": 0.5}


def _weights(request: RecRequest, fallback: ReasonKind | None, history_length: int) -> dict[str, float]:
    """The strategy's blend weights (as evaluated), adapted to the user's history length."""
    if fallback is not None:
        return NON_PERSONAL_WEIGHTS
    return hybrid.history_weights(hybrid.STRATEGY_WEIGHTS[request.strategy.value], history_length)


async def _non_personal(
    engine: Engine, repo: RetrievalRepository, request: RecRequest, filters: Filters
) -> dict[str, list[Candidate]]:
    k = request.count * 2
    popular = await engine.engagement(repo, f=filters, k=k, window_hours=None)
    sources: dict[str, list[Candidate]] = {"popular": popular}
    if request.strategy in (Strategy.TRENDING, Strategy.HYBRID):
        sources["trending"] = await engine.engagement(
            repo, f=filters, k=k, window_hours=engine.settings.trending_window_hours
        )
    return sources


async def _sources(
    engine: Engine,
    session: AsyncSession,
    request: RecRequest,
    model: ActiveModel | None,
    state: _UserState,
    filters: Filters,
    blend_weights: dict[str, float],
) -> dict[str, list[Candidate]]:
    """Candidates of every source the blend will weigh, each one SQL query."""
    repo = RetrievalRepository(session)
    wanted = {name for name, weight in blend_weights.items() if weight > 0}
    weights = await engine.event_weights()
    positives = [(cid, ts) for cid, et, val, ts in state.history if event_weight(et, val, weights) > 0]
    anchors = list(dict.fromkeys(cid for cid, _ in positives))[: hybrid.ANCHOR_ITEMS]
    k, k_small = max(request.count * 3, 50), request.count * 2
    sources: dict[str, list[Candidate]] = {}
    if model is not None:
        sources |= await _model_sources(session, engine, model, request, state, filters, wanted, anchors, weights)
    if "content" in wanted:
        profile = await _profile(repo, positives, state.history, weights, engine.settings.decay_half_life_days)
        if profile is not None:
            sources["content"] = await repo.by_embedding(profile, f=filters, k=k)
    if "item_neighbors" in wanted:
        sources["item_neighbors"] = await repo.embedding_neighbors(anchors, f=filters, k=k_small)
    for name, window in (("popular", None), ("trending", engine.settings.trending_window_hours)):
        if name in wanted:
            sources[name] = await engine.engagement(repo, f=filters, k=k, window_hours=window)
    return sources


async def _model_sources(
    session: AsyncSession,
    engine: Engine,
    model: ActiveModel,
    request: RecRequest,
    state: _UserState,
    filters: Filters,
    wanted: set[str],
    anchors: list[str],
    weights: dict[str, float],
) -> dict[str, list[Candidate]]:
    """The sources that read the active model: ALS vector, factor neighbours, item links."""
    repo = RetrievalRepository(session)
    k = max(request.count * 3, 50)
    sources: dict[str, list[Candidate]] = {}
    if "collaborative" in wanted:
        vector = await _user_vector(session, engine, model, request.user_id, state, weights)
        if vector is not None:
            sources["collaborative"] = await repo.collaborative(vector, version=model.version_id, f=filters, k=k)
    if "factor_neighbors" in wanted:
        sources["factor_neighbors"] = await repo.factor_neighbors(
            anchors, version=model.version_id, dim=model.dim, f=filters, k=request.count * 2
        )
    if "co_occurrence" in wanted:
        items = item_weights(state.history, weights, engine.settings.decay_half_life_days)
        sources["co_occurrence"] = await repo.co_occurrence(items, version=model.version_id, f=filters, k=k)
    return sources


def item_weights(
    history: list[tuple[str, str, float | None, datetime]], weights: dict[str, float], half_life_days: float
) -> dict[str, float]:
    """The user's CO_OCCURRENCE_ITEMS strongest items: summed event weight decayed by age relative to the
    user's newest event (positives only), as `app.ml.batch.co_occurrence` computes it offline."""
    if not history:
        return {}
    newest = history[0][3]
    totals: dict[str, float] = {}
    for cid, event_type, value, ts in history:
        age = (newest - ts).total_seconds() / 86_400
        totals[cid] = totals.get(cid, 0.0) + event_weight(event_type, value, weights) * 0.5 ** (age / half_life_days)
    positive = sorted(((w, cid) for cid, w in totals.items() if w > 0), key=lambda t: (-t[0], t[1]))
    return {cid: w for w, cid in positive[:CO_OCCURRENCE_ITEMS]}


async def _user_vector(
    session: AsyncSession,
    engine: Engine,
    model: ActiveModel,
    user_id: str,
    state: _UserState,
    weights: dict[str, float],
) -> np.ndarray | None:
    """The stored ALS vector, folded in again when the user has events newer than it."""
    repo = ModelVersionRepository(session)
    stored = await repo.user_factor(model.version_id, user_id)
    newest = state.history[0][3] if state.history else None
    if stored is not None and (newest is None or stored[1] >= newest):
        return stored[0]
    vector = fold_in(model, state.history, weights)
    if vector is None:
        return None
    await repo.upsert_user_factor(model.version_id, user_id, vector)
    await session.commit()
    return vector


def fold_in(
    model: ActiveModel, history: list[tuple[str, str, float | None, datetime]], weights: dict[str, float]
) -> np.ndarray | None:
    """A user vector from the user's events against the active item factors (implicit's recalculate_user)."""
    known = [
        (model.item_index[cid], event_weight(et, val, weights))
        for cid, et, val, _ in history
        if cid in model.item_index
    ]
    if not known:
        return None
    idx = np.array([i for i, _ in known], dtype=np.int64)
    conf = np.array([c for _, c in known], dtype=np.float64)
    vector = fold_in_vector(
        model.item_factors, model.yty, idx, conf, alpha=model.alpha, regularization=model.regularization
    )
    return vector if np.any(vector) else None


async def _profile(
    repo: RetrievalRepository,
    positives: list[tuple[str, datetime]],
    history: list[tuple[str, str, float | None, datetime]],
    weights: dict[str, float],
    half_life_days: float,
) -> np.ndarray | None:
    """The user's time-decayed content profile from the embeddings of recent positive items."""
    recent = positives[:50]
    vectors = await repo.embeddings([cid for cid, _ in recent])
    rows = [(cid, ts) for cid, ts in recent if cid in vectors]
    if not rows:
        return None
    value = {cid: event_weight(et, val, weights) for cid, et, val, _ in reversed(history)}
    newest = rows[0][1]
    mat = np.vstack([vectors[cid] for cid, _ in rows])
    w = np.array([max(value.get(cid, 1.0), 0.0) for cid, _ in rows])
    ages = np.array([(newest - ts).total_seconds() / 86_400 for _, ts in rows])
    profile = hybrid.profile_vector(mat, w, ages, half_life_days)
    return profile if np.any(profile) else None


async def _fill(repo: RetrievalRepository, ranked: list[Ranked], count: int, filters: Filters) -> list[Ranked]:
    """Top up with popular, then newest, items so `count` items come back when the catalog has them."""
    if len(ranked) >= count:
        return ranked
    chosen = {r.item_id for r in ranked}
    f = Filters(filters.content_type, tuple(sorted(set(filters.exclude) | chosen)))
    extra = await repo.popular(f=f, k=count - len(ranked))
    if len(extra) < count - len(ranked):
        seen = chosen | {c.item_id for c in extra}
        f = Filters(filters.content_type, tuple(sorted(set(filters.exclude) | seen)))
        extra += await repo.newest(f=f, k=count - len(ranked) - len(extra))
    floor = ranked[-1].score if ranked else 1.0
    n = len(extra)
    fill = [
        Ranked(c.item_id, floor * (n - i) / (n + 1), {"popular": floor * (n - i) / (n + 1)}, {})
        for i, c in enumerate(extra)
    ]
    return ranked + fill


async def _explain(
    engine: Engine, repo: RetrievalRepository, ranked: list[Ranked], fallback: ReasonKind | None
) -> list[RecItem]:
    reasons = [reasons_for(item, fallback) for item in ranked]
    anchors = sorted({r.anchor_content_id for rs in reasons for r in rs if r.anchor_content_id})
    titles = await repo.titles(anchors) if anchors else {}
    window = engine.settings.trending_window_hours
    return [
        RecItem(item.item_id, round(item.score, 6), rank, sentence(rs, titles, window_hours=window), rs)
        for rank, (item, rs) in enumerate(zip(ranked, reasons, strict=True), start=1)
    ]


async def similar_content(engine: Engine, *, content_id: str, count: int) -> list[RecItem]:
    """Published items nearest to one item by content embedding."""
    check_count(count, name="count", maximum=engine.settings.max_page_size)
    async with engine.reads.session() as session:
        repo = RetrievalRepository(session)
        titles = await repo.titles([content_id])
        if content_id not in titles:
            raise NotFound(f"content {content_id!r} not found", field="contentId")
        found = await repo.embedding_neighbors([content_id], f=Filters(exclude=(content_id,)), k=count)
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


async def trending(engine: Engine, *, count: int, content_type: str | None, window_hours: int) -> list[RecItem]:
    """Items with the most weighted engagement in the window, topped up with all-time popular ones."""
    check_count(count, name="count", maximum=engine.settings.max_page_size)
    check_count(window_hours, name="windowHours", maximum=24 * 366)
    f = Filters(content_type)
    async with engine.reads.session() as session:
        repo = RetrievalRepository(session)
        found = await repo.trending(f=f, k=count, window_hours=window_hours, now=datetime.now(UTC))
        ranked = hybrid.blend({"trending": found}, count, weights={"trending": 1.0})
        ranked = await _fill(repo, ranked, count, f)
    items = []
    for rank, item in enumerate(ranked, start=1):
        kind = ReasonKind.TRENDING if "trending" in item.contributions else ReasonKind.POPULARITY
        reasons = [Reason(kind, None, round(item.score, 6))]
        items.append(
            RecItem(item.item_id, round(item.score, 6), rank, sentence(reasons, {}, window_hours=window_hours), reasons)
        )
    return items
