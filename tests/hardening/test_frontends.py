"""Safe for frontends (issue 12, item 1-2): user tokens and their rules over every root field, CORS, query cost."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text

from app.context import AppState
from app.resolvers.permissions import RULES, UserScope
from app.schema.schema import root_field_names, schema
from app.security.cost import static_cost
from app.services import tokens
from tests.cli.test_cli import recengine
from tests.conftest import GQL, error_codes
from tests.hardening.conftest import apost

ROOT = Path(__file__).resolve().parents[2]
ME, OTHER = "u1", "u2"
SEED = """mutation { upsertUser(input: {id: "u1"}) { id } other: upsertUser(input: {id: "u2"}) { id }
  upsertContent(input: {id: "c1", title: "Space rocket", contentType: VIDEO}) { id }
  draft: upsertContent(input: {id: "d1", title: "Secret draft", contentType: VIDEO, status: DRAFT}) { id } }"""
EVENT = '{userId: $u, contentId: "c1", eventType: "view"}'
MY_EVENT = '{userId: "u1", contentId: "c1", eventType: "view"}'

# One operation per root field; `$u` is the user id the call acts for (the token's own, or another's).
OPERATIONS: dict[str, str] = {
    "user": "query($u: ID!) { user(id: $u) { id email } }",
    "content": '{ content(id: "c1") { id } }',
    "contents": "{ contents(first: 5) { totalCount } }",
    "events": "query($u: ID!) { events(userId: $u) { totalCount } }",
    "searchContent": '{ searchContent(query: "space", mode: TEXT) { score } }',
    "eventTypes": "{ eventTypes { eventType } }",
    "recommendations": "query($u: ID!) { recommendations(userId: $u, count: 2) { requestId } }",
    "similarContent": '{ similarContent(contentId: "c1", count: 2) { contentId } }',
    "trending": "{ trending(count: 2) { contentId } }",
    "modelVersions": "{ modelVersions { id } }",
    "upsertUser": 'mutation($u: ID!) { upsertUser(input: {id: $u, email: "x@example.com"}) { id } }',
    "updatePrivacySettings": (
        "mutation($u: ID!) { updatePrivacySettings(userId: $u, input: {personalization: false}) { id } }"
    ),
    "deleteUser": "mutation($u: ID!) { deleteUser(id: $u) { userId } }",
    "createUserToken": "mutation($u: ID!) { createUserToken(userId: $u) { token } }",
    "upsertContent": 'mutation { upsertContent(input: {id: "c2", title: "t", contentType: VIDEO}) { id } }',
    "upsertContents": 'mutation { upsertContents(inputs: [{id: "c2", title: "t", contentType: VIDEO}]) { accepted } }',
    "setContentStatus": 'mutation { setContentStatus(id: "c1", status: ARCHIVED) { id } }',
    "logEvent": f"mutation($u: ID!) {{ logEvent(input: {EVENT}) {{ duplicate }} }}",
    "logEvents": f"mutation($u: ID!) {{ logEvents(inputs: [{MY_EVENT}, {EVENT}]) {{ accepted }} }}",
    "setEventTypeWeight": 'mutation { setEventTypeWeight(eventType: "view", weight: 2) { weight } }',
    "activateModel": "mutation { activateModel(id: 1) { id } }",
    "rerank": 'query($u: ID!) { rerank(userId: $u, contentIds: ["c1"]) { skippedIds } }',
    "placements": "{ placements { name } }",
    "upsertPlacement": 'mutation { upsertPlacement(input: {name: "home"}) { name } }',
    "deletePlacement": 'mutation { deletePlacement(name: "home") }',
    "recommendationStats": '{ recommendationStats(since: "2026-01-01T00:00:00Z") { impressions } }',
    "experiments": "{ experiments { name } }",
    "upsertExperiment": 'mutation { upsertExperiment(input: {name: "e", arms: [{name: "a", traffic: 0.5}]}) { name } }',
    "stopExperiment": 'mutation { stopExperiment(name: "e") { name } }',
    "mergeSession": 'mutation($u: ID!) { mergeSession(sessionId: "s1", userId: $u) { eventsMoved } }',
}
TABLES = ("users", "content", "events", "model_versions", "event_types")


def user_token(state: AppState, subject: str = ME, ttl: int = 600) -> str:
    """A token for `subject` signed with the test settings' secret."""
    return tokens.issue(state.settings, subject=subject, ttl_seconds=ttl).token


