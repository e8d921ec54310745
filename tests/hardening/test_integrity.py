"""Integrity holes of issue 12: event time bounds, withdrawn content, partitions, key rotation, pre-parse auth,
retention, id lengths, readiness, concurrent batches, event-id ownership, DB error mapping and logging."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from graphql import GraphQLError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from app import migrate
from app.config import Settings
from app.context import AppState
from app.db import create_engine
from app.errors import Conflict
from app.main import build_state, close_state, create_app, readiness
from app.repositories.model_versions import ModelVersionRepository
from app.schema.errors import format_error
from app.security.faults import classify, is_retryable
from app.security.server import CoalescingTransport, uvicorn_options
from app.services import auth, models
from app.services.validation import EPOCH, time_problem
from tests.cli.test_cli import recengine
from tests.conftest import GQL, error_codes, make_settings
from tests.hardening.conftest import apost, count_rows
from tests.hardening.servers import free_port, wait_until

LOG = "mutation($input: EventInput!) { logEvent(input: $input) { duplicate event { id userId } } }"
LOG_MANY = (
    "mutation($inputs: [EventInput!]!) { logEvents(inputs: $inputs) { accepted duplicates errors { index message } } }"
)
SEED = """mutation { upsertUser(input: {id: "u1"}) { id } upsertContents(inputs: [{id: "c1", title: "Space rocket", contentType: VIDEO},
  {id: "c2", title: "Ocean film", contentType: VIDEO}, {id: "c3", title: "Mountain trip", contentType: VIDEO}])
  { accepted } }"""


def event(user: str = "u1", content: str = "c1", **extra: Any) -> dict[str, Any]:
    return {"userId": user, "contentId": content, "eventType": "view", **extra}


# --- 3. event timestamps --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamp",
    [
        lambda: datetime.now(UTC) + timedelta(seconds=400),
        lambda: datetime(2066, 1, 1, tzinfo=UTC),
        lambda: datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
        lambda: datetime(1, 1, 1, tzinfo=UTC),
    ],
    ids=["skew", "40 years ahead", "1969", "year 1"],
)
async def test_out_of_range_timestamps_are_refused(gql: GQL, state: AppState, stamp: Any) -> None:
    assert "errors" not in await gql(SEED)
    body = await gql(LOG, {"input": event(timestamp=stamp().isoformat())})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "input.timestamp"
    batch = await gql(LOG_MANY, {"inputs": [event(), event(timestamp=stamp().isoformat())]})
    assert batch["data"]["logEvents"]["accepted"] == 1
    assert [(e["index"], e["message"].split(":")[0]) for e in batch["data"]["logEvents"]["errors"]] == [
        (1, "inputs[1].timestamp")
    ]
    assert await count_rows(state, "events") == 1  # only the valid event of the batch


async def test_small_clock_skew_is_accepted(gql: GQL, state: AppState) -> None:
    await gql(SEED)
    body = await gql(LOG, {"input": event(timestamp=(datetime.now(UTC) + timedelta(seconds=200)).isoformat())})
    assert "errors" not in body


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.datetimes(timezones=st.just(UTC)))
def test_time_bounds(stamp: datetime) -> None:
    latest = datetime(2026, 11, 27, 12, tzinfo=UTC)
    problem = time_problem(stamp, latest, "input.timestamp")
    assert (problem is None) == (EPOCH <= stamp <= latest)
    assert problem is None or problem.startswith("input.timestamp: ")


async def test_import_reports_future_rows(state: AppState, database_url: str, gql: GQL, tmp_path: Path) -> None:
    await gql(SEED)
    rows = tmp_path / "events.jsonl"
    rows.write_text(
        '{"userId": "u1", "contentId": "c1", "eventType": "view", "timestamp": "2026-01-01T00:00:00Z"}\n'
        '{"userId": "u1", "contentId": "c2", "eventType": "view", "timestamp": "2066-01-01T00:00:00Z"}\n',
        encoding="utf-8",
    )
    result = recengine(["import", "events", str(rows)], database_url)
    assert result.returncode == 0, result.stderr
    assert "line 2: timestamp" in result.stdout and "stored 1 events, skipped 1 invalid rows" in result.stdout
    assert await count_rows(state, "events") == 1


# --- 6. upsertContent(s) withdrawing an item invalidates cached results ---------------------------------------


REC = "query($u: ID!) { recommendations(userId: $u, count: 3) { cached items { contentId } } }"


@pytest.mark.parametrize("mutation", ["upsertContent", "upsertContents"])
async def test_withdrawing_content_by_upsert_invalidates(gql: GQL, state: AppState, mutation: str) -> None:
    await gql(SEED)
    await gql(LOG_MANY, {"inputs": [event(f"p{i}", "c1") for i in range(3)] + [event("p0", "c2")]})
    user = {"u": f"new-{mutation}"}
    await state.recommender.invalidate_all()  # start from a cold cache whatever earlier tests left
    first = (await gql(REC, user))["data"]["recommendations"]
    assert "c1" in [i["contentId"] for i in first["items"]], first
    assert (await gql(REC, user))["data"]["recommendations"]["cached"] is True
    item = '{id: "c1", title: "Space rocket", contentType: VIDEO, status: ARCHIVED}'
    write = (
        f"mutation {{ upsertContent(input: {item}) {{ id }} }}"
        if mutation == "upsertContent"
        else f"mutation {{ upsertContents(inputs: [{item}]) {{ accepted }} }}"
    )
    assert "errors" not in await gql(write)
    after = (await gql(REC, user))["data"]["recommendations"]
    assert after["cached"] is False and "c1" not in [i["contentId"] for i in after["items"]]


# --- 7. partition creation --------------------------------------------------------------------------------------


def _month(offset: int) -> datetime:
    start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(offset):
        start = (start + timedelta(days=32)).replace(day=1)
    return start


async def test_partition_creation_with_default_rows_inserts_and_two_callers(state: AppState, gql: GQL) -> None:
    await gql(SEED)
    month = _month(2)
    part = f"events_y{month:%Y}m{month:%m}"
    async with state.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO users (user_id) SELECT 'u' || i FROM generate_series(0, 49) i ON CONFLICT DO NOTHING")
        )
        await conn.execute(text("INSERT INTO users (user_id) VALUES ('late') ON CONFLICT DO NOTHING"))
        await conn.execute(text(f"ALTER TABLE events DETACH PARTITION {part}"))
        await conn.execute(text(f"DROP TABLE {part}"))
        await conn.execute(
            text(
                'INSERT INTO events (event_id, user_id, content_id, event_type, "timestamp") '
                "SELECT gen_random_uuid(), 'u' || (i % 50), 'c1', 'view', CAST(:start AS timestamptz) + i * interval '1 second' "
                "FROM generate_series(1, 20000) AS i"
            ),
            {"start": month + timedelta(days=1)},
        )
    # A statement timeout far too short for moving 20,000 rows: creation must run without it.
    tight = create_engine(state.database_url, state.settings.model_copy(update={"db_statement_timeout_seconds": 0.01}))

    async def insert_while_creating(n: int) -> None:
        for i in range(n):
            async with state.engine.begin() as conn:
                await conn.execute(
                    text(
                        'INSERT INTO events (event_id, user_id, content_id, event_type, "timestamp") '
                        "VALUES (gen_random_uuid(), 'late', 'c1', 'view', :at)"
                    ),
                    {"at": month + timedelta(days=2, minutes=i)},
                )
            await asyncio.sleep(0)

    try:
        created = await asyncio.gather(
            migrate.create_partitions(tight, 3), migrate.create_partitions(tight, 3), insert_while_creating(30)
        )
    finally:
        await tight.dispose()
    assert sorted(created[:2]) == [0, 1]  # one caller created it, the other found it done
    async with state.engine.connect() as conn:
        in_part = (await conn.execute(text(f"SELECT count(*) FROM {part}"))).scalar_one()
        stranded = (
            await conn.execute(
                text('SELECT count(*) FROM events_default WHERE "timestamp" >= :a AND "timestamp" < :b'),
                {"a": month, "b": _month(3)},
            )
        ).scalar_one()
    assert (in_part, stranded) == (20_030, 0)


async def test_partition_creation_is_a_no_op_when_all_exist(state: AppState) -> None:
    assert await migrate.create_partitions(state.engine, 3) == 0


# --- 8. bootstrap admin key rotation ------------------------------------------------------------------------


async def test_changed_bootstrap_key_replaces_the_old_one(state: AppState) -> None:
    old, new = "bootstrap-secret-old-" + uuid.uuid4().hex, "bootstrap-secret-new-" + uuid.uuid4().hex
    async with state.sessions() as session:
        await auth.ensure_key(session, name="bootstrap-admin", secret=old)
        assert await auth.role_for(session, secret=old) is auth.Role.ADMIN
        await auth.ensure_key(session, name="bootstrap-admin", secret=new)
        assert await auth.role_for(session, secret=old) is None
        assert await auth.role_for(session, secret=new) is auth.Role.ADMIN
        await auth.ensure_key(session, name="bootstrap-admin", secret=new)  # unchanged: nothing happens
        rows = (await session.execute(text("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"))).scalar_one()
    assert rows == 1


async def test_rotation_through_startup(app_client: Any, state: AppState) -> None:
    from app.main import prepare

    for secret in ("first-admin-secret-" + uuid.uuid4().hex, "second-admin-secret-" + uuid.uuid4().hex):
        settings = state.settings.model_copy(update={"admin_api_key": SecretStr(secret)})
        await prepare(
            AppState(
                settings,
                state.engine,
                state.sessions,
                state.cache,
                state.recommender,
                state.impressions,
                state.experiments,
            )
        )
        async with app_client() as http:
            response = await apost(http, "{ modelVersions { id } }", key=secret)
            assert "errors" not in response.json()
    async with app_client() as http:
        stale = await apost(http, "{ modelVersions { id } }", key="first-admin-secret-x")
    assert stale.status_code == 401


# --- 9. authentication before parsing, anonymous rate limit, deep JSON, slow bodies -----------------------------


async def test_unauthenticated_requests_are_not_parsed(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ this is not graphql"})
    assert response.status_code == 401 and error_codes(response.json()) == ["UNAUTHENTICATED"]
    assert response.headers["www-authenticate"] == "Bearer"


async def test_anonymous_requests_are_rate_limited_per_ip(app_client: Any, admin_key: str) -> None:
    async with app_client(rate_limit_anonymous_burst=2, rate_limit_anonymous_per_second=0.01) as http:
        statuses = [(await apost(http, "{ eventTypes { eventType } }")).status_code for _ in range(3)]
        limited = await apost(http, "{ eventTypes { eventType } }", key="rk_guess")
        keyed = await apost(http, "{ eventTypes { eventType } }", key=admin_key)
    assert statuses == [401, 401, 429]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert keyed.status_code == 200


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"query": "{ a }", "variables": ' + b"[" * 100_000 + b"]}"])
async def test_deeply_nested_json_is_a_bad_request(client: httpx.AsyncClient, admin_key: str, body: bytes) -> None:
    headers = {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"}
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400


async def test_stalled_body_times_out(app_client: Any, admin_key: str) -> None:
    async def stalled() -> Any:
        yield b'{"query": '
        await asyncio.sleep(1.0)
        yield b'"{ eventTypes { eventType } }"}'

    async with app_client(http_receive_timeout_seconds=0.2) as http:
        headers = {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"}
        response = await http.post("/graphql", content=stalled(), headers=headers)
    assert response.status_code == 408


@contextlib.contextmanager
def served(state: AppState, **overrides: Any) -> Iterator[int]:
    """`recengine serve`'s uvicorn options on a thread, with a state of its own (built and closed on that thread's
    loop, like a real process's); yields the port."""
    settings = state.settings.model_copy(update=overrides)
    options = uvicorn_options(settings)
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(), **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "the server to start")
        yield config.port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(v for k, _, v in (h.partition(b": ") for h in head.split(b"\r\n")) if k == b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_trickled_headers_are_cut_off(state: AppState) -> None:
    with served(state, http_receive_timeout_seconds=1) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")  # and never the rest of the headers
        sock.settimeout(10)
        assert sock.recv(1024) == b""  # closed by the server after ~1 s (the 10 s timeout is a safety net)


@pytest.mark.parametrize("trickled", [False, True])
def test_oversized_headers_get_431_and_a_closed_connection(state: AppState, trickled: bool) -> None:
    """Whole (one packet) or trickled (the giant header never completes), headers over 16 kB are refused."""
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 20_000
    request += b"" if trickled else b"\r\n\r\n"
    with served(state) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for start in range(0, len(request), 4096 if trickled else len(request)):
            sock.sendall(request[start : start + 4096] if trickled else request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 ") and answer.endswith(b"request headers exceed 16384 B\r\n")


def test_kept_alive_requests_and_large_bodies_are_answered_whole(state: AppState) -> None:
    """Two requests on one connection, the second with a 40 kB body in the same packet as its headers (only
    headers count against the limit); each response arrives whole, in one piece from the server."""
    query = '{"query": "{ __typename }", "variables": {"pad": "' + "p" * 40_000 + '"}}'
    small = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    big = (
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(query)}\r\n\r\n{query}".encode()
    )
    with served(state) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(small)
        first = _read_response(sock)
        sock.sendall(big)
        second = _read_response(sock)
    assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(b'{"status":"ok"}')
    assert second.startswith(b"HTTP/1.1 401 ") and b"UNAUTHENTICATED" in second  # answered, whole


async def test_writes_of_one_loop_turn_leave_in_one_send() -> None:
    """uvicorn writes a response's head and body separately; the transport sends them together."""

    class Recording(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.sent: list[bytes] = []
            self.closed = False

        def write(self, data: Any) -> None:
            self.sent.append(bytes(data))

        def is_closing(self) -> bool:
            return self.closed

        def close(self) -> None:
            self.closed = True

    raw = Recording()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert raw.sent == []
    await asyncio.sleep(0)
    assert raw.sent == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"last")
    transport.close()  # what is queued goes out before the close
    assert raw.sent[-1] == b"last" and raw.closed and transport.is_closing()


# --- 10. retention and id lengths -----------------------------------------------------------------------------


async def _versions(state: AppState, count: int) -> list[int]:
    ids: list[int] = []
    async with state.sessions() as session:
        repo = ModelVersionRepository(session)
        for _ in range(count):
            version = await repo.add(kind="als", params={}, stats={})
            factors = np.random.default_rng(version.id).random((3, 4), dtype=np.float32)
            await repo.write_item_factors(version.id, ["c1", "c2", "c3"], factors)
            await repo.write_user_factors(version.id, ["u1"], factors[:1])
            ids.append(version.id)
        await session.commit()
    return ids


async def _artifacts(state: AppState, version_id: int) -> tuple[int, int, bool]:
    async with state.engine.connect() as conn:
        items = await conn.execute(text(f"SELECT count(*) FROM item_factors WHERE model_version_id = {version_id}"))
        users = await conn.execute(text(f"SELECT count(*) FROM user_factors WHERE model_version_id = {version_id}"))
        index = await conn.execute(text(f"SELECT to_regclass('ix_item_factors_v{version_id}') IS NOT NULL"))
        return items.scalar_one(), users.scalar_one(), bool(index.scalar_one())


async def test_retention_keeps_active_and_newest(gql: GQL, state: AppState) -> None:
    await gql(SEED)
    ids = await _versions(state, 5)
    async with state.sessions() as session:
        await models.activate(session, version_id=ids[1])
        pruned = await models.prune_versions(session, keep=2)
        again = await models.prune_versions(session, keep=2)
    assert sorted(pruned) == [ids[0], ids[2]] and again == []
    kept = {v: await _artifacts(state, v) for v in ids}
    assert kept[ids[0]] == kept[ids[2]] == (0, 0, False)
    assert all(kept[v] == (3, 1, True) for v in (ids[1], ids[3], ids[4]))
    body = await gql("mutation($id: Int!) { activateModel(id: $id) { id } }", {"id": ids[0]})
    assert error_codes(body) == ["CONFLICT"] and "pruned" in body["errors"][0]["message"]


async def test_retention_keeps_versions_of_running_experiments(gql: GQL, state: AppState) -> None:
    await gql(SEED)
    ids = await _versions(state, 4)
    async with state.sessions() as session:
        await models.activate(session, version_id=ids[3])
    arms = [{"name": "old", "strategy": "HYBRID", "modelVersion": ids[0], "traffic": 0.5}]
    body = await gql(
        'mutation($arms: [ExperimentArmInput!]!) { upsertExperiment(input: {name: "keep-old", arms: $arms}) { name } }',
        {"arms": arms},
    )
    assert body.get("errors") is None, body
    async with state.sessions() as session:
        pruned = await models.prune_versions(session, keep=1)
    assert sorted(pruned) == [ids[1]]  # ids[0] serves a running arm, ids[3] is active, ids[2] is the newest other
    assert await _artifacts(state, ids[0]) == (3, 1, True)


@pytest.mark.parametrize(
    "query",
    [
        "query($id: ID!) { recommendations(userId: $id) { requestId } }",
        "query($id: ID!) { similarContent(contentId: $id) { contentId } }",
        "query($id: ID!) { user(id: $id) { id } }",
        "query($id: ID!) { events(userId: $id) { totalCount } }",
        'query($id: ID!) { recommendations(userId: "u1", excludeIds: [$id]) { requestId } }',
        "mutation($id: ID!) { deleteUser(id: $id) { userId } }",
    ],
)
async def test_oversized_ids_are_refused_before_use(gql: GQL, state: AppState, query: str) -> None:
    entries = len(state.cache._memory) if hasattr(state.cache, "_memory") else None  # type: ignore[attr-defined]
    body = await gql(query, {"id": "x" * 1_000_000})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] in {"id", "userId", "contentId", "excludeIds"}
    if entries is not None:
        assert len(state.cache._memory) == entries  # type: ignore[attr-defined]


