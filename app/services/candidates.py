"""Candidate retrieval for a request: one planning function per registry source, one statement for all.

Each function of `SERVING` takes the `RecJob` and says what its source needs from the candidate
statement (link seeds, the user's vector, the profile items) or, for popularity, answers from
the process-wide memo. `gather` then runs the one statement (`RetrievalRepository.candidates`)
and hands each source its candidates. The math is `app.ml.signals`'s, shared with the batch
evaluation; a test asserts `SERVING` covers the registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np

from app.ml import signals
from app.ml.als import fold_in_vector
from app.ml.hybrid import Candidate
from app.ml.sources import SPECS, Need, Source
from app.repositories.retrieval import CandidateQuery
from app.services.engine import ActiveModel
from app.services.request import RecJob

Memo = dict[str, list[Candidate]]
PlanFn = Callable[[RecJob, CandidateQuery, Memo], Awaitable[None]]


def now(job: RecJob) -> float:
    """The request's clock (epoch seconds): decay is measured from here."""
    return job.recommender.clock()


def user_vector(job: RecJob) -> np.ndarray | None:
    """The stored ALS vector, or one folded in from the user's events when they are newer than it."""
    newest = job.history.newest()
    if job.stored_factor is not None and (newest is None or (job.factor_at or 0.0) >= newest):
        return job.stored_factor
    return fold_in(job)


def fold_in(job: RecJob) -> np.ndarray | None:
    """A user vector from the user's decayed item totals against the active item factors."""
    assert job.model is not None
    h, model = job.history, job.model
    names, totals = signals.item_totals(
        h.items, h.weights, h.timestamps, now=now(job), half_life_days=job.config.half_life_days
    )
    known = [(model.item_index[str(n)], t) for n, t in zip(names, totals, strict=True) if str(n) in model.item_index]
    if not known:
        return None
    idx = np.array([i for i, _ in known], dtype=np.int64)
    conf = np.array([c for _, c in known], dtype=np.float64)
    vector = fold_in_vector(
        model.item_factors, model.yty, idx, conf, alpha=model.alpha, regularization=model.regularization
    )
    return vector if np.any(vector) else None


async def collaborative(job: RecJob, query: CandidateQuery, memo: Memo) -> None:
    """Items by inner product with the user's ALS vector (HNSW)."""
    if job.model is not None:
        query.user_vector = user_vector(job)


async def linked(job: RecJob, query: CandidateQuery, memo: Memo, source: Source) -> None:
    """A link source: its seed items (`signals.seeds`) join `item_links` in the one aggregate."""
    items, weights = signals.seeds(source, job.history, job.config, now=now(job))
    query.seeds += [(source.value, str(i), float(w)) for i, w in zip(items, weights, strict=True)]
    query.title_items |= {str(i) for i in items}
    if SPECS[source].combine == "max":
        query.max_sources.add(source.value)


async def co_occurrence(job: RecJob, query: CandidateQuery, memo: Memo) -> None:
    """Items linked (EASE/cosine) to the user's strongest items: Σ item total x link weight."""
    await linked(job, query, memo, Source.CO_OCCURRENCE)


async def sequential(job: RecJob, query: CandidateQuery, memo: Memo) -> None:
    """Items that came next after the user's latest items in others' histories."""
    await linked(job, query, memo, Source.SEQUENTIAL)


async def item_neighbors(job: RecJob, query: CandidateQuery, memo: Memo) -> None:
    """Embedding neighbours of the user's latest items (best anchor)."""
    await linked(job, query, memo, Source.ITEM_NEIGHBORS)


async def factor_neighbors(job: RecJob, query: CandidateQuery, memo: Memo) -> None:
    """ALS item-factor neighbours of the user's latest items (best anchor)."""
    await linked(job, query, memo, Source.FACTOR_NEIGHBORS)


async def content(job: RecJob, query: CandidateQuery, memo: Memo) -> None:
    """Items by cosine to the mean embedding of the user's strongest items (HNSW)."""
    h, cfg = job.history, job.config
    items, _ = signals.strongest(
        h.items, h.weights, h.timestamps, now=now(job), half_life_days=cfg.half_life_days, n=cfg.link_items
    )
    query.profile_items = [str(i) for i in items]


async def popular(job: RecJob, query: CandidateQuery, memo: Memo) -> None:
    """Most engaged-with items of all time (a list shared by the process for a few seconds)."""
    await _engagement(job, query, memo, Source.POPULAR, None)


async def trending(job: RecJob, query: CandidateQuery, memo: Memo) -> None:
    """Most engaged-with items in the trending window before now."""
    await _engagement(job, query, memo, Source.TRENDING, round(job.config.trending_window_days * 24))


async def _engagement(job: RecJob, query: CandidateQuery, memo: Memo, source: Source, hours: int | None) -> None:
    f = job.filters
    if f.exclude_user is not None and f.shared:  # a long history: the statement's anti-join filters the list
        query.listed[source.value] = await job.recommender.shared_list(job.repo, f, hours)
        return
    memo[source.value] = await job.recommender.engagement(job.repo, f=f, k=job.depth, window_hours=hours)


SERVING: dict[Source, PlanFn] = {
    Source.COLLABORATIVE: collaborative,
    Source.CO_OCCURRENCE: co_occurrence,
    Source.SEQUENTIAL: sequential,
    Source.CONTENT: content,
    Source.ITEM_NEIGHBORS: item_neighbors,
    Source.FACTOR_NEIGHBORS: factor_neighbors,
    Source.POPULAR: popular,
    Source.TRENDING: trending,
}


def available(job: RecJob, source: Source) -> bool:
    """Whether the job has what the source needs (a personal history; an active model for its tables)."""
    needs = SPECS[source].needs
    if Need.HISTORY in needs and job.fallback is not None:
        return False
    return not ((Need.FACTORS in needs or Need.LINKS in needs) and job.model is None)


async def gather(job: RecJob) -> tuple[dict[str, list[Candidate]], dict[str, tuple[str, str]]]:
    """Candidates of every source the blend weighs (one statement), and the titles of possible anchors."""
    model = job.model
    query = CandidateQuery(model.version_id if model else None, model.dim if model else 0, job.depth)
    memo: Memo = {}
    for source in Source:
        if job.wants(source) and available(job, source):
            await SERVING[source](job, query, memo)
    rows = await job.repo.candidates(query, job.filters)
    sources = rows.sources | memo
    if model is not None and query.user_vector is not None and job.filters.exact:  # narrow rules: ranked here
        sources[Source.COLLABORATIVE.value] = (
            nearest_factors(model, rows.matching, query.user_vector, query.k)
            if rows.matching is not None
            else await job.repo.collaborative_exact(query, job.filters)
        )
    return sources, rows.titles


def nearest_factors(model: ActiveModel, ids: list[str], vector: np.ndarray, k: int) -> list[Candidate]:
    """The `k` of `ids` with the largest inner product with `vector` under the model's item factors, exactly
    (what the HNSW index approximates; ids without factors have no collaborative score)."""
    known = [(cid, model.item_index[cid]) for cid in ids if cid in model.item_index]
    if not known:
        return []
    rows = np.fromiter((i for _, i in known), dtype=np.int64, count=len(known))
    scores = model.item_factors[rows] @ np.asarray(vector, dtype=np.float32)
    k = min(k, len(known))
    part = np.argpartition(-scores, k - 1)[:k]
    return [Candidate(known[i][0], float(scores[i])) for i in part[np.argsort(-scores[part], kind="stable")]]
