"""Content: upserts, batch upserts, status, listing, pagination, search, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.context import AppState
from tests.conftest import GQL, error_codes

UPSERT = "mutation($input: ContentInput!) { upsertContent(input: $input) { id title status tags metadata } }"


def item(cid: str, **extra: Any) -> dict[str, Any]:
    """A valid content input."""
    return {"id": cid, "title": f"Title {cid}", "contentType": "ARTICLE", **extra}


async def count(state: AppState, table: str = "content") -> int:
    async with state.sessions() as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_upsert_creates_then_replaces(gql: GQL) -> None:
    body = await gql(UPSERT, {"input": item("a-1", tags=["x"], metadata={"k": 1})})
    assert body["data"]["upsertContent"] == {
        "id": "a-1",
        "title": "Title a-1",
        "status": "PUBLISHED",
        "tags": ["x"],
        "metadata": {"k": 1},
    }
    body = await gql(UPSERT, {"input": item("a-1", title="New", status="DRAFT")})
    assert body["data"]["upsertContent"]["title"] == "New"
    assert body["data"]["upsertContent"]["status"] == "DRAFT"


async def test_upsert_embeds_on_write(gql: GQL, state: AppState) -> None:
    await gql(UPSERT, {"input": item("e-1", title="A rocket to outer space")})
    async with state.sessions() as session:
        row = (await session.execute(text("SELECT embedding IS NOT NULL, embedding_model FROM content"))).one()
    assert row == (True, "all-MiniLM-L6-v2")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"id": "bad id!"}, "input.id"),
        ({"id": "x" * 256}, "input.id"),
        ({"title": ""}, "input.title"),
        ({"title": "t" * 501}, "input.title"),
        ({"title": "   "}, "input.title"),
        ({"tags": ["ok", ""]}, "input.tags"),
        ({"metadata": {"blob": "x" * 20_000}}, "input.metadata"),
        ({"description": "nul\x00byte"}, "input.description"),
    ],
)
async def test_bad_content_is_rejected_and_nothing_written(
    gql: GQL, state: AppState, override: dict[str, Any], field: str
) -> None:
    body = await gql(UPSERT, {"input": item("ok", **override)})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert field in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert await count(state) == 0


async def test_batch_stores_valid_and_reports_invalid(gql: GQL, state: AppState) -> None:
    query = "mutation($inputs: [ContentInput!]!) { upsertContents(inputs: $inputs) { accepted duplicates errors { index message } } }"
    inputs = [item("b1"), item("b 2"), item("b3"), item("b4", title="")]
    body = await gql(query, {"inputs": inputs})
    result = body["data"]["upsertContents"]
    assert result["accepted"] == 2
    assert [e["index"] for e in result["errors"]] == [1, 3]
    assert "inputs[1].id" in result["errors"][0]["message"]
    assert "inputs[3].title" in result["errors"][1]["message"]
    assert await count(state) == 2


async def test_batch_over_the_limit_writes_nothing(gql: GQL, state: AppState) -> None:
    query = "mutation($inputs: [ContentInput!]!) { upsertContents(inputs: $inputs) { accepted } }"
    body = await gql(query, {"inputs": [item(f"i{i}") for i in range(1001)]})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "inputs" in body["errors"][0]["message"]
    assert await count(state) == 0


async def test_set_status_and_missing(gql: GQL) -> None:
    await gql(UPSERT, {"input": item("s1")})
    body = await gql('mutation { setContentStatus(id: "s1", status: ARCHIVED) { status } }')
    assert body["data"]["setContentStatus"]["status"] == "ARCHIVED"
    body = await gql('mutation { setContentStatus(id: "nope", status: ARCHIVED) { status } }')
    assert error_codes(body) == ["NOT_FOUND"]


async def test_content_missing_is_null(gql: GQL) -> None:
    assert (await gql('{ content(id: "nope") { id } }'))["data"] == {"content": None}


async def test_pagination_to_the_end_with_filters(gql: GQL) -> None:
    query = "mutation($inputs: [ContentInput!]!) { upsertContents(inputs: $inputs) { accepted } }"
    inputs = [
        item(
            f"p{i:02d}",
            category="news" if i % 2 else "sport",
            tags=["t"] if i < 5 else [],
            contentType="VIDEO" if i < 10 else "ARTICLE",
        )
        for i in range(25)
    ]
    assert (await gql(query, {"inputs": inputs}))["data"]["upsertContents"]["accepted"] == 25
    seen: list[str] = []
    after = None
    page_query = """query($after: String) { contents(first: 7, after: $after) {
        totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"""
    while True:
        page = (await gql(page_query, {"after": after}))["data"]["contents"]
        assert page["totalCount"] == 25
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(i["id"] for i in inputs)
    filtered = await gql('{ contents(first: 50, contentType: VIDEO, category: "news", tag: "t") { totalCount } }')
    assert filtered["data"]["contents"]["totalCount"] == 2


@pytest.mark.parametrize("args", ["first: 0", "first: 101", 'after: "!!notacursor"'])
async def test_bad_page_arguments(gql: GQL, args: str) -> None:
    body = await gql(f"{{ contents({args}) {{ totalCount }} }}")
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_text_search_weights_title_over_tags(gql: GQL) -> None:
    query = "mutation($inputs: [ContentInput!]!) { upsertContents(inputs: $inputs) { accepted } }"
    await gql(
        query,
        {
            "inputs": [
                item("t1", title="Gardening basics", tags=["volcano"]),
                item("t2", title="Volcano eruptions explained"),
                item("t3", title="Cooking", status="DRAFT", description="volcano cake"),
            ]
        },
    )
    body = await gql('{ searchContent(query: "volcano", mode: TEXT) { content { id } score } }')
    hits = body["data"]["searchContent"]
    assert [h["content"]["id"] for h in hits] == ["t2", "t1"]
    assert hits[0]["score"] > hits[1]["score"]


async def test_search_rejects_empty_query(gql: GQL) -> None:
    body = await gql('{ searchContent(query: "  ") { score } }')
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "query" in body["errors"][0]["message"]
