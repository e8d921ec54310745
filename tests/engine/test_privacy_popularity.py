"""Users who do not share data are left out of popularity and trending, in SQL and in batch alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import text

from app.context import AppState
from app.ml import batch, signals
from app.ml.protocol import index_data
from app.repositories.retrieval import Filters, RetrievalRepository
from app.services.evaluation_data import eval_data_from_db

CONTENT = "mutation($i: ContentInput!) { upsertContent(input: $i) { id } }"


async def test_opted_out_users_do_not_make_items_popular(state: AppState) -> None:
    now = datetime.now(UTC)
    events = [("fan", "shared")] + [(f"hidden{i}", "private") for i in range(3)]
    async with state.sessions() as session:
        await session.execute(
            text(
                "INSERT INTO content (content_id, title, content_type, status) "
                "VALUES ('shared', 'Shared', 'video', 'published'), ('private', 'Private', 'video', 'published')"
            )
        )
        for user, item in events:
            await session.execute(
                text(
                    "INSERT INTO users (user_id, privacy_settings) VALUES (:u, CAST(:p AS jsonb)) "
                    "ON CONFLICT DO NOTHING"
                ),
                {"u": user, "p": '{"data_sharing": %s, "personalization": true}' % str(user == "fan").lower()},
            )
            await session.execute(
                text(
                    "INSERT INTO events (event_id, user_id, content_id, event_type, timestamp) "
                    "VALUES (gen_random_uuid(), :u, :c, 'like', :t)"
                ),
                {"u": user, "c": item, "t": now - timedelta(hours=1)},
            )
        await session.commit()
        repo = RetrievalRepository(session)
        popular = await repo.popular(f=Filters(), k=10)
        trending = await repo.trending(f=Filters(), k=10, window_hours=24, now=now)
    assert [c.item_id for c in popular] == ["shared"] and [c.item_id for c in trending] == ["shared"]
    indexed = index_data(await eval_data_from_db(state.sessions))
    history = indexed.history(np.ones(indexed.users.size, dtype=bool))
    counts = signals.popularity(history.users, history.items, history.n_items)
    by_item = dict(zip(indexed.item_ids.tolist(), counts.tolist(), strict=True))
    assert by_item == {"private": 0.0, "shared": 1.0}
    idx, _ = batch.trending(history, 5, window_days=1.0, now=now.timestamp())
    assert {str(indexed.item_ids[i]) for i in idx.ravel() if i >= 0} <= {"shared"}
