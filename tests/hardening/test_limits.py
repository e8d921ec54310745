"""Abuse limits: depth, aliases, tokens, page and batch caps, batching, introspection, time budget, body size."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from graphql import GraphQLNonNull, GraphQLObjectType, Undefined, get_named_type
from sqlalchemy import text

from app.context import AppState
from app.schema.schema import schema
from tests.conftest import GQL, error_codes
from tests.hardening.conftest import apost, count_rows

DEEP = '{ user(id: "u1") { events { edges { node { content { similar { content { id } } } } } } } }'
SEED = """mutation { upsertUser(input: {id: "u1"}) { id }
  upsertContent(input: {id: "c1", title: "Space rocket", contentType: VIDEO}) { id } }"""
PARENTS = {"User": 'user(id: "u1")', "Content": 'content(id: "c1")'}
REQUIRED = {"userId": '"u1"', "contentId": '"c1"', "id": '"u1"', "query": '"rocket"'}


async def test_depth_limit(app_client: Any, admin_key: str) -> None:
    async with app_client(max_query_depth=5) as http:
        body = (await apost(http, DEEP, key=admin_key)).json()
        assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
        assert "exceeds maximum operation depth of 5" in body["errors"][0]["message"]
    async with app_client() as http:  # the default (10) admits it
        assert "errors" not in (await apost(http, DEEP, key=admin_key)).json()


async def test_alias_limit(app_client: Any, admin_key: str) -> None:
    query = "{ " + " ".join(f'a{i}: content(id: "c{i}") {{ id }}' for i in range(3)) + " }"
    async with app_client(max_aliases=2) as http:
        body = (await apost(http, query, key=admin_key)).json()
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "aliases" in body["errors"][0]["message"]


async def test_token_limit(app_client: Any, admin_key: str) -> None:
    query = "{ " + " ".join(f'a{i}: content(id: "c{i}") {{ id }}' for i in range(20)) + " }"
    async with app_client(max_query_tokens=50) as http:
        body = (await apost(http, query, key=admin_key)).json()
    assert error_codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert "tokens" in body["errors"][0]["message"]


async def test_parsed_document_cache_keeps_the_token_limit_and_syntax_errors(app_client: Any, admin_key: str) -> None:
    query = "{ " + " ".join(f'a{i}: content(id: "c{i}") {{ id }}' for i in range(20)) + " }"
    async with app_client() as http:  # parsed (and cached) under the default limit
        assert "errors" not in (await apost(http, query, key=admin_key)).json()
    async with app_client(max_query_tokens=50) as http:  # the cached document is not reused under a lower limit
        for _ in range(2):
            assert error_codes((await apost(http, query, key=admin_key)).json()) == ["GRAPHQL_PARSE_FAILED"]
    async with app_client() as http:  # a syntax error is never cached: the same answer every time
        for _ in range(2):
            assert error_codes((await apost(http, "{ content(id: ", key=admin_key)).json()) == ["GRAPHQL_PARSE_FAILED"]


def _paged_fields() -> list[tuple[str, str, str]]:
    """(parent type, field, argument) for every `first`/`count` argument in the schema."""
    found = []
    for type_ in schema._schema.type_map.values():
        if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__"):
            for name, field in type_.fields.items():
                found += [(type_.name, name, arg) for arg in field.args if arg in ("first", "count")]
    return found


def _selection(field_type: Any) -> str:
    named = get_named_type(field_type)
    if isinstance(named, GraphQLObjectType):
        scalar = next(n for n, f in named.fields.items() if not isinstance(get_named_type(f.type), GraphQLObjectType))
        return "{ " + scalar + " }"
    return ""


def _call(parent: str, name: str, arg: str, value: int) -> str:
    field = schema._schema.type_map[parent].fields[name]  # type: ignore[union-attr]
    args = [f"{arg}: {value}"] + [
        f"{a}: {REQUIRED[a]}"
        for a, spec in field.args.items()
        if isinstance(spec.type, GraphQLNonNull) and spec.default_value is Undefined and a != arg
    ]
    if "userId" in field.args and "sessionId" in field.args:  # exactly one of them: the user
        args.append('userId: "u1"')
    call = f"{name}({', '.join(args)}) {_selection(field.type)}"
    if parent == "Query":
        return "{ " + call + " }"
    assert parent in PARENTS, f"no test path to {parent}.{name}: add one to PARENTS"
    return "{ " + PARENTS[parent] + " { " + call + " } }"


@pytest.mark.parametrize(("parent", "name", "arg"), _paged_fields())
async def test_every_page_argument_is_capped(gql: GQL, state: AppState, parent: str, name: str, arg: str) -> None:
    await gql(SEED)
    for bad in (state.settings.max_page_size + 1, 0, -1):
        body = await gql(_call(parent, name, arg, bad))
        assert error_codes(body) == ["BAD_USER_INPUT"], (parent, name, bad, body)
        assert body["errors"][0]["extensions"].get("field") == arg or arg in body["errors"][0]["message"]
    assert "errors" not in await gql(_call(parent, name, arg, state.settings.max_page_size))


def test_page_arguments_are_discovered() -> None:
    assert len(_paged_fields()) >= 9


async def test_batches_are_capped_and_write_nothing(app_client: Any, admin_key: str, state: AppState, gql: GQL) -> None:
    await gql(SEED)
    events = [{"userId": "u1", "contentId": "c1", "eventType": "view"}] * 4
    contents = [{"id": f"b{i}", "title": "t", "contentType": "VIDEO"} for i in range(4)]
    async with app_client(max_batch_size=3) as http:
        body = (
            await apost(
                http,
                "mutation($e: [EventInput!]!) { logEvents(inputs: $e) { accepted } }",
                {"e": events},
                key=admin_key,
            )
        ).json()
        assert error_codes(body) == ["BAD_USER_INPUT"]
        body = (
            await apost(
                http,
                "mutation($c: [ContentInput!]!) { upsertContents(inputs: $c) { accepted } }",
                {"c": contents},
                key=admin_key,
            )
        ).json()
        assert error_codes(body) == ["BAD_USER_INPUT"]
    assert await count_rows(state, "events") == 0
    assert await count_rows(state, "content") == 1


async def test_batching_is_off_by_default_and_capped_when_on(app_client: Any, admin_key: str) -> None:
    op = {"query": "{ eventTypes { eventType } }"}
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with app_client() as http:
        assert (await http.post("/graphql", json=[op, op], headers=headers)).status_code == 400
    async with app_client(max_batched_operations=2) as http:
        ok = await http.post("/graphql", json=[op, op], headers=headers)
        assert ok.status_code == 200 and len(ok.json()) == 2
        assert (await http.post("/graphql", json=[op, op, op], headers=headers)).status_code == 400


INTROSPECT = "{ __schema { queryType { name } } }"


async def test_introspection_and_graphiql_follow_the_profile(app_client: Any, admin_key: str) -> None:
    html = {"Accept": "text/html"}
    async with app_client() as http:
        assert (await apost(http, INTROSPECT, key=admin_key)).json()["data"]["__schema"]["queryType"]["name"] == "Query"
        assert (await http.get("/graphql", headers=html)).status_code == 200
    async with app_client(env="production") as http:
        body = (await apost(http, INTROSPECT, key=admin_key)).json()
        assert set(error_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
        assert "introspection" in body["errors"][0]["message"]
        assert (await http.get("/graphql", headers=html)).status_code == 404
    async with app_client(env="production", introspection=True, graphiql=True) as http:
        assert "errors" not in (await apost(http, INTROSPECT, key=admin_key)).json()
        assert (await http.get("/graphql", headers=html)).status_code == 200


async def test_field_suggestions_off_in_production(app_client: Any, admin_key: str) -> None:
    typo = '{ contnt(id: "c1") { id } }'
    async with app_client() as http:
        assert "Did you mean" in (await apost(http, typo, key=admin_key)).json()["errors"][0]["message"]
    async with app_client(env="production") as http:
        body = (await apost(http, typo, key=admin_key)).json()
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Did you mean" not in body["errors"][0]["message"]


async def _with_content_locked(state: AppState, request: Any) -> Any:
    """Run `request()` while another transaction holds an exclusive lock on `content`."""
    async with state.engine.connect() as conn:
        await conn.execute(text("BEGIN"))
        await conn.execute(text("LOCK TABLE content IN ACCESS EXCLUSIVE MODE"))
        try:
            return await request()
        finally:
            await conn.execute(text("ROLLBACK"))


async def test_request_time_budget_ends_in_timeout(app_client: Any, admin_key: str, state: AppState) -> None:
    async with app_client(request_timeout_seconds=0.5) as http:
        response = await _with_content_locked(state, lambda: apost(http, '{ content(id: "c1") { id } }', key=admin_key))
    assert error_codes(response.json()) == ["TIMEOUT"]
    assert response.status_code == 504


async def test_statement_timeout_ends_in_timeout(database_url: str, admin_key: str, state: AppState) -> None:
    from app.main import build_state, close_state, create_app
    from tests.conftest import make_settings

    settings = make_settings(database_url, db_statement_timeout_seconds=0.3, request_timeout_seconds=30)
    own = await build_state(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, state=own))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            await apost(http, "{ eventTypes { eventType } }", key=admin_key)  # key lookup before the lock
            response = await _with_content_locked(
                state, lambda: apost(http, '{ content(id: "c1") { id } }', key=admin_key)
            )
    finally:
        await close_state(own)
    assert error_codes(response.json()) == ["TIMEOUT"]


async def test_body_size_limit(app_client: Any, admin_key: str, state: AppState, gql: GQL) -> None:
    await gql(SEED)
    events = [{"userId": "u1", "contentId": "c1", "eventType": "view", "metadata": {"pad": "x" * 200}}] * 10
    query = "mutation($e: [EventInput!]!) { logEvents(inputs: $e) { accepted } }"
    async with app_client(max_body_bytes=1024) as http:
        response = await apost(http, query, {"e": events}, key=admin_key)
        assert response.status_code == 413
        assert error_codes(response.json()) == ["PAYLOAD_TOO_LARGE"]

        async def chunks() -> Any:
            for _ in range(10):
                yield b" " * 200
                await asyncio.sleep(0)

        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {admin_key}"}
        streamed = await http.post("/graphql", content=chunks(), headers=headers)
        assert streamed.status_code == 413
    assert await count_rows(state, "events") == 0
