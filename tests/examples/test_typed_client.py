"""The typed client example (examples/typed_client), run against a live server on the test database."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate
from sqlalchemy import text

from app.context import AppState
from app.schema.schema import schema
from app.services import auth
from examples.typed_client.demo import log_and_recommend
from examples.typed_client.recengine_client import GraphQLClientGraphQLMultiError
from tests.api.test_users_events import seed_content
from tests.conftest import GQL, make_settings
from tests.hardening.servers import thread_server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "typed_client"


def _generated_operations() -> list[str]:
    """The operation strings inside the generated client (the gql("...") literals)."""
    tree = ast.parse((EXAMPLE / "recengine_client" / "client.py").read_text(encoding="utf-8"))
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "gql"
        and isinstance(node.args[0], ast.Constant)
    ]


@pytest.mark.parametrize("source", ["queries.graphql", "generated client"])
def test_operations_are_valid_against_the_live_schema(source: str) -> None:
    documents = (
        [(EXAMPLE / "queries.graphql").read_text(encoding="utf-8")]
        if source == "queries.graphql"
        else _generated_operations()
    )
    assert documents
    live = build_schema(schema.as_str())
    for document in documents:
        assert validate(live, parse(document)) == [], document


def test_generated_client_has_the_operations_of_queries_graphql() -> None:
    def names(document: str) -> set[str]:
        return {d.name.value for d in parse(document).definitions if getattr(d, "name", None)}

    generated = set().union(*(names(op) for op in _generated_operations()))
    assert (
        generated == names((EXAMPLE / "queries.graphql").read_text(encoding="utf-8")) == {"LogEvent", "Recommendations"}
    )


async def test_example_logs_an_event_and_reads_typed_recommendations(
    gql: GQL, state: AppState, database_url: str
) -> None:
    await seed_content(gql, "m1", "m2", "m3")
    async with state.sessions() as session:
        key = (await auth.create_key(session, name="example", role="client")).secret
    with thread_server(make_settings(database_url)) as url:
        outcome = log_and_recommend(url, key, user_id="fan", content_id="m1", count=2)
        with pytest.raises(GraphQLClientGraphQLMultiError) as refused:
            log_and_recommend(url, key, user_id="fan", content_id="no-such-item")
    event = outcome.logged.log_event.event
    assert (event.user_id, event.content_id, event.event_type) == ("fan", "m1", "like")
    assert outcome.logged.log_event.duplicate is False
    items = outcome.recommendations.recommendations.items
    assert [i.rank for i in items] == [1, 2]
    assert {i.content.id for i in items if i.content} <= {"m2", "m3"}  # the liked item is not recommended back
    assert all(0.0 <= i.score <= 1.0 for i in items)
    assert "content" in str(refused.value).lower()
    async with state.sessions() as session:
        rows = (await session.execute(text("SELECT user_id, content_id, event_type FROM events"))).all()
    assert rows == [("fan", "m1", "like")], "the refused event must not be stored"
