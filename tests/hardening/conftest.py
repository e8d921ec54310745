"""Fixtures of the hardening tests: a live server on 127.0.0.1 and helpers."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.config import Settings
from app.context import AppState
from app.main import create_app
from app.security.ratelimit import RateLimiter
from tests.conftest import make_settings
from tests.hardening.servers import thread_server


@pytest.fixture(scope="module")
def live_url(database_url: str) -> Iterator[str]:
    """A uvicorn server (auth disabled) on the test database, for black-box HTTP checks."""
    with thread_server(make_settings(database_url, auth="disabled")) as url:
        yield url


def post(url: str, query: str, variables: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    """POST one GraphQL operation synchronously."""
    return httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers, timeout=30
    )


@pytest.fixture
def app_client(state: AppState) -> Callable[..., Any]:
    """An in-process client for an app built with setting overrides over the shared state."""

    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(**(state.settings.model_dump() | overrides))
        limiter = RateLimiter(settings) if settings.rate_limit_enabled else None
        app_state = dataclasses.replace(state, settings=settings, limiter=limiter)
        app = create_app(settings, state=app_state)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            yield http
        if limiter is not None:
            await limiter.close()

    return make


async def apost(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, key: str | None = None, **headers: str
) -> httpx.Response:
    """POST one GraphQL operation through an async client."""
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


async def count_rows(state: AppState, table: str) -> int:
    """Rows in `table` of the test database."""
    async with state.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
