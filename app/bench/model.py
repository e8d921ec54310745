"""Train ALS on the generated events (timed) and store it as the active version (factor index timed)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import text

from app.bench import load, synth
from app.config import Settings
from app.db import SessionFactory
from app.ml.als import ALSModel
from app.ml.gate import EventArrays
from app.ml.links import LinkRow
from app.ml.serving import default_config
from app.ml.signals import event_weights
from app.ml.training import fit, interactions, link_embeddings, link_tables
from app.repositories import bulk, popularity
from app.repositories.event_types import EventTypeRepository
from app.repositories.links import LinkRepository, vacuum_links
from app.repositories.model_versions import ModelVersionRepository


@dataclass
class TrainTiming:
    """Seconds spent per step of the bench training."""

    arrays_s: float
    fit_s: float
    store_s: float
    factor_index_s: float
    events: int
    popularity_s: float = 0.0  # the popularity snapshot (app.repositories.popularity.refresh)


def event_arrays(spec: synth.Spec, weights: dict[str, float]) -> EventArrays:
    """The generated events as training arrays (regenerated deterministically, no database read)."""
    users, items, w, ts = [], [], [], []
    for part in synth.event_chunks(spec):
        users.append(np.array(synth.user_id(part.user), dtype=object))
        items.append(np.array(synth.content_id(part.item), dtype=object))
        w.append(event_weights(part.types, part.value, weights).astype(np.float32))
        ts.append(part.ts)
    return EventArrays(np.concatenate(users), np.concatenate(items), np.concatenate(w), np.concatenate(ts))


async def train_and_activate(sessions: SessionFactory, settings: Settings, spec: synth.Spec) -> TrainTiming:
    """Fit on the generated events, store factors by COPY, build the factor HNSW index, activate."""
    started = time.perf_counter()
    async with sessions() as session:
        weights = await EventTypeRepository(session).weights()
    arrays = event_arrays(spec, weights)
    arrays_s = time.perf_counter() - started
    started = time.perf_counter()
    config = default_config()
    inter = interactions(arrays, config, now=time.time())
    model, _ = fit(arrays, config, seed=settings.training_seed, inter=inter)
    fit_s = time.perf_counter() - started
    embedded = await link_embeddings(sessions)
    links, _stats = link_tables(arrays, inter, model, embedded, config)
    store_s, index_s = await _store(sessions, model, arrays.user_ids.size, links)
    started = time.perf_counter()
    async with sessions() as session:
        await popularity.refresh(session)
    popularity_s = time.perf_counter() - started
    return TrainTiming(
        round(arrays_s, 3),
        round(fit_s, 3),
        round(store_s, 3),
        round(index_s, 3),
        int(arrays.user_ids.size),
        round(popularity_s, 3),
    )


def fit_only(weights: dict[str, float], settings: Settings, spec: synth.Spec) -> TrainTiming:
    """Time the fit alone (the data set and its active model are already stored)."""
    started = time.perf_counter()
    arrays = event_arrays(spec, weights)
    arrays_s = time.perf_counter() - started
    started = time.perf_counter()
    fit(arrays, default_config(), seed=settings.training_seed)
    return TrainTiming(round(arrays_s, 3), round(time.perf_counter() - started, 3), 0.0, 0.0, int(arrays.user_ids.size))


async def _store(sessions: SessionFactory, model: ALSModel, events: int, links: list[LinkRow]) -> tuple[float, float]:
    started = time.perf_counter()
    async with sessions() as session:
        repo = ModelVersionRepository(session)
        version = await repo.add(
            kind="als", params=default_config().to_params(), stats={"events": events, "bench": True}
        )
        await bulk.copy_factors(session, "item_factors", "content_id", version.id, model.item_ids, model.item_factors)
        await repo.write_user_factors(version.id, model.user_ids, model.user_factors)
        await LinkRepository(session).write(version.id, links)
        store_s = time.perf_counter() - started
        started = time.perf_counter()
        for setting in load.INDEX_BUILD:
            await session.execute(text(setting))
        # same DDL as ModelVersionRepository.write_item_factors, timed on its own here
        await repo.write_item_factors(version.id, [], np.zeros((0, model.item_factors.shape[1]), dtype=np.float32))
        index_s = time.perf_counter() - started
        await repo.activate(version)
        await session.commit()
    started = time.perf_counter()
    await vacuum_links(sessions.kw["bind"])  # as training does: index-only reads of the links
    return store_s, index_s + time.perf_counter() - started
