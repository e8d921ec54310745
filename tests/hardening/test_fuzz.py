"""Property-based fuzzing over the whole schema, and hostile strings through every string argument."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from graphql import GraphQLInputObjectType, GraphQLNonNull, GraphQLScalarType, Undefined, get_named_type
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries
from sqlalchemy import text

from app.context import AppState
from app.schema.schema import schema
from tests.conftest import GQL

SDL = schema.as_str()
SCALARS = {
    "JSON": st.one_of(st.text(max_size=50).map(nodes.String), st.integers().map(nodes.Int)),
    "DateTime": st.datetimes().map(lambda d: nodes.String(d.isoformat())),
    "UUID": st.uuids().map(nodes.String),
}
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
CLIENT_ERRORS = {
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "BAD_USER_INPUT",
    "NOT_FOUND",
    "CONFLICT",
    "QUERY_TOO_COMPLEX",
}
SEED = """mutation { upsertUser(input: {id: "u1"}) { id }
  upsertContent(input: {id: "c1", title: "Space rocket", contentType: VIDEO}) { id } }"""


def codes(body: dict[str, Any]) -> list[str]:
    """Error codes of a response body."""
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


async def send(client: httpx.AsyncClient, key: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    """POST and check the response is never an unmasked or unexpected server error."""
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code < 500, (query, response.text[:500])
    body = response.json()
    assert "INTERNAL_SERVER_ERROR" not in codes(body), (query, variables, body)
    return body


@FUZZ
@given(query=st.one_of(queries(SDL, custom_scalars=SCALARS), mutations(SDL, custom_scalars=SCALARS)))
async def test_valid_operations_never_fail_unexpectedly(client: httpx.AsyncClient, admin_key: str, query: str) -> None:
    body = await send(client, admin_key, query)
    assert set(codes(body)) <= CLIENT_ERRORS, (query, body)


@FUZZ
@given(
    query=st.one_of(
        queries(SDL, custom_scalars=SCALARS, mode=Mode.NEGATIVE),
        mutations(SDL, custom_scalars=SCALARS, mode=Mode.NEGATIVE),
    )
)
async def test_invalid_operations_get_a_client_error(client: httpx.AsyncClient, admin_key: str, query: str) -> None:
    body = await send(client, admin_key, query)
    assert body.get("errors"), (query, body)
    assert set(codes(body)) <= CLIENT_ERRORS, (query, body)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": [value]}
    return value


HOSTILE: list[Any] = [
    "'; DROP TABLE users; --",
    '" OR 1=1 --',
    "%_\\",
    "a\x00b",
    "\u202e\U0001d573" * 5000,
    "",
    " ",
    "{{7*7}}",
    _nested(300),
]
BASE_INPUTS = {
    "UserInput": {"id": "u2"},
    "ContentInput": {"id": "c2", "title": "t", "contentType": "VIDEO"},
    "EventInput": {"userId": "u1", "contentId": "c1", "eventType": "view"},
    "PrivacyInput": {"personalization": True},
    "ContentFilterInput": {},
    "BoostInput": {"filter": {}, "factor": 2.0},
    "PlacementInput": {"name": "p1"},
    "ExperimentInput": {"name": "e1", "arms": [{"name": "a", "traffic": 0.5}]},
    "ExperimentArmInput": {"name": "a", "traffic": 0.5},
}
PLAIN = {
    "ID": "c1",
    "String": "x",
    "Float": 1.0,
    "Int": 5,
    "Boolean": True,
    "ContentStatus": "PUBLISHED",
    "ContentType": "VIDEO",
    "SearchMode": "TEXT",
    "Strategy": "HYBRID",
}
TEXTUAL = {"ID", "String", "JSON"}


def _type_text(type_: Any) -> str:
    return str(type_)


def _cases() -> list[tuple[str, str, str, str | None]]:
    """(operation kind, root field, argument, input field or None) for every textual slot."""
    found: list[tuple[str, str, str, str | None]] = []
    for kind, root in (("query", schema._schema.query_type), ("mutation", schema._schema.mutation_type)):
        assert root is not None
        for name, field in root.fields.items():
            for arg, spec in field.args.items():
                named = get_named_type(spec.type)
                if isinstance(named, GraphQLInputObjectType):
                    found += [
                        (kind, name, arg, f)
                        for f, fs in named.fields.items()
                        if get_named_type(fs.type).name in TEXTUAL
                    ]
                elif isinstance(named, GraphQLScalarType) and named.name in TEXTUAL:
                    found.append((kind, name, arg, None))
    return found


def _operation(kind: str, name: str, target: str, inner: str | None, value: Any) -> tuple[str, dict[str, Any]]:
    root = schema._schema.query_type if kind == "query" else schema._schema.mutation_type
    field = root.fields[name]  # type: ignore[union-attr]
    defs, args, variables = [], [], {}
    for arg, spec in field.args.items():
        named = get_named_type(spec.type)
        if arg != target and (not isinstance(spec.type, GraphQLNonNull) or spec.default_value is not Undefined):
            continue
        if arg == target and inner is None:
            plain = value
        elif isinstance(named, GraphQLInputObjectType):
            base = dict(BASE_INPUTS[named.name])
            if arg == target:
                base[inner] = value
            plain = [base] if "[" in _type_text(spec.type) else base
        else:
            plain = PLAIN[named.name]
            plain = [plain] if "[" in _type_text(spec.type) else plain
        defs.append(f"${arg}: {_type_text(spec.type)}")
        args.append(f"{arg}: ${arg}")
        variables[arg] = plain
    out = get_named_type(field.type)
    selection = "{ __typename }" if hasattr(out, "fields") else ""
    return f"{kind}({', '.join(defs)}) {{ {name}({', '.join(args)}) {selection} }}", variables


async def _fingerprint(state: AppState) -> tuple[int, ...]:
    tables = ["users", "content", "events", "event_types", "api_keys", "user_factors", "item_factors", "placements"]
    sql = " UNION ALL ".join(
        f"SELECT '{t}', count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {t} t"
        for t in tables
    )
    async with state.engine.connect() as conn:
        return tuple(hash(tuple(row)) for row in (await conn.execute(text(sql))).all())


@pytest.mark.parametrize(("kind", "name", "arg", "inner"), _cases())
async def test_hostile_strings(
    client: httpx.AsyncClient,
    admin_key: str,
    gql: GQL,
    state: AppState,
    kind: str,
    name: str,
    arg: str,
    inner: str | None,
) -> None:
    await gql(SEED)
    for value in HOSTILE:
        before = await _fingerprint(state)
        query, variables = _operation(kind, name, arg, inner, value)
        body = await send(client, admin_key, query, variables)
        if body.get("errors"):
            assert set(codes(body)) <= CLIENT_ERRORS, (query, json.dumps(variables)[:300], body)
            if kind == "mutation":
                assert await _fingerprint(state) == before, (name, arg, inner, str(value)[:50])