# --- 11. readiness, concurrent batches, event-id ownership, DB errors --------------------------------------------


async def test_ready_does_not_leak_driver_errors(state: AppState) -> None:
    url = "postgresql+asyncpg://leaky_user:hunter2@127.0.0.1:9/secretdb"
    settings = state.settings.model_copy(update={"db_connect_timeout_seconds": 1.0})
    engine = create_engine(url, settings)
    try:
        broken = AppState(
            settings,
            engine,
            state.sessions,
            state.cache,
            state.recommender,
            state.impressions,
            state.experiments,
            database_url=url,
        )
        ok, checks = await readiness(broken)
    finally:
        await engine.dispose()
    assert ok is False and checks["database"] == {"ok": False, "reason": "database unreachable"}
    assert "leaky_user" not in str(checks) and "127.0.0.1" not in str(checks)


async def test_concurrent_overlapping_batches_store_each_id_once(
    gql: GQL, state: AppState, database_url: str, admin_key: str
) -> None:
    assert "errors" not in await gql(SEED)
    pool = [(str(uuid.uuid4()), f"u{i % 7}", f"c{1 + i % 3}") for i in range(300)]
    rng = random.Random(12)

    def batch() -> list[dict[str, Any]]:
        chosen = rng.sample(pool, rng.choice([10, 30, 60]))  # 60 takes the COPY path
        return [event(user, content, eventId=event_id) for event_id, user, content in chosen]

    batches = [batch() for _ in range(100)]
    covered = {e["eventId"] for b in batches for e in b}
    # Its own pool, patient enough for 100 requests at once on a busy machine: the test is about
    # deadlocks and duplicates, not about pool exhaustion.
    roomy = await build_state(make_settings(database_url, db_pool_timeout_seconds=300, request_timeout_seconds=300))
    try:
        app = create_app(roomy.settings, state=roomy)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            responses = await asyncio.gather(*(apost(http, LOG_MANY, {"inputs": b}, key=admin_key) for b in batches))
    finally:
        await close_state(roomy)
    results = [r.json() for r in responses]
    assert all(r.status_code == 200 for r in responses)
    assert all("errors" not in r for r in results), [r for r in results if "errors" in r][:1]
    assert all(r["data"]["logEvents"]["errors"] == [] for r in results)
    async with state.engine.connect() as conn:
        counts = (await conn.execute(text("SELECT event_id::text, count(*) FROM events GROUP BY event_id"))).all()
    assert {event_id for event_id, _ in counts} == covered
    assert {n for _, n in counts} == {1}
    assert sum(r["data"]["logEvents"]["accepted"] for r in results) == len(covered)


