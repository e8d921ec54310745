"""The all-time popular list from the stored snapshot plus the events it did not see equals a recount.

Whatever happens between and after refreshes (new and repeated engagement, back-dated events, a user
opting out of or into data sharing, an erasure, an event type whose weight changes sign), the served
list must equal distinct engaged users per item counted from the rows as they are now.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from app.context import AppState
from app.repositories import popularity
from app.repositories.retrieval import Filters, RetrievalRepository
from app.services import events as event_service
from app.services import users as user_service
from tests.conftest import EMPTY_SNAPSHOT, SEED_TYPES

USERS = [f"u{i}" for i in range(4)]
ITEMS = [f"i{i}" for i in range(5)]
NOW = datetime(2026, 11, 1, tzinfo=UTC)

STEP = st.one_of(
    st.tuples(
        st.just("event"),
        st.sampled_from(USERS),
        st.sampled_from(ITEMS),
        st.sampled_from(["view", "like", "dislike"]),
        st.integers(0, 400),  # hours before NOW: late and back-dated events alike
    ),
    st.tuples(st.just("refresh")),
    st.tuples(st.just("privacy"), st.sampled_from(USERS), st.booleans()),
    st.tuples(st.just("erase"), st.sampled_from(USERS)),
    st.tuples(st.just("weight"), st.sampled_from([-1.0, 1.0])),  # the 'view' type flips sign
)


async def _reset(state: AppState) -> None:
    async with state.sessions() as session:
        await session.execute(text("TRUNCATE events, event_keys, users, popularity_snapshot CASCADE"))
        await session.execute(text("TRUNCATE event_types"))
        await session.execute(text(SEED_TYPES))
        await session.execute(text(EMPTY_SNAPSHOT))
        await session.execute(
            text(
                "INSERT INTO content (content_id, title, content_type, status) "
                "SELECT i, i, 'video', 'published' FROM unnest(CAST(:items AS text[])) AS i ON CONFLICT DO NOTHING"
            ),
            {"items": ITEMS},
        )
        await session.commit()


async def _event(state: AppState, user: str, item: str, kind: str, hours: int) -> None:
    async with state.sessions() as session:
        await session.execute(text("INSERT INTO users (user_id) VALUES (:u) ON CONFLICT DO NOTHING"), {"u": user})
        await session.execute(
            text(
                "INSERT INTO events (event_id, user_id, content_id, event_type, timestamp) "
                "VALUES (gen_random_uuid(), :u, :c, :t, :ts)"
            ),
            {"u": user, "c": item, "t": kind, "ts": NOW - timedelta(hours=hours)},
        )
        await session.commit()


async def _apply(state: AppState, step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "event":
        await _event(state, *step[1:])
        return
    async with state.sessions() as session:
        if kind == "refresh":
            await popularity.refresh(session)
        elif kind == "weight":
            await event_service.set_event_type_weight(session, event_type="view", weight=step[1])
        else:
            known = await session.scalar(text("SELECT count(*) FROM users WHERE user_id = :u"), {"u": step[1]})
            if not known:
                return
            if kind == "privacy":
                await user_service.update_privacy(
                    session, state.cache, user_id=step[1], data_sharing=step[2], personalization=None
                )
            else:
                await user_service.delete_user(session, state.cache, user_id=step[1])


async def _recount(state: AppState) -> list[tuple[str, float]]:
    """Distinct engaged users per item, counted in Python from the rows as they are."""
    async with state.sessions() as session:
        weights = dict((await session.execute(text("SELECT name, weight FROM event_types"))).tuples().all())
        sharing = {
            u: s
            for u, s in await session.execute(
                text("SELECT user_id, coalesce((privacy_settings->>'data_sharing')::boolean, true) FROM users")
            )
        }
        rows = (await session.execute(text("SELECT user_id, content_id, event_type FROM events"))).all()
    engaged: dict[str, set[str]] = defaultdict(set)
    for user, item, kind in rows:
        if weights[kind] > 0 and sharing[user]:
            engaged[item].add(user)
    return sorted(((item, float(len(us))) for item, us in engaged.items()), key=lambda r: (-r[1], r[0]))


async def _served(state: AppState) -> list[tuple[str, float]]:
    async with state.sessions() as session:
        found = await RetrievalRepository(session).popular(f=Filters(), k=len(ITEMS))
    return [(c.item_id, c.score) for c in found]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(steps=st.lists(STEP, min_size=1, max_size=14))
async def test_snapshot_plus_unseen_events_equals_a_recount(state: AppState, steps: list[tuple[Any, ...]]) -> None:
    await _reset(state)
    for step in steps:
        await _apply(state, step)
        assert await _served(state) == await _recount(state), step


async def test_a_refresh_moves_counted_events_into_the_snapshot(state: AppState) -> None:
    await _reset(state)
    for user in USERS[:3]:
        await _event(state, user, "i1", "like", 5)
    await _event(state, USERS[0], "i2", "view", 1)
    async with state.sessions() as session:
        assert await popularity.never_refreshed(session)
        await popularity.refresh(session)
        assert not await popularity.never_refreshed(session)
        stored = dict((await session.execute(text("SELECT content_id, users FROM popularity_snapshot"))).tuples().all())
    assert stored == {"i1": 3, "i2": 1}
    await _event(state, USERS[3], "i2", "like", 300)  # back-dated, written after the snapshot
    await _event(state, USERS[0], "i2", "like", 0)  # a pair the snapshot counted already
    assert await _served(state) == [("i1", 3.0), ("i2", 2.0)]


async def test_opting_out_after_a_refresh_takes_the_user_out_at_once(state: AppState) -> None:
    await _reset(state)
    await _event(state, "u0", "i1", "like", 2)
    await _event(state, "u1", "i1", "like", 2)
    async with state.sessions() as session:
        await popularity.refresh(session)
    async with state.sessions() as session:
        await user_service.update_privacy(session, state.cache, user_id="u0", data_sharing=False, personalization=None)
    assert await _served(state) == [("i1", 1.0)]
    async with state.sessions() as session:
        await user_service.delete_user(session, state.cache, user_id="u1")
    assert await _served(state) == []
    async with state.sessions() as session:
        await user_service.update_privacy(session, state.cache, user_id="u0", data_sharing=True, personalization=None)
    assert await _served(state) == [("i1", 1.0)]


async def test_training_refreshes_the_snapshot(ml_state: AppState) -> None:
    async with ml_state.sessions() as session:
        assert not await popularity.never_refreshed(session)
        count = await session.scalar(text("SELECT count(*) FROM popularity_snapshot"))
    assert count and count > 100
