"""The SERVED row of `recengine evaluate`: the real recommendation service, in process, on a scratch
database that holds only the training split.

Import (the catalog with the evaluation's own embeddings, the training events) -> `train` with the
configuration the evaluation chose -> `recommend()` for every evaluated user. The service's clock
is set to the end of the training data, as if it were serving right after the split.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from app import migrate
from app.config import AuthMode, Settings
from app.db import SessionFactory, resolve_database_url
from app.ml.embeddings import MODEL_NAME, content_text, text_hash
from app.ml.evaluation import ServedInput
from app.repositories import bulk
from app.repositories.content import ContentRepository
from app.repositories.users import UserRepository
from app.services.recommendations import RecRequest, recommend

SCRATCH_DATABASE = "recengine_served_eval"
BATCH = 20_000


async def scratch_database(settings: Settings, name: str = SCRATCH_DATABASE) -> str:
    """A freshly created and migrated database next to the configured (or embedded) one; its URL."""
    url = make_url(resolve_database_url(settings))
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    scratch = url.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(scratch)
    return scratch


async def drop_database(settings: Settings, name: str = SCRATCH_DATABASE) -> None:
    """Remove the scratch database."""
    admin = create_async_engine(make_url(resolve_database_url(settings)), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def load(sessions: SessionFactory, inp: ServedInput) -> None:
    """The catalog (with its embeddings) and the training events, through the bulk paths."""
    rows = [_content(str(cid), inp.item_texts.get(str(cid), str(cid))) for cid in inp.item_ids]
    async with sessions() as session:
        repo = ContentRepository(session)
        for start in range(0, len(rows), 1000):
            await repo.upsert_many(rows[start : start + 1000])
        embeddings = [
            (r["content_id"], vec, MODEL_NAME, text_hash(content_text(r["title"], None, [])))
            for r, vec in zip(rows, inp.vectors, strict=True)
        ]
        for start in range(0, len(embeddings), 1000):
            await repo.set_embeddings(embeddings[start : start + 1000])
        await UserRepository(session).ensure_exist(sorted({str(u) for u in inp.user_ids}))
        await session.commit()
    for start in range(0, inp.user_ids.size, BATCH):
        async with sessions() as session:
            await bulk.copy_events(session, list(_events(inp, start, start + BATCH)))
            await session.commit()


def _content(content_id: str, text_value: str) -> dict[str, Any]:
    return {
        "content_id": content_id,
        "title": text_value[:500] or content_id,
        "description": None,
        "content_type": "video",
        "status": "published",
        "category": None,
        "tags": [],
        "metadata": {},
        "published_at": None,
    }


def _events(inp: ServedInput, start: int, stop: int) -> Any:
    for user, item, kind, value, ts in zip(
        inp.user_ids[start:stop],
        inp.event_items[start:stop],
        inp.event_types[start:stop],
        inp.values[start:stop],
        inp.timestamps[start:stop],
        strict=True,
    ):
        at = datetime.fromtimestamp(int(ts), UTC)
        rating = None if np.isnan(value) else float(value)
        yield (uuid.uuid4(), str(user), str(item), str(kind), rating, at, None, None, None, "{}")


async def served_top(settings: Settings, inp: ServedInput) -> list[list[str]]:
    """Every evaluated user's top-n from `recommend()` on a scratch database holding only the training split."""
    from app.main import build_state, close_state
    from app.ml.training import train

    url = await scratch_database(settings)
    scratch = settings.model_copy(update={"database_url": url, "redis_url": None, "auth": AuthMode.DISABLED})
    state = await build_state(scratch)
    try:
        await load(state.sessions, inp)
        report = await train(state.sessions, state.settings, config=inp.config, force=True, now=inp.now)
        if not report.activated:
            raise RuntimeError(f"served evaluation: training did not activate a model ({report.reason})")
        state.recommender.clock = lambda: inp.now
        state.recommender.forget_model()
        out = []
        for user in inp.users:
            result = await recommend(state.recommender, RecRequest(user_id=user, count=inp.n), request_id="served")
            out.append([item.content_id for item in result.items])
        return out
    finally:
        await close_state(state)
        await drop_database(settings)
