"""`recengine train`: embed what is missing, fit ALS, store factors, gate and activate."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.config import Settings
from app.db import SessionFactory
from app.ml import links
from app.ml.als import ALSModel, Interactions, build_interactions
from app.ml.batch import History
from app.ml.embeddings import MODEL_NAME, content_text, get_embedder, text_hash
from app.ml.gate import EventArrays, FactorModel, holdout_ndcg
from app.ml.links import LinkRow
from app.ml.serving import ServingConfig, default_config
from app.ml.signals import event_weights
from app.ml.sources import LINK_SOURCES, Source
from app.models import ModelVersion
from app.repositories import bulk, popularity
from app.repositories.content import ContentRepository
from app.repositories.event_types import EventTypeRepository
from app.repositories.links import LinkRepository, vacuum_links
from app.repositories.model_versions import ModelVersionRepository

logger = logging.getLogger(__name__)
TrainProgress = Callable[[str, int, int], None]
GATE_METRIC = "ndcg@10"


@dataclass
class TrainReport:
    """What a training run did."""

    version_id: int | None = None
    activated: bool = False
    reason: str = ""
    embedded: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


async def embed_missing(sessions: SessionFactory, settings: Settings, *, step: TrainProgress | None = None) -> int:
    """Embed items whose text changed since their last embedding (or that have none)."""
    async with sessions() as session:
        rows = await ContentRepository(session).list_for_embedding()
    todo = [(c.content_id, content_text(c.title, c.description, c.tags)) for c in rows]
    todo = [(cid, txt) for (cid, txt), c in zip(todo, rows, strict=True) if c.embedding_hash != text_hash(txt)]
    embedder = get_embedder(settings.embedding_batch_size)
    chunk = settings.embedding_batch_size * 8
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        vectors = await asyncio.to_thread(embedder.encode, [t for _, t in part])
        async with sessions() as session:
            await ContentRepository(session).set_embeddings(
                [(cid, vec, MODEL_NAME, text_hash(txt)) for (cid, txt), vec in zip(part, vectors, strict=True)]
            )
            await session.commit()
        if step:
            step("embed", min(start + chunk, len(todo)), len(todo))
    return len(todo)


async def load_events(sessions: SessionFactory) -> EventArrays:
    """Training events (users who share data only) with their weights."""
    async with sessions() as session:
        rows = await bulk.fetch_training_events(session)
        weights = await EventTypeRepository(session).weights()
    if not rows:
        empty = np.array([], dtype=object)
        return EventArrays(empty, empty, np.array([], dtype=np.float32), np.array([], dtype=np.float64))
    users = np.array([r[0] for r in rows], dtype=object)
    items = np.array([r[1] for r in rows], dtype=object)
    types = np.array([r[2] for r in rows], dtype=object)
    values = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64)
    times = np.array([r[4] for r in rows], dtype=np.float64)
    return EventArrays(users, items, event_weights(types, values, weights).astype(np.float32), times)


def interactions(events: EventArrays, config: ServingConfig, *, now: float) -> Interactions:
    """The weighted users x items matrix of the training events, decayed from the run's clock `now`."""
    return build_interactions(
        events.user_ids,
        events.item_ids,
        events.weights,
        events.timestamps,
        half_life_days=config.half_life_days,
        now=now,
    )


def fit(
    events: EventArrays,
    config: ServingConfig,
    *,
    seed: int,
    inter: Interactions | None = None,
) -> tuple[ALSModel, dict[str, Any]]:
    """Fit ALS with the configuration's hyper-parameters on the weighted, decayed interactions."""
    started = time.perf_counter()
    inter = inter if inter is not None else interactions(events, config, now=time.time())
    als = config.als
    model = ALSModel(
        factors=als.factors,
        regularization=als.regularization,
        alpha=als.alpha,
        iterations=als.iterations,
        random_state=seed,
    )
    model.fit(inter)
    stats = {
        "events": int(events.user_ids.size),
        "users": len(inter.user_ids),
        "items": len(inter.item_ids),
        "interactions": int(inter.matrix.nnz),
        "fit_seconds": round(time.perf_counter() - started, 3),
    }
    return model, stats


async def link_embeddings(sessions: SessionFactory) -> tuple[list[str], np.ndarray]:
    """The stored embeddings the embedding-neighbour table is built from; none past `COSINE_MAX_ITEMS`
    items, where that table is not built (a million vectors cost gigabytes to load for nothing)."""
    async with sessions() as session:
        repo = LinkRepository(session)
        if await repo.embedded_count() > links.COSINE_MAX_ITEMS:
            return [], np.zeros((0, 0), dtype=np.float32)
        return await repo.embeddings()


def link_tables(
    events: EventArrays,
    inter: Interactions,
    model: ALSModel,
    embedded: tuple[list[str], np.ndarray],
    config: ServingConfig,
) -> tuple[list[LinkRow], dict[str, Any]]:
    """Every neighbour table the configuration uses, as `item_links` rows, and what was built."""
    wanted = config.used_sources() & set(LINK_SOURCES)
    rows: list[LinkRow] = []
    stats: dict[str, Any] = {}
    if Source.CO_OCCURRENCE in wanted:
        table, stats["links"] = links.co_engagement(inter.matrix, config.links)
        rows += links.to_rows(Source.CO_OCCURRENCE, table, inter.item_ids)
    if Source.FACTOR_NEIGHBORS in wanted:
        table = links.cosine_neighbors(model.item_factors, config.links.factor_neighbors)
        rows += links.to_rows(Source.FACTOR_NEIGHBORS, table, model.item_ids)
    if Source.ITEM_NEIGHBORS in wanted:
        ids, vectors = embedded
        rows += links.to_rows(
            Source.ITEM_NEIGHBORS, links.cosine_neighbors(vectors, config.links.embedding_neighbors), ids
        )
    if Source.SEQUENTIAL in wanted:
        table = links.sequential(sequence_history(events, inter), config.links.sequential_neighbors)
        rows += links.to_rows(Source.SEQUENTIAL, table, inter.item_ids)
    stats["link_rows"] = {s.value: sum(r[0] == s.value for r in rows) for s in sorted(wanted)}
    return rows, stats


