"""Fixtures of the hardening tests: a live server on 127.0.0.1 and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.hardening.servers import thread_server


@pytest.fixture(scope="module")
def live_url(database_url: str) -> Iterator[str]:
    """A uvicorn server (auth disabled) on the test database, for black-box HTTP checks."""
    with thread_server(make_settings(database_url, auth="disabled")) as url:
        yield url


def post(url: str, query: str, variables: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    """POST one GraphQL operation synchronously."""
    return httpx.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers,
                      timeout=30)
