"""Read replicas with a real streaming standby: reads go there, a replica outage is never an error, and a
user's own writes are visible to that user even while the replica lags."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from app.bench.standby import Standby
from app.context import AppState
from app.models import User
from tests.conftest import new_key
from tests.scale.conftest import DATABASE, app_with, post

SEED = """mutation { a: upsertContent(input: {id: "c1", title: "Space rocket launch", contentType: VIDEO}) { id }
  b: upsertContent(input: {id: "c2", title: "Moon landing footage", contentType: VIDEO}) { id }
  c: upsertContent(input: {id: "c3", title: "Deep sea creatures", contentType: VIDEO}) { id }
  upsertUser(input: {id: "u1"}) { id } }"""
READS = """{ contents(first: 10) { edges { node { id } } } trending(count: 3) { contentId }
  similarContent(contentId: "c1", count: 2) { contentId } searchContent(query: "moon", mode: TEXT) { content { id } }
  recommendations(userId: "u1", count: 3) { items { contentId } } }"""
LIKE = 'mutation { logEvent(input: {userId: "u1", contentId: "c1", eventType: "like"}) { duplicate } }'
RECS = '{ recommendations(userId: "u1", count: 3) { cached items { contentId } } }'


def reads(target: str) -> float:
    """recengine_db_reads_total{target}."""
    return REGISTRY.get_sample_value("recengine_db_reads_total", {"target": target}) or 0.0


async def test_lag_tolerant_reads_run_on_the_replica(state: AppState, replica: Standby) -> None:
    key = await new_key(state, "admin", "replica-admin")
    async with app_with(state.settings.database_url or "", database_read_urls=replica.url(DATABASE)) as (own, http):
        await post(http, key, SEED)
        replica.catch_up()
        before = reads("replica")
        body = await post(http, key, READS)
        assert "errors" not in body, body
        assert reads("replica") >= before + 4  # contents, trending, similar, search, recommendations
        replica.pause_replay()
        await post(http, key, 'mutation { upsertContent(input: {id: "c9", title: "New", contentType: VIDEO}) { id } }')
        page = await post(http, key, "{ contents(first: 10) { edges { node { id } } } }")
        primary_row = await post(http, key, '{ content(id: "c9") { id } }')
    ids = [e["node"]["id"] for e in page["data"]["contents"]["edges"]]
    assert ids == ["c1", "c2", "c3"]  # read on the paused replica: c9 is not there yet
    assert primary_row["data"]["content"] is None  # content by id reads the replica too
    assert own.reads is not None and all(r.healthy for r in own.reads.replicas)


async def test_replica_down_still_answers(state: AppState, replica: Standby) -> None:
    key = await new_key(state, "admin", "replica-admin")
    async with app_with(state.settings.database_url or "", database_read_urls=replica.url(DATABASE)) as (own, http):
        await post(http, key, SEED)
        replica.stop()
        before = reads("primary")
        body = await post(http, key, READS)
        again = await post(http, key, READS)
        assert own.reads is not None
        assert not own.reads.replicas[0].healthy and not await own.reads.check(own.reads.replicas[0])
    assert "errors" not in body and "errors" not in again, body
    assert [e["node"]["id"] for e in body["data"]["contents"]["edges"]] == ["c1", "c2", "c3"]
    assert reads("primary") >= before + 8  # every read fell back to the primary


@pytest.mark.parametrize("mode", ["lsn", "primary"])
async def test_own_event_is_reflected_on_a_lagging_replica(state: AppState, replica: Standby, mode: str) -> None:
    key = await new_key(state, "admin", "replica-admin")
    url = state.settings.database_url or ""
    async with app_with(url, database_read_urls=replica.url(DATABASE), read_your_writes=mode) as (own, http):
        await post(http, key, SEED)
        replica.catch_up()
        cold = await post(http, key, RECS)
        assert "c1" in [i["contentId"] for i in cold["data"]["recommendations"]["items"]]
        replica.pause_replay()
        assert (await post(http, key, LIKE))["data"]["logEvent"]["duplicate"] is False
        warm = await post(http, key, RECS)
        async with own.read_sessions()() as session:  # someone else's read: the lagging replica
            replica_events = (await session.execute(text("SELECT count(*) FROM events"))).scalar_one()
    assert replica_events == 0  # the replica really lags behind the event
    items = [i["contentId"] for i in warm["data"]["recommendations"]["items"]]
    assert warm["data"]["recommendations"]["cached"] is False
    assert "c1" not in items and items  # the liked item counts as consumed: the event was seen


async def test_replica_sessions_write_on_the_primary(state: AppState, replica: Standby) -> None:
    async with app_with(state.settings.database_url or "", database_read_urls=replica.url(DATABASE)) as (own, _):
        async with own.read_sessions()() as session:
            on_replica = (await session.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
            await session.execute(insert(User).values(user_id="written", privacy_settings={}))
            await session.commit()
        async with own.sessions() as primary:
            stored = (await primary.execute(select(User.user_id).where(User.user_id == "written"))).scalar_one()
    assert on_replica is True and stored == "written"
