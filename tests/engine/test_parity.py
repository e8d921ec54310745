"""Parity: every source computed by the service (SQL) and by the batch evaluation (numpy) agrees.

On the MovieLens test slice, a model version is trained with every source weighted; for a sample
of users each source's top 50 from `candidates.gather` (one SQL statement) and from the batch
function of `strategies.BATCH` (reading the same item_links tables and factors) must overlap by
at least 0.9 on average.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from sqlalchemy import text

from app.context import AppState
from app.ml import links, strategies
from app.ml.batch import History
from app.ml.protocol import Indexed, index_data
from app.ml.serving import default_config
from app.ml.sources import LINK_SOURCES, Source
from app.ml.strategies import Fitted, Models
from app.ml.training import train
from app.ml.tuning import variant
from app.repositories.links import LinkRepository
from app.repositories.model_versions import ModelVersionRepository
from app.services import candidates
from app.services.engine import ActiveModel
from app.services.evaluation_data import eval_data_from_db
from app.services.recommendations import RecRequest, build_job

K = 50
USERS = [str(u) for u in range(100, 140)]
EVERY_SOURCE = {s.value: 1.0 for s in Source}


@pytest.fixture(scope="module")
async def parity_model(ml_state: AppState) -> AsyncIterator[tuple[ActiveModel, float]]:
    """A version trained with every source weighted (so every table exists); the active one is restored."""
    base = default_config()
    config = variant(base, half_life_days=None, weights=base.weights | {"hybrid": EVERY_SOURCE})
    async with ml_state.sessions() as session:
        active = await ModelVersionRepository(session).get_active()
        clock = float((await session.execute(text("SELECT extract(epoch FROM max(timestamp)) FROM events"))).scalar())
    assert active is not None
    report = await train(ml_state.sessions, ml_state.settings, config=config, seed=11, force=True, now=clock)
    assert report.version_id is not None
    async with ml_state.sessions() as session:
        repo = ModelVersionRepository(session)
        ids, factors = await repo.item_factors(report.version_id)
        restored = await repo.get_by_id(active.id)
        assert restored is not None
        await repo.activate(restored)
        await session.commit()
    ml_state.recommender.forget_model()
    y = factors.astype(np.float64)
    model = ActiveModel(report.version_id, {c: i for i, c in enumerate(ids)}, factors, y.T @ y, config)
    yield model, clock


async def served_lists(state: AppState, model: ActiveModel, clock: float, source: Source) -> dict[str, list[str]]:
    """Each sample user's top K of one source, as the service retrieves it."""
    previous, state.recommender.clock = state.recommender.clock, lambda: clock
    out = {}
    try:
        for user in USERS:
            async with state.sessions() as session:
                job = await build_job(state.recommender, session, RecRequest(user_id=user), model)
                job.weights = {source.value: 1.0}
                found, _ = await candidates.gather(job)
            ranked = sorted(found.get(source.value, []), key=lambda c: (-c.score, c.item_id))
            out[user] = [c.item_id for c in ranked[:K]]
    finally:
        state.recommender.clock = previous
    return out


async def batch_inputs(state: AppState, model: ActiveModel) -> tuple[Indexed, Fitted]:
    """The database's events in index space, with the version's factors and link tables, for the batch twins."""
    data = await eval_data_from_db(state.sessions)
    indexed = index_data(data)
    pos = {str(c): i for i, c in enumerate(indexed.item_ids)}
    async with state.sessions() as session:
        rows = await session.execute(
            text("SELECT user_id, CAST(factors AS real[]) FROM user_factors WHERE model_version_id = :v"),
            {"v": model.version_id},
        )
        stored = {r[0]: np.asarray(r[1], dtype=np.float32) for r in rows}
        tables = {
            s: links.from_rows(await LinkRepository(session).list_for_source(model.version_id, s), pos)
            for s in LINK_SOURCES
        }
        ids, vectors = await LinkRepository(session).embeddings()
    item_vectors = np.zeros((indexed.item_ids.size, vectors.shape[1]), dtype=np.float32)
    item_vectors[[pos[c] for c in ids]] = vectors
    item_factors = np.zeros((indexed.item_ids.size, model.dim), dtype=np.float32)
    for cid, i in model.item_index.items():
        item_factors[pos[cid]] = model.item_factors[i]
    user_factors = np.zeros((indexed.n_users, model.dim), dtype=np.float32)
    for u, name in enumerate(indexed.user_names):
        user_factors[u] = stored.get(str(name), 0.0)
    history = History(
        indexed.n_users,
        indexed.item_ids.size,
        indexed.users,
        indexed.items,
        indexed.weights,
        indexed.timestamps,
        indexed.user_names,
    )
    fitted = Fitted(history, item_vectors, Models((user_factors, item_factors), tables), model.config, K)
    return indexed, fitted


def overlap(a: list[str], b: list[str]) -> float:
    """Shared share of two top lists (1.0 when both are empty)."""
    if not a and not b:
        return 1.0
    return len(set(a) & set(b)) / max(len(a), len(b))


@pytest.mark.parametrize("source", list(Source), ids=lambda s: s.value)
async def test_sql_and_batch_sources_agree(
    ml_state: AppState, parity_model: tuple[ActiveModel, float], source: Source
) -> None:
    model, clock = parity_model
    served = await served_lists(ml_state, model, clock, source)
    indexed, fitted = await batch_inputs(ml_state, model)
    idx, _val, *_ = strategies.BATCH[source](fitted)
    row_of = {str(name): u for u, name in enumerate(indexed.user_names)}
    scores = []
    for user in USERS:
        row = idx[row_of[user]]
        batch = [str(indexed.item_ids[i]) for i in row[row >= 0][:K]]
        scores.append(overlap(served[user], batch))
    assert any(served.values()), f"{source.value}: the service found no candidates"
    assert np.mean(scores) >= 0.9, (source.value, np.round(scores, 2).tolist())