async def test_event_id_of_another_user_is_a_conflict(gql: GQL, state: AppState) -> None:
    await gql(SEED)
    event_id = str(uuid.uuid4())
    assert "errors" not in await gql(LOG, {"input": event("alice", eventId=event_id)})
    stolen = await gql(LOG, {"input": event("mallory", eventId=event_id)})
    assert error_codes(stolen) == ["CONFLICT"] and stolen["data"] is None
    assert "alice" not in str(stolen)
    batch = await gql(LOG_MANY, {"inputs": [event("mallory", "c2"), event("mallory", eventId=event_id)]})
    result = batch["data"]["logEvents"]
    assert result["accepted"] == 1 and result["duplicates"] == 0
    assert [e["index"] for e in result["errors"]] == [1] and "eventId" in result["errors"][0]["message"]
    other_id = str(uuid.uuid4())
    inside = await gql(LOG_MANY, {"inputs": [event("bob", eventId=other_id), event("eve", "c2", eventId=other_id)]})
    assert inside["data"]["logEvents"]["accepted"] == 1
    assert [e["index"] for e in inside["data"]["logEvents"]["errors"]] == [1]
    same = await gql(LOG, {"input": event("alice", eventId=event_id)})
    assert same["data"]["logEvent"]["duplicate"] is True and same["data"]["logEvent"]["event"]["userId"] == "alice"


