"""Evaluation data read from the database (`recengine evaluate --from-db`)."""

from __future__ import annotations

import numpy as np

from app.db import SessionFactory
from app.ml.embeddings import content_text
from app.ml.evaluation import EvalData
from app.repositories import bulk
from app.repositories.content import ContentRepository
from app.repositories.event_types import EventTypeRepository


async def eval_data_from_db(sessions: SessionFactory) -> EvalData:
    """Every event of users who share data, the catalog's texts and the event-type weights."""
    async with sessions() as session:
        rows = await bulk.fetch_training_events(session)
        items = await ContentRepository(session).list_for_embedding()
        table = await EventTypeRepository(session).weights()
    return EvalData(
        user_ids=np.array([r[0] for r in rows], dtype=object),
        item_ids=np.array([r[1] for r in rows], dtype=object),
        timestamps=np.array([r[4] for r in rows], dtype=np.float64),
        values=np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64),
        event_types=np.array([r[2] for r in rows], dtype=object),
        item_texts={c.content_id: content_text(c.title, c.description, c.tags) for c in items},
        type_weights=table,
    )
