"""The replica bench's read-your-writes step against `recengine serve` (no standby needed: it times the
primary's answer after each write), and its loud failure when a write is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.bench.http import GraphQLClient
from app.bench.replicas import ReplicaOptions, _read_after_write
from tests.conftest import fresh_database
from tests.hardening.servers import serve_process, server_env

ITEMS = ["raw-c1", "raw-c2", "raw-c3"]
UPSERT = "mutation($c: [ContentInput!]!) { upsertContents(inputs: $c) { accepted errors { message } } }"
EVENTS = "query($u: ID!) { events(userId: $u, first: 50) { edges { node { contentId eventType } } } }"


async def _seed(base: str) -> None:
    items = [{"id": c, "title": f"rocket {c}", "contentType": "VIDEO", "tags": ["space"]} for c in ITEMS]
    async with GraphQLClient(base) as http:
        body = await http.data(UPSERT, {"c": items}, operation="upsertContents")
    assert body["data"]["upsertContents"]["accepted"] == len(ITEMS)


async def _events(base: str, user: str) -> list[dict[str, str]]:
    async with GraphQLClient(base) as http:
        body = await http.data(EVENTS, {"u": user})
    return [edge["node"] for edge in body["data"]["events"]["edges"]]


def test_read_after_write_times_every_read_and_stops_on_a_refused_write(pg_uri: str, tmp_path: Path) -> None:
    url = fresh_database(pg_uri, "recengine_read_after_write")
    with serve_process(server_env(url, RECENGINE_AUTH="disabled"), tmp_path / "serve.log") as (base, _):
        asyncio.run(_seed(base))
        options = ReplicaOptions(output=tmp_path, size=len(ITEMS), writes=4)

        stats = asyncio.run(_read_after_write(base, ["raw-u1", "raw-u2"], ITEMS, options))
        assert (stats.operation, stats.n, stats.errors) == ("read_after_write", 4, 0)
        assert stats.p50_ms > 0
        assert len(asyncio.run(_events(base, "raw-u1"))) == 2  # writes 0 and 2 went to raw-u1

        with pytest.raises(RuntimeError, match="logEvent: HTTP 200"):
            asyncio.run(_read_after_write(base, ["raw-u3"], ["no-such-item"], options))
        assert asyncio.run(_events(base, "raw-u3")) == []
