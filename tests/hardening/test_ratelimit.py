"""Per-key token buckets: query and event budgets, RATE_LIMITED with a retry hint, Redis shared state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from app.context import AppState
from app.security.ratelimit import EVENTS, QUERIES, RateLimiter
from tests.conftest import GQL, error_codes, make_settings, new_key
from tests.hardening.conftest import apost, count_rows
from tests.hardening.servers import RedisServer
from tests.scale.cluster import fresh_cluster_url

LOW = {
    "rate_limit_queries_burst": 3,
    "rate_limit_queries_per_second": 0.01,
    "rate_limit_events_burst": 3,
    "rate_limit_events_per_second": 0.01,
}
QUERY = "{ eventTypes { eventType } }"
LOG = 'mutation { logEvent(input: {userId: "u1", contentId: "c1", eventType: "view"}) { duplicate } }'


@pytest.fixture(scope="module")
def single_redis() -> Iterator[str]:
    """One redis-server for this module's "single" runs."""
    server = RedisServer()
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(params=["memory", "single", "cluster"])
def app_client(app_client: Callable[..., Any], request: pytest.FixtureRequest) -> Callable[..., Any]:
    """The suite runs with buckets in process, in one Redis and in a 3-master Redis Cluster."""
    backend: dict[str, Any] = {}
    if request.param == "single":
        backend = {"redis_url": request.getfixturevalue("single_redis")}
    elif request.param == "cluster":
        backend = {"redis_url": fresh_cluster_url(), "redis_cluster": True}
    return lambda **overrides: app_client(**(backend | overrides))


def limited(bucket: str) -> float:
    """recengine_rate_limited_total{bucket}."""
    return REGISTRY.get_sample_value("recengine_rate_limited_total", {"bucket": bucket}) or 0.0


async def test_query_budget_is_per_key_with_retry_hint(app_client: Any, client_key: str, state: AppState) -> None:
    before = limited(QUERIES)
    async with app_client(**LOW) as http:
        for _ in range(3):
            assert (await apost(http, QUERY, key=client_key)).status_code == 200
        response = await apost(http, QUERY, key=client_key)
        other = await apost(http, QUERY, key=await new_key(state, "client", "other-client"))
    body = response.json()
    assert error_codes(body) == ["RATE_LIMITED"]
    assert response.status_code == 429
    retry = body["errors"][0]["extensions"]["retryAfter"]
    assert isinstance(retry, int) and retry >= 1
    assert response.headers["retry-after"] == str(retry)
    assert limited(QUERIES) == before + 1
    assert "errors" not in other.json()


async def test_events_have_their_own_budget(app_client: Any, gql: GQL, client_key: str, state: AppState) -> None:
    await gql('mutation { upsertContent(input: {id: "c1", title: "t", contentType: VIDEO}) { id } }')
    events = [{"userId": "u1", "contentId": "c1", "eventType": "view"}] * 2
    async with app_client(**LOW) as http:
        for _ in range(3):
            await apost(http, QUERY, key=client_key)  # spend the query budget
        batch = await apost(
            http, "mutation($e: [EventInput!]!) { logEvents(inputs: $e) { accepted } }", {"e": events}, key=client_key
        )
        assert batch.json()["data"]["logEvents"]["accepted"] == 2
        assert "errors" not in (await apost(http, LOG, key=client_key)).json()
        refused = await apost(http, LOG, key=client_key)
    assert error_codes(refused.json()) == ["RATE_LIMITED"]
    assert refused.json()["errors"][0]["extensions"]["bucket"] == EVENTS
    assert await count_rows(state, "events") == 3  # the refused event was not written


async def test_partly_limited_response_keeps_its_data(app_client: Any, client_key: str) -> None:
    async with app_client(rate_limit_queries_burst=1, rate_limit_queries_per_second=0.01) as http:
        response = await apost(http, '{ a: content(id: "x") { id } b: content(id: "y") { id } }', key=client_key)
    body = response.json()
    assert response.status_code == 200 and "retry-after" not in response.headers
    assert error_codes(body) == ["RATE_LIMITED"] and body["data"] is not None
    assert body["errors"][0]["extensions"]["retryAfter"] >= 1


async def test_rate_limiting_can_be_turned_off(app_client: Any, client_key: str) -> None:
    async with app_client(rate_limit_enabled=False, rate_limit_queries_burst=1) as http:
        for _ in range(5):
            assert "errors" not in (await apost(http, QUERY, key=client_key)).json()


@pytest.fixture
def killable_redis() -> Iterator[RedisServer]:
    """A private redis-server (this test kills it, so not the session's)."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


async def test_redis_buckets_are_shared_and_fall_back_when_redis_dies(killable_redis: RedisServer) -> None:
    redis_server = killable_redis
    settings = make_settings("postgresql+asyncpg://unused/x", redis_url=redis_server.url, **LOW)
    replica_a, replica_b = RateLimiter(settings), RateLimiter(settings)
    try:
        assert [(await replica_a.take("k", QUERIES)).allowed for _ in range(2)] == [True, True]
        assert (await replica_b.take("k", QUERIES)).allowed  # the third token, seen by both replicas
        refused = await replica_a.take("k", QUERIES)
        assert not refused.allowed and refused.retry_after > 0
        assert (await replica_b.take("k", EVENTS)).allowed  # a separate budget
        redis_server.kill()
        assert (await replica_a.take("k2", QUERIES)).allowed  # in-process fallback, no error
    finally:
        await replica_a.close()
        await replica_b.close()


async def test_cluster_buckets_are_shared_between_replicas() -> None:
    settings = make_settings("postgresql+asyncpg://unused/x", redis_url=fresh_cluster_url(), redis_cluster=True, **LOW)
    replica_a, replica_b = RateLimiter(settings), RateLimiter(settings)
    try:
        for key in [f"key-{i}" for i in range(8)]:  # identities spread over the cluster's slots
            assert [(await replica_a.take(key, QUERIES)).allowed for _ in range(2)] == [True, True]
            assert (await replica_b.take(key, QUERIES)).allowed
            assert not (await replica_a.take(key, QUERIES)).allowed
            assert (await replica_b.take(key, EVENTS)).allowed
    finally:
        await replica_a.close()
        await replica_b.close()