async def snapshot(state: AppState) -> dict[str, Any]:
    """The rows of the tables a call could write (to prove a refused call wrote nothing)."""
    found: dict[str, Any] = {}
    async with state.engine.connect() as conn:
        for table in TABLES:
            found[table] = sorted(map(str, (await conn.execute(text(f"SELECT * FROM {table}"))).all()))
    return found


def run_as(gql: GQL, name: str, token: str, acting_for: str) -> Any:
    query = OPERATIONS[name]
    return gql(query, {"u": acting_for} if "$u" in query else {}, key=token)


def test_every_root_field_has_a_rule_and_a_case() -> None:
    names = set(root_field_names(schema))
    assert names == set(RULES) == set(OPERATIONS)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
async def test_user_token_rules(gql: GQL, state: AppState, name: str) -> None:
    await gql(SEED)
    token, rule = user_token(state), RULES[name]
    if rule.user is UserScope.OWN:
        before = await snapshot(state)
        refused = await run_as(gql, name, token, OTHER)
        assert error_codes(refused) == ["FORBIDDEN"], refused
        assert await snapshot(state) == before  # nothing written for another user's id
    own = await run_as(gql, name, token, ME)
    if rule.user is UserScope.NONE:
        assert error_codes(own) == ["FORBIDDEN"], own
    else:
        assert "FORBIDDEN" not in error_codes(own) and "UNAUTHENTICATED" not in error_codes(own), own


async def test_user_token_sees_published_content_only(gql: GQL, state: AppState, client_key: str) -> None:
    await gql(SEED)
    token = user_token(state)
    assert (await gql('{ content(id: "d1") { id } }', key=token))["data"]["content"] is None
    assert (await gql('{ content(id: "d1") { id } }', key=client_key))["data"]["content"] == {"id": "d1"}
    listed = await gql("{ contents(first: 10) { edges { node { id } } } }", key=token)
    assert [e["node"]["id"] for e in listed["data"]["contents"]["edges"]] == ["c1"]
    drafts = await gql("{ contents(first: 10, status: DRAFT) { totalCount } }", key=token)
    assert error_codes(drafts) == ["FORBIDDEN"]


async def test_tokens_from_the_api_act_for_their_user(gql: GQL, state: AppState, client_key: str) -> None:
    await gql(SEED)
    minted = await gql(
        'mutation { createUserToken(userId: "u1", ttlSeconds: 120) { token userId expiresAt } }', key=client_key
    )
    issued = minted["data"]["createUserToken"]
    assert issued["userId"] == ME
    expires = datetime.fromisoformat(issued["expiresAt"])
    assert timedelta(seconds=100) < expires - datetime.now(UTC) <= timedelta(seconds=120)
    assert tokens.verify(state.settings, issued["token"]).subject == ME
    logged = await gql(OPERATIONS["logEvent"], {"u": ME}, key=issued["token"])
    assert logged["data"]["logEvent"]["duplicate"] is False


@pytest.mark.parametrize("ttl", [0, 59, 30 * 24 * 3600 + 1, -5])
async def test_token_lifetime_out_of_bounds(gql: GQL, client_key: str, ttl: int) -> None:
    body = await gql('mutation($t: Int!) { createUserToken(userId: "u1", ttlSeconds: $t) { token } }', {"t": ttl})
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "ttlSeconds"


async def test_token_for_a_malformed_user_id(gql: GQL) -> None:
    body = await gql('mutation { createUserToken(userId: "bad id!") { token } }')
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "userId"


def _forge(state: AppState, **changes: Any) -> str:
    now = datetime.now(UTC)
    claims = {"sub": ME, "kind": "user", "iss": tokens.ISSUER, "aud": tokens.AUDIENCE, "iat": now}
    claims |= {"exp": now + timedelta(minutes=5)} | changes
    secret = changes.pop("secret", None) or tokens.signing_secret(state.settings)
    claims.pop("secret", None)
    return jwt.encode(claims, secret, algorithm=tokens.ALGORITHM)


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    other = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"u1"', b'"u2"')  # type: ignore[no-untyped-call]
    ).decode()
    return f"{header}.{other}.{signature}"