async def test_unique_violation_and_deadlock_map_to_conflict(state: AppState) -> None:
    async with state.sessions() as session:
        await session.execute(
            text("INSERT INTO api_keys (name, key_hash, prefix, role) VALUES ('a', 'h', 'p', 'client')")
        )
        await session.commit()
        with pytest.raises(sa_exc.IntegrityError) as unique:
            await session.execute(
                text("INSERT INTO api_keys (name, key_hash, prefix, role) VALUES ('a', 'h2', 'p', 'client')")
            )
    assert isinstance(classify(unique.value), Conflict)
    deadlock = await _deadlock(state)
    assert is_retryable(deadlock)
    mapped = classify(deadlock)
    assert isinstance(mapped, Conflict) and mapped.extensions()["retryable"] is True


async def _deadlock(state: AppState) -> BaseException:
    """Two transactions that lock two rows in opposite orders: PostgreSQL aborts one with 40P01."""
    async with state.engine.begin() as conn:
        await conn.execute(text("INSERT INTO users (user_id) VALUES ('d1'), ('d2')"))
    first_locked, second_locked = asyncio.Event(), asyncio.Event()

    async def worker(mine: str, theirs: str, locked: asyncio.Event, other: asyncio.Event) -> None:
        async with state.engine.begin() as conn:
            await conn.execute(text("UPDATE users SET segments = '{x}' WHERE user_id = :u"), {"u": mine})
            locked.set()
            await other.wait()
            await conn.execute(text("UPDATE users SET segments = '{y}' WHERE user_id = :u"), {"u": theirs})

    outcomes = await asyncio.gather(
        worker("d1", "d2", first_locked, second_locked),
        worker("d2", "d1", second_locked, first_locked),
        return_exceptions=True,
    )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1
    return errors[0]


async def test_logged_database_errors_omit_parameters(state: AppState, caplog: pytest.LogCaptureFixture) -> None:
    secret = "ada.lovelace@example.com"
    with pytest.raises(sa_exc.DBAPIError) as failure:
        async with state.engine.begin() as conn:  # a CHECK violation: its DETAIL quotes the whole row
            await conn.execute(
                text("INSERT INTO users (user_id, email, status) VALUES (:id, :email, 'bogus')"),
                {"id": "ada", "email": secret},
            )
    assert "hidden due to hide_parameters" in str(failure.value)
    masked = format_error(GraphQLError("boom", path=["upsertUser"], original_error=failure.value), "req-7")
    assert masked.extensions == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-7"}
    assert "req-7" in caplog.text and "23514" in caplog.text
    assert secret not in caplog.text


def test_auth_disabled_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="refused"):
        Settings(_env_file=None, env="production", auth="disabled")  # type: ignore[call-arg]
    assert Settings(_env_file=None, env="development", auth="disabled").auth.value == "disabled"  # type: ignore[call-arg]