def sequence_history(events: EventArrays, inter: Interactions) -> History:
    """The training events in the interactions' index space (for the sequential table)."""
    users, items = inter.user_index(), inter.item_index()
    return History(
        len(inter.user_ids),
        len(inter.item_ids),
        np.fromiter((users[str(u)] for u in events.user_ids), dtype=np.int64, count=events.user_ids.size),
        np.fromiter((items[str(i)] for i in events.item_ids), dtype=np.int64, count=events.item_ids.size),
        np.asarray(events.weights, dtype=np.float64),
        np.asarray(events.timestamps, dtype=np.float64),
    )


async def active_model(sessions: SessionFactory) -> tuple[ModelVersion, FactorModel] | None:
    """The active version and its factors, or None."""
    async with sessions() as session:
        repo = ModelVersionRepository(session)
        active = await repo.get_active()
        if active is None:
            return None
        ids, factors = await repo.item_factors(active.id)
    als = ServingConfig.from_params(active.params).als
    return active, FactorModel(ids, factors, als.alpha, als.regularization)


def gate(candidate: FactorModel, incumbent: FactorModel | None, events: EventArrays) -> tuple[dict[str, float], bool]:
    """Both models' holdout metrics, and whether the candidate is at least as good."""
    metrics = holdout_ndcg(candidate, events)
    if incumbent is None:
        return metrics, True
    active_score = holdout_ndcg(incumbent, events)[GATE_METRIC]
    metrics["active_ndcg@10"] = active_score
    return metrics, metrics[GATE_METRIC] >= active_score


async def train(
    sessions: SessionFactory,
    settings: Settings,
    *,
    config: ServingConfig | None = None,
    force: bool = False,
    seed: int | None = None,
    now: float | None = None,
    step: TrainProgress | None = None,
) -> TrainReport:
    """The whole job: embed, fit, store (with the serving configuration), gate, activate.

    Decay is measured from `now` (default: the run's wall clock)."""
    config = config or default_config()
    seed = settings.training_seed if seed is None else seed
    report = TrainReport(embedded=await embed_missing(sessions, settings, step=step))
    events = await load_events(sessions)
    if events.user_ids.size == 0:
        report.reason = "no events to train on"
        return report
    if step:
        step("fit", 0, 1)
    inter = await asyncio.to_thread(interactions, events, config, now=time.time() if now is None else now)
    model, report.stats = await asyncio.to_thread(fit, events, config, seed=seed, inter=inter)
    if step:
        step("fit", 1, 1)
        step("links", 0, 1)
    embedded = await link_embeddings(sessions)
    rows, link_stats = await asyncio.to_thread(link_tables, events, inter, model, embedded, config)
    report.stats |= link_stats
    if step:
        step("links", 1, 1)
    candidate = FactorModel(model.item_ids, model.item_factors, model.alpha, model.regularization)
    incumbent = await active_model(sessions)
    report.metrics, better = await asyncio.to_thread(gate, candidate, incumbent[1] if incumbent else None, events)
    params = config.to_params() | {"random_state": seed}
    report.version_id = await _store(sessions, model, rows, report, params)
    await vacuum_links(sessions.kw["bind"])
    async with sessions() as session:  # popularity is recounted with every training, activated or not
        await popularity.refresh(session)
    report.activated = better or force
    report.reason = _reason(incumbent is None, better, force, report.metrics)
    if report.activated:
        await _activate(sessions, report.version_id)
    return report


def _reason(first: bool, better: bool, force: bool, metrics: dict[str, float]) -> str:
    if first:
        return "first model: activated"
    score, active = metrics[GATE_METRIC], metrics.get("active_ndcg@10", 0.0)
    if better:
        return f"ndcg@10 {score:.4f} >= active {active:.4f}: activated"
    if force:
        return f"ndcg@10 {score:.4f} < active {active:.4f}: activated anyway (--force)"
    return f"ndcg@10 {score:.4f} < active {active:.4f}: kept as candidate"


async def _store(
    sessions: SessionFactory,
    model: ALSModel,
    rows: list[LinkRow],
    report: TrainReport,
    params: dict[str, Any],
) -> int:
    async with sessions() as session:
        repo = ModelVersionRepository(session)
        version = await repo.add(kind="als", params=params, stats=report.stats | {"embedded": report.embedded})
        await repo.set_metrics(version.id, report.metrics)
        await repo.write_item_factors(version.id, model.item_ids, model.item_factors)
        await repo.write_user_factors(version.id, model.user_ids, model.user_factors)
        await LinkRepository(session).write(version.id, rows)
        await session.commit()
        return version.id


async def _activate(sessions: SessionFactory, version_id: int) -> None:
    async with sessions() as session:
        repo = ModelVersionRepository(session)
        version = await repo.get_by_id(version_id)
        assert version is not None
        await repo.activate(version)
        await session.commit()
