"""API keys and roles, the operational endpoints, schema export, SQL statement counts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from app.context import AppState, Caller, resolve_caller
from app.schema.schema import schema
from app.services import auth
from tests.conftest import GQL, error_codes, recorded_sql

ROOT = Path(__file__).resolve().parents[2]


async def test_roles(gql: GQL, client_key: str) -> None:
    upsert = 'mutation { upsertContent(input: {id: "k1", title: "T", contentType: POST}) { id } }'
    assert error_codes(await gql(upsert, key=client_key)) == ["FORBIDDEN"]
    assert error_codes(await gql(upsert, key=None)) == ["UNAUTHENTICATED"]
    assert error_codes(await gql(upsert, key="rk_unknown")) == ["UNAUTHENTICATED"]
    assert (await gql(upsert))["data"]["upsertContent"] == {"id": "k1"}
    logged = await gql(
        'mutation { logEvent(input: {userId: "u", contentId: "k1", eventType: "view"}) { duplicate } }', key=client_key
    )
    assert logged["data"]["logEvent"] == {"duplicate": False}
    assert (await gql('{ content(id: "k1") { id } }', key=client_key))["data"]["content"] == {"id": "k1"}


async def test_revoked_key_stops_working(gql: GQL, state: AppState, client_key: str) -> None:
    async with state.sessions() as session:
        await auth.revoke_key(session, name="test-client")
    assert error_codes(await gql("{ eventTypes { weight } }", key=client_key)) == ["UNAUTHENTICATED"]


async def test_keys_are_stored_hashed(state: AppState, admin_key: str) -> None:
    async with state.sessions() as session:
        stored = (await session.execute(text("SELECT key_hash, prefix FROM api_keys"))).all()
    assert stored == [(auth.hash_key(admin_key), admin_key[:8])]
    assert admin_key not in stored[0][0]


async def test_open_endpoints_need_no_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/ready")).status_code == 200
    metrics = await client.get("/metrics")
    assert "recommendation_requests_total" in metrics.text and "recengine_cache_hits_total" in metrics.text
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_masked_unexpected_errors(gql: GQL, state: AppState) -> None:
    async with state.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE event_types RENAME TO event_types_gone"))
    try:
        body = await gql("{ eventTypes { weight } }")
    finally:
        async with state.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE event_types_gone RENAME TO event_types"))
    assert body["errors"][0]["message"] == "Internal server error"
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "requestId" in body["errors"][0]["extensions"]
    assert "event_types" not in str(body)


def test_schema_file_matches_code() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == schema.as_str() + "\n", "schema.graphql is stale: run `recengine export-schema`"


def test_every_type_field_and_argument_has_a_description() -> None:
    missing: list[str] = []
    for name, gtype in schema._schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not getattr(gtype, "description", None):
            missing.append(name)
        for field_name, field in getattr(gtype, "fields", {}).items():
            if not field.description:
                missing.append(f"{name}.{field_name}")
            for arg_name, arg in getattr(field, "args", {}).items():
                if not arg.description:
                    missing.append(f"{name}.{field_name}({arg_name})")
    assert missing == []


async def test_nested_page_uses_constant_statements(gql: GQL, state: AppState) -> None:
    contents = [{"id": f"n{i}", "title": f"T{i}", "contentType": "VIDEO"} for i in range(50)]
    await gql("mutation($i: [ContentInput!]!) { upsertContents(inputs: $i) { accepted } }", {"i": contents})
    events = [{"userId": f"u{i % 10}", "contentId": f"n{i}", "eventType": "view"} for i in range(50)]
    await gql("mutation($i: [EventInput!]!) { logEvents(inputs: $i) { accepted } }", {"i": events})
    query = '{ events(userId: "%s", first: 50) { edges { node { content { title } user { id email } } } } }'
    counts = []
    for user in ("u1", "u2"):
        with recorded_sql(state.engine) as statements:
            body = await gql(query % user)
        assert len(body["data"]["events"]["edges"]) == 5
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 6
    users = "{ %s }" % " ".join(
        f'u{i}: user(id: "u{i}") {{ events(first: 5) {{ totalCount edges {{ node {{ content {{ title }} }} }} }} }}'
        for i in range(10)
    )
    with recorded_sql(state.engine) as statements:
        body = await gql(users)
    assert all(body["data"][f"u{i}"]["events"]["totalCount"] == 5 for i in range(10))
    assert len(statements) <= 8, statements


async def test_a_remembered_key_opens_no_session(state: AppState, client_key: str) -> None:
    opened: list[int] = []

    def counting() -> Any:
        opened.append(1)
        return state.sessions()

    counted = replace(state, sessions=counting)  # type: ignore[arg-type]
    auth.forget_roles()
    header = f"Bearer {client_key}"
    assert await resolve_caller(counted, header) == Caller(auth.Role.CLIENT)
    assert len(opened) == 1  # the first request reads the key
    assert await resolve_caller(counted, header) == Caller(auth.Role.CLIENT)
    assert await resolve_caller(counted, "Bearer rk_unknown") is None
    assert await resolve_caller(counted, "Bearer rk_unknown") is None
    assert len(opened) == 2  # later ones (and an unknown key's repeats) are answered from the memo
    async with state.sessions() as session:
        await auth.revoke_key(session, name="test-client")  # forgets the memo: the next request reads again
    assert await resolve_caller(counted, header) is None
    assert len(opened) == 3