@pytest.mark.parametrize("case", ["expired", "tampered", "foreign secret", "no kind", "wrong audience", "none alg"])
async def test_bad_tokens_are_unauthenticated(client: httpx.AsyncClient, state: AppState, case: str) -> None:
    now = datetime.now(UTC)
    token = {
        "expired": lambda: _forge(state, exp=now - timedelta(seconds=5), iat=now - timedelta(minutes=10)),
        "tampered": lambda: _tampered(user_token(state)),
        "foreign secret": lambda: _forge(state, secret="not-the-secret-" * 4),
        "no kind": lambda: jwt.encode(
            {"sub": ME, "exp": now + timedelta(minutes=5), "iat": now, "iss": tokens.ISSUER, "aud": tokens.AUDIENCE},
            tokens.signing_secret(state.settings),
            algorithm=tokens.ALGORITHM,
        ),
        "wrong audience": lambda: _forge(state, aud="someone-else"),
        "none alg": lambda: jwt.encode({"sub": ME, "kind": "user", "exp": now + timedelta(minutes=5)}, None, "none"),
    }[case]()
    response = await apost(client, OPERATIONS["user"], {"u": ME}, key=token)
    assert response.status_code == 401
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]


def test_session_principals_share_the_claims(state: AppState) -> None:
    issued = tokens.issue(state.settings, subject="s-42", ttl_seconds=60, kind=tokens.PrincipalKind.SESSION)
    principal = tokens.verify(state.settings, issued.token)
    assert principal.kind is tokens.PrincipalKind.SESSION and principal.subject == "s-42"


def test_secret_is_generated_once_and_kept(tmp_path: Path, state: AppState) -> None:
    settings = state.settings.model_copy(update={"data_dir": tmp_path, "token_secret": None})
    first = tokens.signing_secret(settings)
    assert tokens.signing_secret(settings) == first and len(first) >= 32
    assert (tmp_path / tokens.SECRET_FILE).stat().st_mode & 0o077 == 0


def test_cli_prints_the_token_last(state: AppState, database_url: str) -> None:
    result = recengine(
        ["keys", "user-token", ME, "--ttl", "300"], database_url, RECENGINE_DATA_DIR=str(state.settings.data_dir)
    )
    assert result.returncode == 0, result.stderr
    assert tokens.verify(state.settings, result.stdout.split()[-1]).subject == ME
    bad = recengine(["keys", "user-token", ME, "--ttl", "1"], database_url)
    assert bad.returncode == 1 and "ttlSeconds" in bad.stdout


# --- CORS -----------------------------------------------------------------------------------------------------

