"""Issue 12 item 4 and item 10: a user's cache generation only grows, expires after its results, and
`cacheInvalidated` tells the truth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from app.context import AppState
from app.main import build_state, close_state, create_app
from app.services.cache import KEY_PREFIX
from app.services.users import generation_key, result_prefix
from tests.conftest import make_settings, new_key
from tests.hardening.servers import RedisServer, free_port

SEED = """mutation { a: upsertContent(input: {id: "c1", title: "Space rocket", contentType: VIDEO}) { id }
  b: upsertContent(input: {id: "c2", title: "Moon landing", contentType: VIDEO}) { id }
  upsertUser(input: {id: "u1"}) { id } }"""
EVENT = 'mutation { logEvent(input: {userId: "u1", contentId: "c1", eventType: "like"}) { duplicate } }'
RECS = '{ recommendations(userId: "u1", count: 2) { cached items { contentId } } }'
DELETE = 'mutation { deleteUser(id: "u1") { profiles cacheInvalidated } }'


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server (a test may kill it)."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@asynccontextmanager
async def _app(state: AppState, redis_url: str, **overrides: Any) -> AsyncIterator[tuple[AppState, httpx.AsyncClient]]:
    settings = make_settings(state.settings.database_url or "", redis_url=redis_url, **overrides)
    own = await build_state(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, state=own))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield own, http
    finally:
        await close_state(own)


async def _post(http: httpx.AsyncClient, key: str, query: str) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {key}"})
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]


async def test_deletion_never_lets_a_racing_request_recache_old_results(
    state: AppState, redis_server: RedisServer
) -> None:
    key = await new_key(state, "admin", "gen-admin")
    client = Redis.from_url(redis_server.url)
    async with _app(state, redis_server.url) as (_, http):
        await _post(http, key, SEED)
        await _post(http, key, EVENT)
        await client.delete(KEY_PREFIX + generation_key("u1"))  # generation 0: e.g. Redis lost it, or it expired
        before = await _post(http, key, RECS)
        assert before["recommendations"]["cached"] is False and before["recommendations"]["items"]
        [stale_key] = [k async for k in client.scan_iter(match=KEY_PREFIX + "rec:*")]
        stale = await client.get(stale_key)
        assert (await _post(http, key, DELETE))["deleteUser"] == {"profiles": 1, "cacheInvalidated": True}
        # a request that read generation 0 before the deletion stores its result after it
        await client.set(stale_key, stale, ex=300)
        after = await _post(http, key, RECS)
    await client.aclose()
    assert after["recommendations"]["cached"] is False  # the old result is never served again


async def test_generation_keys_expire_after_every_result(state: AppState, redis_server: RedisServer) -> None:
    key = await new_key(state, "admin", "gen-admin")
    client = Redis.from_url(redis_server.url)
    async with _app(state, redis_server.url, cache_ttl_seconds=120) as (own, http):
        await _post(http, key, SEED)
        await _post(http, key, EVENT)
        await _post(http, key, RECS)
        generation_ttl = await client.ttl(KEY_PREFIX + generation_key("u1"))
        result_ttls = [
            await client.ttl(k) async for k in client.scan_iter(match=KEY_PREFIX + result_prefix("u1") + "*")
        ]
    await client.aclose()
    assert result_ttls and all(0 < t <= 120 for t in result_ttls)
    assert generation_ttl > 120 + own.settings.request_timeout_seconds  # outlives any result cached under it


async def test_cache_invalidated_is_false_when_redis_is_down(state: AppState) -> None:
    key = await new_key(state, "admin", "gen-admin")
    async with _app(state, f"redis://127.0.0.1:{free_port()}/0") as (own, http):  # nothing listens there
        await _post(http, key, SEED)
        receipt = await _post(http, key, DELETE)
        async with own.engine.connect() as conn:
            left = (await conn.execute(text("SELECT count(*) FROM users WHERE user_id = 'u1'"))).scalar_one()
    assert receipt["deleteUser"] == {"profiles": 1, "cacheInvalidated": False}
    assert left == 0  # the erasure itself happened
