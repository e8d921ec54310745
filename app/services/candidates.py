"""Candidate retrieval for a request: one function per registry source, each taking the `RecJob`.

`SERVING` maps every `Source` to its function (a test asserts it covers the registry). The
math of each source is `app.ml.signals`'s; the SQL lives in `RetrievalRepository`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import numpy as np

from app.ml import signals
from app.ml.als import fold_in_vector
from app.ml.hybrid import Candidate
from app.ml.sources import SPECS, Need, Source
from app.repositories.model_versions import ModelVersionRepository
from app.services.request import RecJob

SourceFn = Callable[[RecJob], Awaitable[list[Candidate]]]


def _now() -> float:
    """The request's clock (epoch seconds): decay is measured from here."""
    return time.time()


def strongest_items(job: RecJob) -> tuple[np.ndarray, np.ndarray]:
    """The user's strongest items and their decayed totals (co-engagement and the profile start here)."""
    h, cfg = job.history, job.config
    return signals.strongest(
        h.items, h.weights, h.timestamps, now=_now(), half_life_days=cfg.half_life_days, n=cfg.link_items
    )


def anchor_items(job: RecJob) -> list[str]:
    """The user's latest distinct positive items (anchors of the neighbour sources)."""
    return [str(i) for i in signals.anchors(job.history.items, job.history.weights, job.config.anchor_items)]


async def collaborative(job: RecJob) -> list[Candidate]:
    """Items by inner product with the user's ALS vector (stored, or folded in from newer events)."""
    if job.model is None:
        return []
    vector = await user_vector(job)
    if vector is None:
        return []
    return await job.repo.collaborative(vector, version=job.model.version_id, f=job.filters, k=job.depth)


async def user_vector(job: RecJob) -> np.ndarray | None:
    """The stored ALS vector, folded in again (and stored) when the user has events newer than it."""
    assert job.model is not None
    repo = ModelVersionRepository(job.session)
    stored = await repo.user_factor(job.model.version_id, job.request.user_id)
    newest = job.history.newest()
    if stored is not None and (newest is None or stored[1].timestamp() >= newest):
        return stored[0]
    vector = fold_in(job)
    if vector is None:
        return None
    await repo.upsert_user_factor(job.model.version_id, job.request.user_id, vector)
    await job.session.commit()
    return vector


def fold_in(job: RecJob) -> np.ndarray | None:
    """A user vector from the user's decayed item totals against the active item factors."""
    assert job.model is not None
    h, model = job.history, job.model
    names, totals = signals.item_totals(
        h.items, h.weights, h.timestamps, now=_now(), half_life_days=job.config.half_life_days
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


async def co_occurrence(job: RecJob) -> list[Candidate]:
    """Items linked to the user's strongest items: sum of item total x link weight."""
    if job.model is None:
        return []
    names, totals = strongest_items(job)
    items = {str(n): float(t) for n, t in zip(names, totals, strict=True)}
    return await job.repo.co_occurrence(items, version=job.model.version_id, f=job.filters, k=job.depth)


async def sequential(job: RecJob) -> list[Candidate]:
    """Items that followed the user's latest items in others' histories (not trained yet: none)."""
    return []


async def content(job: RecJob) -> list[Candidate]:
    """Items by cosine to the user's content profile."""
    names, totals = strongest_items(job)
    vectors = await job.repo.embeddings([str(n) for n in names])
    keep = [i for i, n in enumerate(names) if str(n) in vectors]
    if not keep:
        return []
    mat = np.vstack([vectors[str(names[i])] for i in keep])
    vector = signals.profile(mat, totals[keep])
    if not np.any(vector):
        return []
    return await job.repo.by_embedding(vector, f=job.filters, k=job.depth)


async def item_neighbors(job: RecJob) -> list[Candidate]:
    """Embedding neighbours of the user's anchor items."""
    return await job.repo.embedding_neighbors(anchor_items(job), f=job.filters, k=job.request.count * 2)


async def factor_neighbors(job: RecJob) -> list[Candidate]:
    """ALS item-factor neighbours of the user's anchor items."""
    if job.model is None:
        return []
    return await job.repo.factor_neighbors(
        anchor_items(job), version=job.model.version_id, dim=job.model.dim, f=job.filters, k=job.request.count * 2
    )


async def popular(job: RecJob) -> list[Candidate]:
    """Most engaged-with items of all time."""
    return await job.recommender.engagement(job.repo, f=job.filters, k=job.depth, window_hours=None)


async def trending(job: RecJob) -> list[Candidate]:
    """Most engaged-with items in the trending window before now."""
    hours = round(job.config.trending_window_days * 24)
    return await job.recommender.engagement(job.repo, f=job.filters, k=job.depth, window_hours=hours)


SERVING: dict[Source, SourceFn] = {
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
    """Whether the job has what the source needs (a personal history, an active model)."""
    needs = SPECS[source].needs
    if Need.HISTORY in needs and job.fallback is not None:
        return False
    return not ({Need.FACTORS, Need.LINKS} & needs and job.model is None and Need.EMBEDDINGS not in needs)


async def gather(job: RecJob) -> dict[str, list[Candidate]]:
    """Candidates of every source the blend weighs."""
    out: dict[str, list[Candidate]] = {}
    for source in Source:
        if job.wants(source) and available(job, source):
            out[source.value] = await SERVING[source](job)
    return out
