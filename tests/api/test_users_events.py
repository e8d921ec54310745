"""Users and events: upserts, privacy, idempotent logging, partitions, pagination, deletion."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from app.context import AppState
from app.services import events as event_service
from tests.conftest import GQL, error_codes, recorded_sql

UPSERT_USER = "mutation($input: UserInput!) { upsertUser(input: $input) { id email segments status privacySettings { dataSharing personalization } } }"
LOG = "mutation($input: EventInput!) { logEvent(input: $input) { duplicate event { id userId contentId eventType value timestamp } } }"
LOG_MANY = (
    "mutation($inputs: [EventInput!]!) { logEvents(inputs: $inputs) { accepted duplicates errors { index message } } }"
)


async def rows(state: AppState, sql: str) -> list[Any]:
    async with state.sessions() as session:
        return list((await session.execute(text(sql))).all())


async def seed_content(gql: GQL, *ids: str) -> None:
    query = "mutation($inputs: [ContentInput!]!) { upsertContents(inputs: $inputs) { accepted } }"
    inputs = [{"id": i, "title": f"Item {i}", "contentType": "VIDEO"} for i in ids]
    assert (await gql(query, {"inputs": inputs}))["data"]["upsertContents"]["accepted"] == len(ids)


async def test_upsert_user_keeps_omitted_fields(gql: GQL) -> None:
    body = await gql(UPSERT_USER, {"input": {"id": "u1", "email": "a@example.com", "segments": ["s"]}})
    assert body["data"]["upsertUser"] == {
        "id": "u1",
        "email": "a@example.com",
        "segments": ["s"],
        "status": "ACTIVE",
        "privacySettings": {"dataSharing": True, "personalization": True},
    }
    body = await gql(
        UPSERT_USER, {"input": {"id": "u1", "status": "SUSPENDED", "privacySettings": {"personalization": False}}}
    )
    assert body["data"]["upsertUser"] == {
        "id": "u1",
        "email": "a@example.com",
        "segments": ["s"],
        "status": "SUSPENDED",
        "privacySettings": {"dataSharing": True, "personalization": False},
    }


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"email": "not-an-email"}, "input.email"),
        ({"id": "bad id"}, "input.id"),
        ({"demographics": {"x": "y" * 20_000}}, "input.demographics"),
    ],
)
async def test_bad_user_input(gql: GQL, state: AppState, override: dict[str, Any], field: str) -> None:
    body = await gql(UPSERT_USER, {"input": {"id": "u2", **override}})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert field in body["errors"][0]["message"]
    assert await rows(state, "SELECT * FROM users") == []


async def test_email_conflict(gql: GQL) -> None:
    await gql(UPSERT_USER, {"input": {"id": "a", "email": "same@example.com"}})
    body = await gql(UPSERT_USER, {"input": {"id": "b", "email": "same@example.com"}})
    assert error_codes(body) == ["CONFLICT"]


async def test_privacy_update_and_missing_user(gql: GQL) -> None:
    await gql(UPSERT_USER, {"input": {"id": "p1"}})
    query = 'mutation { updatePrivacySettings(userId: "%s", input: {dataSharing: false}) { privacySettings { dataSharing personalization } } }'
    body = await gql(query % "p1")
    assert body["data"]["updatePrivacySettings"]["privacySettings"] == {"dataSharing": False, "personalization": True}
    assert error_codes(await gql(query % "ghost")) == ["NOT_FOUND"]


async def test_log_event_creates_user_and_is_idempotent(gql: GQL, state: AppState) -> None:
    await seed_content(gql, "c1")
    event_id = str(uuid.uuid4())
    data = {"eventId": event_id, "userId": "new-user", "contentId": "c1", "eventType": "like"}
    first = (await gql(LOG, {"input": data}))["data"]["logEvent"]
    second = (await gql(LOG, {"input": data}))["data"]["logEvent"]
    assert first["duplicate"] is False and second["duplicate"] is True
    assert first["event"]["id"] == second["event"]["id"] == event_id
    assert await rows(state, "SELECT count(*) FROM events") == [(1,)]
    assert await rows(state, "SELECT user_id, last_active IS NOT NULL FROM users") == [("new-user", True)]
    profile = '{ user(id: "new-user") { segments status privacySettings { dataSharing personalization } } }'
    assert (await gql(profile))["data"]["user"] == {  # the model's defaults, filled in by ensure_exist's one statement
        "segments": [],
        "status": "ACTIVE",
        "privacySettings": {"dataSharing": True, "personalization": True},
    }
    assert await rows(state, "SELECT demographics, preferences FROM users") == [({}, {})]


async def test_one_event_keeps_its_metadata_and_context(gql: GQL, state: AppState) -> None:
    await seed_content(gql, "c1")
    data = {"userId": "u-meta", "contentId": "c1", "eventType": "click", "platform": "web", "metadata": {"source": "x"}}
    assert (await gql(LOG, {"input": data}))["data"]["logEvent"]["duplicate"] is False
    assert await rows(state, "SELECT platform, metadata->>'source' FROM events") == [("web", "x")]
    listed = await gql('{ events(userId: "u-meta") { edges { node { metadata } } } }')
    assert listed["data"]["events"]["edges"][0]["node"]["metadata"] == {"source": "x"}


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        (
            {"eventType": "teleport"},
            "allowed types: add_to_cart, bookmark, click, dislike, like, purchase, rate, share, view",
        ),
        ({"contentId": "missing"}, "input.contentId"),
        ({"userId": "bad user!"}, "input.userId"),
        ({"metadata": {"deep": [[[[[[[[[[[[1]]]]]]]]]]]]}}, "input.metadata"),
    ],
)
async def test_bad_events_rejected_nothing_written(
    gql: GQL, state: AppState, override: dict[str, Any], needle: str
) -> None:
    await seed_content(gql, "c1")
    body = await gql(LOG, {"input": {"userId": "u", "contentId": "c1", "eventType": "view", **override}})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert needle in body["errors"][0]["message"]
    assert await rows(state, "SELECT count(*) FROM events") == [(0,)]
    assert await rows(state, "SELECT count(*) FROM users") == [(0,)]


async def test_log_events_batch_partial(gql: GQL, state: AppState) -> None:
    await seed_content(gql, "c1", "c2")
    dup = str(uuid.uuid4())
    inputs = [
        {"eventId": dup, "userId": "u1", "contentId": "c1", "eventType": "view"},
        {"userId": "u1", "contentId": "nope", "eventType": "view"},
        {"eventId": dup, "userId": "u1", "contentId": "c1", "eventType": "view"},
        {"userId": "u2", "contentId": "c2", "eventType": "rate", "value": 4.5},
        {"userId": "u2", "contentId": "c2", "eventType": "bogus"},
    ]
    result = (await gql(LOG_MANY, {"inputs": inputs}))["data"]["logEvents"]
    assert result["accepted"] == 2 and result["duplicates"] == 1
    assert [e["index"] for e in result["errors"]] == [1, 4]
    assert await rows(state, "SELECT count(*) FROM events") == [(2,)]


async def test_events_land_in_month_partitions_and_default(gql: GQL, state: AppState) -> None:
    await seed_content(gql, "c1")
    now = datetime.now(UTC).replace(day=15, hour=12)
    stamps = [now, now + timedelta(days=31), now + timedelta(days=62), now - timedelta(days=3650)]
    inputs = [{"user_id": "u", "content_id": "c1", "event_type": "view", "timestamp": t} for t in stamps]
    async with state.sessions() as session:  # months ahead: past the API's future-skew bound on purpose
        batch = await event_service.log_events(session, inputs=inputs, max_batch=10, max_future_seconds=100 * 86400)
    assert batch.outcome.accepted == 4
    found = await rows(state, 'SELECT tableoid::regclass::text, "timestamp" FROM events ORDER BY "timestamp"')
    names = [name for name, _ in found]
    assert names[0] == "events_default"
    expected = [f"events_y{t:%Y}m{t:%m}" for t in stamps[:3]]
    assert names[1:] == expected


async def test_events_pagination_newest_first(gql: GQL) -> None:
    await seed_content(gql, "c1")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    inputs = [
        {"userId": "u", "contentId": "c1", "eventType": "view", "timestamp": (base + timedelta(hours=i)).isoformat()}
        for i in range(13)
    ]
    await gql(LOG_MANY, {"inputs": inputs})
    query = """query($after: String) { events(userId: "u", first: 5, after: $after) {
      totalCount edges { node { timestamp } } pageInfo { hasNextPage endCursor } } }"""
    stamps: list[str] = []
    after = None
    while True:
        page = (await gql(query, {"after": after}))["data"]["events"]
        assert page["totalCount"] == 13
        stamps += [e["node"]["timestamp"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(stamps) == 13 and stamps == sorted(stamps, reverse=True)


async def test_delete_user_leaves_nothing(gql: GQL, state: AppState) -> None:
    await seed_content(gql, "c1")
    await gql(LOG_MANY, {"inputs": [{"userId": "gone", "contentId": "c1", "eventType": "view"}] * 3})
    await gql(LOG_MANY, {"inputs": [{"userId": "stays", "contentId": "c1", "eventType": "view"}]})
    body = await gql('mutation { deleteUser(id: "gone") { userId events eventKeys profiles cacheInvalidated } }')
    assert body["data"]["deleteUser"] == {
        "userId": "gone",
        "events": 3,
        "eventKeys": 3,
        "profiles": 1,
        "cacheInvalidated": True,
    }
    tables = await rows(
        state,
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'user_id' AND table_schema = 'public'",
    )
    for (table,) in tables:
        assert await rows(state, f"SELECT count(*) FROM {table} WHERE user_id = 'gone'") == [(0,)], table
    assert await rows(state, "SELECT count(*) FROM events") == [(1,)]
    assert error_codes(await gql('mutation { deleteUser(id: "gone") { userId } }')) == ["NOT_FOUND"]


async def test_event_type_weights(gql: GQL) -> None:
    body = await gql('mutation { setEventTypeWeight(eventType: "watch_later", weight: 2.5) { eventType weight } }')
    assert body["data"]["setEventTypeWeight"] == {"eventType": "watch_later", "weight": 2.5}
    types = (await gql("{ eventTypes { eventType weight } }"))["data"]["eventTypes"]
    assert {"eventType": "dislike", "weight": -4.0} in types and len(types) == 10
    bad = await gql('mutation { setEventTypeWeight(eventType: "Bad Name", weight: 1) { weight } }')
    assert error_codes(bad) == ["BAD_USER_INPUT"]


async def test_user_with_nested_events_and_content(gql: GQL) -> None:
    await seed_content(gql, "c1")
    await gql(LOG, {"input": {"userId": "n1", "contentId": "c1", "eventType": "view"}})
    body = await gql(
        '{ user(id: "n1") { id events(first: 5) { totalCount edges { node { content { title } user { id } } } } } }'
    )
    user = body["data"]["user"]
    assert user["events"]["totalCount"] == 1
    assert user["events"]["edges"][0]["node"] == {"content": {"title": "Item c1"}, "user": {"id": "n1"}}


async def test_activity_moves_last_active_not_updated_at(gql: GQL, state: AppState) -> None:
    await seed_content(gql, "c1")
    await gql(UPSERT_USER, {"input": {"id": "act"}})
    before = await rows(state, "SELECT updated_at, last_active FROM users WHERE user_id = 'act'")
    later = datetime(2025, 1, 1, tzinfo=UTC).isoformat()
    await gql(LOG, {"input": {"userId": "act", "contentId": "c1", "eventType": "view", "timestamp": later}})
    after = await rows(state, "SELECT updated_at, last_active FROM users WHERE user_id = 'act'")
    assert after[0][0] == before[0][0] and after[0][1] == datetime(2025, 1, 1, tzinfo=UTC)
    await gql(UPSERT_USER, {"input": {"id": "act", "segments": ["x"]}})
    edited = await rows(state, "SELECT updated_at FROM users WHERE user_id = 'act'")
    assert edited[0][0] > before[0][0]


async def test_large_batch_takes_the_copy_path_idempotently(gql: GQL, state: AppState) -> None:
    await seed_content(gql, "c1", "c2")
    ids = [str(uuid.uuid4()) for _ in range(60)]
    inputs = [
        {
            "eventId": ids[i],
            "userId": f"bulk{i % 7}",
            "contentId": "c1" if i % 2 else "c2",
            "eventType": "click",
            "sessionId": f"s{i}",
            "deviceType": "mobile",
            "platform": "ios",
            "metadata": {"i": i},
        }
        for i in range(60)
    ]
    inputs.append(dict(inputs[0]))  # the same id twice in one batch
    inputs.append({"userId": "bulk0", "contentId": "missing", "eventType": "click"})
    first = (await gql(LOG_MANY, {"inputs": inputs}))["data"]["logEvents"]
    assert first["accepted"] == 60 and first["duplicates"] == 1 and [e["index"] for e in first["errors"]] == [61]
    again = (await gql(LOG_MANY, {"inputs": inputs[:60]}))["data"]["logEvents"]
    assert again == {"accepted": 0, "duplicates": 60, "errors": []}
    stored = await rows(
        state, "SELECT session_id, device_type, platform, metadata->>'i' FROM events WHERE event_id = '%s'" % ids[5]
    )
    assert stored == [("s5", "mobile", "ios", "5")]
    assert await rows(state, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(60, 60)]
    assert await rows(state, "SELECT count(*) FROM users WHERE user_id LIKE 'bulk%' AND last_active IS NOT NULL") == [
        (7,)
    ]


async def test_known_event_types_are_not_read_per_event(gql: GQL, state: AppState) -> None:
    """Types in the process memo spare each logged event a read; a type it has not seen yet is read."""
    await seed_content(gql, "memo-c")

    async def log(kind: str, known: set[str]) -> event_service.LoggedBatch:
        async with state.sessions() as session:
            inputs = [{"user_id": "memo-u", "content_id": "memo-c", "event_type": kind}]
            return await event_service.log_events(session, inputs=inputs, max_batch=1, known_types=known)

    await gql('mutation { setEventTypeWeight(eventType: "memo_fresh", weight: 2) { weight } }')
    with recorded_sql(state.engine) as statements:
        hit = await log("view", {"view", "like"})
    reads_on_hit = [s for s in statements if "FROM event_types" in s]
    with recorded_sql(state.engine) as statements:
        fresh = await log("memo_fresh", {"view", "like"})  # created after the memo was read: checked in the table
    reads_on_miss = [s for s in statements if "FROM event_types" in s]
    assert hit.outcome.accepted == 1 and reads_on_hit == []
    assert fresh.outcome.accepted == 1 and reads_on_miss
    unknown = await log("memo_never", {"view"})
    assert unknown.outcome.accepted == 0 and "eventType" in unknown.outcome.errors[0][1]
    assert len(await rows(state, "SELECT 1 FROM events WHERE user_id = 'memo-u'")) == 2


@pytest.mark.parametrize("size", [1, 3, 60])  # arrays in one statement below COPY_THRESHOLD, COPY at and above
async def test_events_profiles_and_last_active_are_written_together(gql: GQL, state: AppState, size: int) -> None:
    """New users get a profile, known users' last_active only moves forward, duplicates touch nothing; on the
    array path the whole write (profile, key, event, last_active) is one statement after the content check."""
    await seed_content(gql, "c1")
    await gql(UPSERT_USER, {"input": {"id": "known"}})
    newest = datetime(2025, 6, 1, tzinfo=UTC)
    async with state.sessions() as session:
        await session.execute(text("UPDATE users SET last_active = :t WHERE user_id = 'known'"), {"t": newest})
        await session.commit()
    times = [newest - timedelta(days=1 + i) for i in range(size)]  # all older than known's last_active
    inputs = [
        {"eventId": str(uuid.uuid4()), "userId": u, "contentId": "c1", "eventType": "view", "timestamp": t.isoformat()}
        for t in times
        for u in ("known", f"fresh{size}")
    ]
    with recorded_sql(state.engine) as statements:
        body = await gql(LOG_MANY, {"inputs": inputs})
    assert body["data"]["logEvents"] == {"accepted": 2 * size, "duplicates": 0, "errors": []}
    writes = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE", "WITH"))]
    if size < 50:
        assert len(writes) == 1 and "INSERT INTO users" in writes[0] and "INSERT INTO event_keys" in writes[0]
    assert await rows(state, "SELECT user_id, last_active FROM users ORDER BY user_id") == [
        (f"fresh{size}", max(times)),
        ("known", newest),  # not moved back
    ]
    later = newest + timedelta(days=1)
    repeat = {**inputs[0], "timestamp": later.isoformat()}  # the same id again, later: a duplicate
    assert (await gql(LOG, {"input": repeat}))["data"]["logEvent"]["duplicate"] is True
    assert await rows(state, "SELECT last_active FROM users WHERE user_id = 'known'") == [(newest,)]
    one = {"userId": "known", "contentId": "c1", "eventType": "view", "timestamp": later.isoformat()}
    assert (await gql(LOG, {"input": one}))["data"]["logEvent"]["duplicate"] is False
    assert await rows(state, "SELECT last_active FROM users WHERE user_id = 'known'") == [(later,)]
    assert await rows(state, "SELECT count(*) FROM events") == [(2 * size + 1,)]
