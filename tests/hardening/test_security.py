"""Security: every mutation's auth rules, hashed keys, no secrets in logs, privacy, complete erasure."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from graphql import GraphQLInputObjectType, GraphQLNonNull, Undefined, get_named_type, is_leaf_type
from sqlalchemy import text

from app.context import AppState
from app.logging import JsonFormatter
from app.main import build_state, close_state
from app.resolvers.permissions import RULES
from app.schema.schema import schema
from app.services import auth
from tests.conftest import GQL, error_codes, make_settings

CLIENT_MUTATIONS = {name for name, rule in RULES.items() if rule.key is auth.Role.CLIENT}
MUTATIONS = schema._schema.mutation_type.fields  # type: ignore[union-attr]
SAMPLE = {
    "ID": "x1",
    "String": "view",
    "Float": 1.0,
    "Int": 1,
    "Boolean": True,
    "ContentStatus": "PUBLISHED",
    "ContentType": "VIDEO",
    "UserStatus": "ACTIVE",
    "UUID": None,
    "JSON": None,
    "DateTime": None,
}


def _value(type_: Any) -> Any:
    """A minimal value of an input type (required fields only)."""
    named = get_named_type(type_)
    if isinstance(named, GraphQLInputObjectType):
        value: Any = {
            n: _value(f.type)
            for n, f in named.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        }
    else:
        value = SAMPLE[named.name]
    return [value] if "[" in str(type_) else value


def _mutation(name: str) -> tuple[str, dict[str, Any]]:
    field = MUTATIONS[name]
    defs = ", ".join(f"${a}: {s.type}" for a, s in field.args.items())
    args = ", ".join(f"{a}: ${a}" for a in field.args)
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"  # Boolean! has no fields
    return (
        f"mutation({defs}) {{ {name}({args}){selection} }}",
        {a: _value(s.type) for a, s in field.args.items()},
    )


@pytest.mark.parametrize("name", sorted(MUTATIONS))
async def test_every_mutation_requires_the_right_key(gql: GQL, client_key: str, name: str) -> None:
    query, variables = _mutation(name)
    assert error_codes(await gql(query, variables, key=None)) == ["UNAUTHENTICATED"]
    assert error_codes(await gql(query, variables, key="rk_not-a-real-key")) == ["UNAUTHENTICATED"]
    with_client = error_codes(await gql(query, variables, key=client_key))
    if name in CLIENT_MUTATIONS:
        assert "FORBIDDEN" not in with_client and "UNAUTHENTICATED" not in with_client
    else:
        assert with_client == ["FORBIDDEN"]


async def test_keys_are_stored_hashed(state: AppState) -> None:
    async with state.sessions() as session:
        key = await auth.create_key(session, name="hash-check", role="client")
    async with state.engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM api_keys WHERE name = 'hash-check'"))).mappings().one()
    assert key.secret not in {str(v) for v in row.values()}
    assert row["key_hash"] == auth.hash_key(key.secret)


async def test_secrets_never_reach_the_logs(database_url: str, gql: GQL, caplog: pytest.LogCaptureFixture) -> None:
    password_url = database_url.replace("postgres@", "postgres:S3cretPassw0rd@", 1)
    caplog.set_level(logging.DEBUG)
    settings = make_settings(password_url, admin_api_key="rk_bootstrap-Secret-Value")
    state = await build_state(settings)
    try:
        async with state.sessions() as session:
            key = await auth.create_key(session, name="log-check", role="client")
        await gql('{ content(id: "c1") { id } }', key=key.secret)
        await gql('{ content(id: "c1") { id } }', key=key.secret + "x")
    finally:
        await close_state(state)
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records) + caplog.text
    for secret in ("S3cretPassw0rd", "rk_bootstrap-Secret-Value", key.secret):
        assert secret not in logged


SEED = """mutation { a: upsertContent(input: {id: "c1", title: "Space rocket", contentType: VIDEO}) { id }
  b: upsertContent(input: {id: "c2", title: "Moon landing", contentType: VIDEO}) { id }
  upsertUser(input: {id: "u1", privacySettings: {personalization: false, dataSharing: false}}) { id } }"""


async def test_personalization_off_is_honoured(gql: GQL) -> None:
    await gql(SEED)
    await gql('mutation { logEvent(input: {userId: "u1", contentId: "c1", eventType: "like"}) { duplicate } }')
    body = await gql('{ recommendations(userId: "u1", count: 5) { items { reasons { kind } } } }')
    kinds = {r["kind"] for i in body["data"]["recommendations"]["items"] for r in i["reasons"]}
    assert kinds <= {"PERSONALIZATION_OFF", "POPULARITY", "TRENDING", "RECENCY"}, body


async def test_data_sharing_off_leaves_events_out_of_training(gql: GQL, state: AppState) -> None:
    from app.ml.training import load_events

    await gql(SEED)
    await gql('mutation { upsertUser(input: {id: "u2"}) { id } }')
    for user in ("u1", "u2"):
        await gql(
            f'mutation {{ logEvent(input: {{userId: "{user}", contentId: "c1", eventType: "like"}}) {{ duplicate }} }}'
        )
    users = set((await load_events(state.sessions)).user_ids.tolist())
    assert "u2" in users and "u1" not in users


async def _user_tables(state: AppState) -> list[str]:
    sql = """SELECT DISTINCT c.table_name FROM information_schema.columns c
             JOIN information_schema.tables t USING (table_schema, table_name)
             WHERE c.column_name = 'user_id' AND c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"""
    async with state.engine.connect() as conn:
        return [r[0] for r in (await conn.execute(text(sql))).all()]


async def test_delete_user_leaves_no_row(gql: GQL, state: AppState) -> None:
    await gql(SEED)
    await gql(
        'mutation { logEvent(input: {userId: "u1", contentId: "c1", eventType: "view", '
        'eventId: "7d0f8f5e-8f0e-4a7e-9a57-1b7e6b0c1a01"}) { duplicate } }'
    )
    await gql('{ recommendations(userId: "u1") { cached } }')
    receipt = await gql('mutation { deleteUser(id: "u1") { profiles events } }')
    assert receipt["data"]["deleteUser"]["profiles"] == 1
    tables = await _user_tables(state)
    assert {"users", "events"} <= set(tables)
    async with state.engine.connect() as conn:
        for table in tables:
            count = (await conn.execute(text(f"SELECT count(*) FROM {table} WHERE user_id = 'u1'"))).scalar_one()
            assert count == 0, table


async def test_delete_user_leaves_no_cache_entry(database_url: str, admin_key: str) -> None:
    import httpx
    from redis.asyncio import Redis

    from app.main import create_app
    from tests.hardening.conftest import apost
    from tests.hardening.servers import RedisServer

    redis = RedisServer()
    redis.start()
    settings = make_settings(database_url, redis_url=redis.url)
    own = await build_state(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, state=own))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            await apost(http, SEED, key=admin_key)
            await apost(http, '{ recommendations(userId: "u1") { cached } }', key=admin_key)
            await apost(http, 'mutation { deleteUser(id: "u1") { profiles } }', key=admin_key)
        client = Redis.from_url(redis.url)
        leftovers = [k async for k in client.scan_iter(match="*u1*")]
        generation_ttl = await client.ttl(b"recengine:v1:gen:user:{u1}")
        await client.aclose()
    finally:
        await close_state(own)
        redis.stop()
    # only the generation counter stays (it must never go back, issue 12 item 4), and it expires
    assert leftovers == [b"recengine:v1:gen:user:{u1}"]
    assert generation_ttl > settings.cache_ttl_seconds