PREFLIGHT = {
    "Origin": "https://shop.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def test_cors_preflight_allows_authorization(app_client: Any) -> None:
    async with app_client(cors_origins="https://shop.example, https://admin.example") as http:
        allowed = await http.options("/graphql", headers=PREFLIGHT)
        foreign = await http.options("/graphql", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    allowed_headers = allowed.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert foreign.status_code == 400 and "access-control-allow-origin" not in foreign.headers


async def test_no_cors_by_default(client: httpx.AsyncClient) -> None:
    response = await client.options("/graphql", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in response.headers


async def test_cors_on_actual_requests(app_client: Any, state: AppState) -> None:
    async with app_client(cors_origins="https://shop.example") as http:
        response = await apost(
            http, "{ trending(count: 1) { contentId } }", key=user_token(state), Origin=PREFLIGHT["Origin"]
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://shop.example"


# --- query cost -----------------------------------------------------------------------------------------------

NESTED_SIMILAR = "{ contents(first: 100) { edges { node { similar(count: 100) { content { similar(count: 100) { contentId } } } } } } }"
NESTED_RECOMMENDATIONS = (
    '{ recommendations(userId: "u1", count: 100) { items { content { similar(count: 100) { content { id } } } } } }'
)
NESTED_EVENTS = (
    '{ user(id: "u1") { events(first: 100) { edges { node { user { recommendations(count: 100) '
    "{ items { content { id } } } } } } } } }"
)
ALIASED = (
    "{ "
    + " ".join(f'a{i}: similarContent(contentId: "c1", count: 100) {{ content {{ id }} }}' for i in range(20))
    + " }"
)


def test_cost_model() -> None:
    assert static_cost(schema, '{ content(id: "c1") { id title } }') == {"content": 1}
    assert static_cost(schema, NESTED_SIMILAR) == {"contents": 1 + 100 * (1 + 100 * (1 + 1 + 100 * 0))}
    assert static_cost(schema, ALIASED) == {f"a{i}": 1 + 100 for i in range(20)}
    with_vars = 'query($n: Int!) { similarContent(contentId: "c1", count: $n) { content { id } } }'
    assert static_cost(schema, with_vars, {"n": 7}) == {"similarContent": 8}
    fragment = "query { ...F } fragment F on Query { trending(count: 50) { content { id } } }"
    assert static_cost(schema, fragment) == {"trending": 51}


@pytest.mark.parametrize("query", [NESTED_SIMILAR, NESTED_RECOMMENDATIONS, NESTED_EVENTS, ALIASED])
async def test_expensive_operations_are_refused_before_running(
    app_client: Any, admin_key: str, state: AppState, query: str
) -> None:
    async with app_client(max_aliases=30) as http:
        response = await apost(http, query, key=admin_key)
    body = response.json()
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"], body
    extensions = body["errors"][0]["extensions"]
    assert extensions["cost"] == sum(static_cost(schema, query).values()) > extensions["maxCost"] == 2000
    assert body.get("data") is None


async def test_refused_mutation_writes_nothing(app_client: Any, admin_key: str, state: AppState) -> None:
    query = 'mutation { upsertContent(input: {id: "x1", title: "t", contentType: VIDEO}) { similar(count: 100) { content { id } } } }'
    async with app_client(max_query_cost=100) as http:
        body = (await apost(http, query, key=admin_key)).json()
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"] and body["errors"][0]["extensions"]["cost"] == 102
    assert (await snapshot(state))["content"] == []


def _graphql_blocks(markdown: str) -> list[str]:
    """Each operation of the README's graphql code blocks."""
    operations: list[str] = []
    for block in re.findall(r"```graphql\n(.*?)```", markdown, flags=re.DOTALL):
        lines = [line for line in block.splitlines() if not line.lstrip().startswith("#")]
        current: list[str] = []
        for line in lines:
            if re.match(r"^(query|mutation|\{)", line) and current:
                operations.append("\n".join(current))
                current = []
            current.append(line)
        if any(line.strip() for line in current):
            operations.append("\n".join(current))
    return [op for op in operations if op.strip()]


def test_readme_examples_and_soak_fit_the_default_limit() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("soak", ROOT / "bench" / "soak.py")
    assert spec is not None and spec.loader is not None
    soak = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = soak  # dataclasses look their module up
    spec.loader.exec_module(soak)
    operations = _graphql_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    operations += [soak.query_for(name) for name in soak.OPERATIONS]
    assert len(operations) >= 15
    limit = state_default_limit()
    for operation in operations:
        event = {"userId": "1", "contentId": "1", "eventType": "view"}
        variables = {"u": "1", "c": "1", "e": event, "es": [event] * 10}
        cost = sum(static_cost(schema, operation, variables).values())
        assert 1 <= cost <= limit, operation


def state_default_limit() -> int:
    from app.config import Settings

    return int(Settings.model_fields["max_query_cost"].default)


async def test_rate_limiter_charges_the_cost(app_client: Any, gql: GQL, client_key: str) -> None:
    await gql(SEED)
    costly = '{ similarContent(contentId: "c1", count: 100) { content { id } } }'  # cost 101
    async with app_client(rate_limit_queries_burst=150, rate_limit_queries_per_second=0.01) as http:
        assert "errors" not in (await apost(http, costly, key=client_key)).json()
        refused = await apost(http, costly, key=client_key)
        cheap = await apost(http, "{ eventTypes { eventType } }", key=client_key)
    assert error_codes(refused.json()) == ["RATE_LIMITED"]
    assert "errors" not in cheap.json()  # 49 tokens were left: enough for cost 1, not for 101


async def test_every_token_of_a_user_shares_one_budget(app_client: Any, gql: GQL, state: AppState) -> None:
    await gql(SEED)
    query = "{ trending(count: 1) { contentId } }"
    async with app_client(rate_limit_queries_burst=2, rate_limit_queries_per_second=0.01) as http:
        for _ in range(2):
            assert "errors" not in (await apost(http, query, key=user_token(state))).json()
        spent = await apost(http, query, key=user_token(state, ttl=900))  # a fresh token, the same user
        other = await apost(http, query, key=user_token(state, OTHER))
    assert error_codes(spent.json()) == ["RATE_LIMITED"]
    assert "errors" not in other.json()
