"""Fixtures of the scale tests: a streaming standby of the session database, a 3-master Redis Cluster,
private Redis servers and `recengine serve` processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.bench.standby import Standby
from app.context import AppState
from app.main import build_state, close_state, create_app
from tests.conftest import make_settings
from tests.hardening.servers import RedisServer
from tests.scale.cluster import fresh_cluster_url

DATABASE = "recengine_test"


@pytest.fixture(scope="session")
def standby(pg_uri: str, database_url: str) -> Iterator[Standby]:
    """A hot standby of the session's PostgreSQL (after the test database exists), removed at the end."""
    server = Standby(pg_uri)
    server.create()
    yield server
    server.remove()


@pytest.fixture
def replica(standby: Standby) -> Iterator[Standby]:
    """The standby, running and replaying, caught up with the primary; left that way after the test."""
    yield standby
    try:
        standby.sql("SELECT 1")
    except Exception:  # stopped by the test: start it again
        standby.start()
    standby.resume_replay()
    standby.catch_up()


@pytest.fixture
def redis_cluster_url() -> str:
    """The 3-master test cluster, emptied."""
    return fresh_cluster_url()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@asynccontextmanager
async def app_with(database_url: str, **overrides: Any) -> AsyncIterator[tuple[AppState, httpx.AsyncClient]]:
    """An application with its own state (settings overridden) and an in-process client."""
    settings = make_settings(database_url, **overrides)
    state = await build_state(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, state=state))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield state, http
    finally:
        await close_state(state)


async def post(
    http: httpx.AsyncClient, key: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST one operation; the whole response body."""
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers={"Authorization": f"Bearer {key}"}
    )
    body: dict[str, Any] = response.json()
    return body
