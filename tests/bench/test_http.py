"""The load generators' client (app/bench/http.py) against a real HTTP server that answers each way it can."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from app.bench.http import GraphQLClient
from tests.hardening.servers import free_port

pytestmark = pytest.mark.asyncio


async def _graphql(request: web.Request) -> web.Response:
    """Echo the request back as data, or answer as the query asks: GraphQL errors, a 500, a body not JSON."""
    payload = await request.json()
    query = payload["query"]
    if query == "errors":
        return web.json_response({"data": None, "errors": [{"message": "field `x` is wrong"}]})
    if query == "status":
        return web.json_response({"errors": [{"message": "boom"}]}, status=500)
    if query == "html":
        return web.Response(text="<html>bad gateway</html>", status=502)
    if query == "list":
        return web.json_response([1, 2])
    echo = {"query": query, "variables": payload["variables"], "auth": request.headers.get("Authorization")}
    return web.json_response({"data": {"echo": echo, "contentType": request.headers.get("Content-Type")}})


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/graphql", _graphql)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_a_request_carries_query_variables_and_headers(server: str) -> None:
    async with GraphQLClient(server + "/", headers={"Authorization": "Bearer k"}) as http:
        body = await http.data("{ a }", {"u": "1", "n": [1, 2]})
    assert body["data"]["echo"] == {"query": "{ a }", "variables": {"u": "1", "n": [1, 2]}, "auth": "Bearer k"}
    assert body["data"]["contentType"] == "application/json"


async def test_graphql_errors_raise_with_the_operation_named(server: str) -> None:
    async with GraphQLClient(server) as http:
        reply = await http.post("errors")
        assert reply.status == 200 and reply.body["errors"]
        with pytest.raises(RuntimeError, match=r"logEvent: HTTP 200 .*field `x` is wrong"):
            await http.data("errors", operation="logEvent")


async def test_a_failed_status_raises_even_with_a_json_body(server: str) -> None:
    async with GraphQLClient(server) as http:
        with pytest.raises(RuntimeError, match="search: HTTP 500"):
            await http.data("status", operation="search")


async def test_a_body_that_is_not_a_json_object_raises(server: str) -> None:
    async with GraphQLClient(server) as http:
        with pytest.raises(json.JSONDecodeError):
            await http.post("html")
        with pytest.raises(ValueError, match="not a JSON object"):
            await http.post("list")


async def test_a_refused_connection_raises() -> None:
    async with GraphQLClient("http://127.0.0.1:9", timeout=5) as http:
        with pytest.raises(OSError):
            await http.post("{ a }")


async def test_the_client_must_be_opened_first() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await GraphQLClient("http://127.0.0.1:9").post("{ a }")
