"""Business controls over the API: availability windows, content filters, placements, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from app.context import AppState
from app.repositories.content import ContentFilter, ContentRepository
from app.services.filters import parse_filter
from tests.conftest import GQL, error_codes, new_key

UPSERTS = "mutation($inputs: [ContentInput!]!) { upsertContents(inputs: $inputs) { accepted errors { message } } }"
UPSERT = "mutation($input: ContentInput!) { upsertContent(input: $input) { id availableFrom expiresAt } }"
SEARCH = """query($q: String!, $mode: SearchMode!, $f: ContentFilterInput) {
  searchContent(query: $q, mode: $mode, filter: $f, count: 50) { content { id } } }"""
CONTENTS = """query($f: ContentFilterInput, $a: Boolean) {
  contents(first: 100, filter: $f, available: $a) { totalCount edges { node { id } } } }"""
PLACEMENT = """mutation($input: PlacementInput!) {
  upsertPlacement(input: $input) { name strategy count filter boosts diversity version description } }"""


def iso(delta: timedelta) -> str:
    """An ISO time relative to now."""
    return (datetime.now(UTC) + delta).isoformat()


def item(cid: str, **extra: Any) -> dict[str, Any]:
    """A valid content input about space films."""
    return {"id": cid, "title": f"Space rocket film {cid}", "contentType": "VIDEO", **extra}


CATALOG = [
    item("h1", category="Horror", tags=["Horror", "dark"], metadata={"inStock": True, "year": 1980}),
    item("h2", category="Horror", tags=["Horror"], metadata={"inStock": False}),
    item("c1", category="Comedy", tags=["Comedy", "dark"], metadata={"inStock": True}),
    item("a1", category="Comedy", contentType="ARTICLE", tags=["Comedy"]),
    item("x1", category="Horror", tags=["Horror"], expiresAt=iso(timedelta(days=-1))),
    item("f1", category="Horror", tags=["Horror"], availableFrom=iso(timedelta(days=1))),
]


async def seed(gql: GQL) -> None:
    body = await gql(UPSERTS, {"inputs": CATALOG})
    assert body["data"]["upsertContents"]["accepted"] == len(CATALOG), body


async def ids_of(gql: GQL, query: str, variables: dict[str, Any], path: str) -> set[str]:
    body = await gql(query, variables)
    assert "errors" not in body, body
    rows = body["data"][path]
    if isinstance(rows, dict):
        return {e["node"]["id"] for e in rows["edges"]}
    return {r["content"]["id"] for r in rows}


async def count_rows(state: AppState, table: str) -> int:
    async with state.sessions() as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_window_is_stored_and_returned(gql: GQL) -> None:
    start, end = "2030-01-01T00:00:00+00:00", "2030-02-01T00:00:00+00:00"
    body = await gql(UPSERT, {"input": item("w1", availableFrom=start, expiresAt=end)})
    assert body["data"]["upsertContent"] == {"id": "w1", "availableFrom": start, "expiresAt": end}


async def test_window_end_before_start_is_rejected_and_nothing_written(gql: GQL, state: AppState) -> None:
    body = await gql(UPSERT, {"input": item("w1", availableFrom=iso(timedelta(days=2)), expiresAt=iso(timedelta()))})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "input.expiresAt"
    assert await count_rows(state, "content") == 0


@pytest.mark.parametrize("mode", ["TEXT", "SEMANTIC", "HYBRID"])
async def test_search_hides_items_outside_their_window(gql: GQL, mode: str) -> None:
    await seed(gql)
    found = await ids_of(gql, SEARCH, {"q": "space rocket film", "mode": mode}, "searchContent")
    assert found == {"h1", "h2", "c1", "a1"}
    # content(id) still returns the expired item
    assert (await gql('{ content(id: "x1") { id } }'))["data"]["content"] == {"id": "x1"}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"categories": ["Horror"]}, {"h1", "h2"}),
        ({"metadata": {"inStock": True}}, {"h1", "c1"}),
        ({"tagsAll": ["Horror", "dark"]}, {"h1"}),
        ({"tagsAny": ["dark", "nothing"]}, {"h1", "c1"}),
        ({"excludeTags": ["dark"]}, {"h2", "a1"}),
        ({"contentTypes": ["ARTICLE"]}, {"a1"}),
        ({"categories": ["Horror"], "metadata": {"inStock": True}}, {"h1"}),
        ({"publishedBefore": "2000-01-01T00:00:00Z"}, set()),
        ({"publishedAfter": "2000-01-01T00:00:00Z"}, {"h1", "h2", "c1", "a1"}),
    ],
)
@pytest.mark.parametrize("mode", ["TEXT", "SEMANTIC"])
async def test_search_filter(gql: GQL, flt: dict[str, Any], expected: set[str], mode: str) -> None:
    await seed(gql)
    assert await ids_of(gql, SEARCH, {"q": "space rocket film", "mode": mode, "f": flt}, "searchContent") == expected


async def test_contents_filter_and_availability(gql: GQL) -> None:
    await seed(gql)
    everything = {c["id"] for c in CATALOG}
    assert await ids_of(gql, CONTENTS, {}, "contents") == everything
    assert await ids_of(gql, CONTENTS, {"a": True}, "contents") == everything - {"x1", "f1"}
    assert await ids_of(gql, CONTENTS, {"a": False}, "contents") == {"x1", "f1"}
    horror = {"categories": ["Horror"]}
    assert await ids_of(gql, CONTENTS, {"f": horror, "a": True}, "contents") == {"h1", "h2"}
    body = await gql(CONTENTS, {"f": {"metadata": {"inStock": True}}})
    assert body["data"]["contents"]["totalCount"] == 2


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ({"tagsAny": [f"t{i}" for i in range(101)]}, "filter.tagsAny"),
        ({"tagsAll": [f"t{i}" for i in range(101)]}, "filter.tagsAll"),
        ({"excludeTags": [""]}, "filter.excludeTags"),
        ({"categories": [f"c{i}" for i in range(101)]}, "filter.categories"),
        ({"metadata": [1, 2]}, "filter.metadata"),
        ({"metadata": {"blob": "x" * 20_000}}, "filter.metadata"),
        (
            {"publishedAfter": "2020-01-02T00:00:00Z", "publishedBefore": "2020-01-01T00:00:00Z"},
            "filter.publishedBefore",
        ),
    ],
)
async def test_bad_filter_names_the_field(gql: GQL, flt: dict[str, Any], field: str) -> None:
    body = await gql(SEARCH, {"q": "space", "mode": "TEXT", "f": flt})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field


async def test_unknown_content_type_is_rejected_by_the_schema(gql: GQL) -> None:
    body = await gql(SEARCH, {"q": "space", "mode": "TEXT", "f": {"contentTypes": ["SPACESHIP"]}})
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "contentTypes" in body["errors"][0]["message"]


# --- placements ---------------------------------------------------------------------------------------------

HOME = {
    "name": "home",
    "strategy": "POPULAR",
    "count": 5,
    "filter": {"categories": ["Horror"], "metadata": {"inStock": True}},
    "boosts": [{"filter": {"tagsAny": ["dark"]}, "factor": 2.5}],
    "diversity": 0.3,
    "description": "Home page shelf",
}


async def test_placement_crud_and_versions(gql: GQL) -> None:
    first = (await gql(PLACEMENT, {"input": HOME}))["data"]["upsertPlacement"]
    assert first["strategy"] == "POPULAR" and first["count"] == 5 and first["diversity"] == pytest.approx(0.3)
    assert first["filter"] == {"categories": ["Horror"], "metadata": {"inStock": True}}
    assert first["boosts"] == [{"filter": {"tagsAny": ["dark"]}, "factor": 2.5}]
    second = (await gql(PLACEMENT, {"input": {**HOME, "count": 7}}))["data"]["upsertPlacement"]
    assert second["count"] == 7 and second["version"] > first["version"]
    listed = (await gql("{ placements { name count } }"))["data"]["placements"]
    assert listed == [{"name": "home", "count": 7}]
    assert (await gql('mutation { deletePlacement(name: "home") }'))["data"]["deletePlacement"] is True
    assert (await gql('mutation { deletePlacement(name: "home") }'))["data"]["deletePlacement"] is False
    again = (await gql(PLACEMENT, {"input": HOME}))["data"]["upsertPlacement"]
    assert again["version"] > second["version"]  # a re-created placement never reuses a cached version


async def test_placements_are_admin_only(gql: GQL, state: AppState) -> None:
    client = await new_key(state, "client", "shop-backend")
    assert error_codes(await gql(PLACEMENT, {"input": HOME}, key=client)) == ["FORBIDDEN"]
    assert await count_rows(state, "placements") == 0
    assert error_codes(await gql("{ placements { name } }", key=client)) == ["FORBIDDEN"]
    await gql(PLACEMENT, {"input": HOME})
    assert error_codes(await gql('mutation { deletePlacement(name: "home") }', key=client)) == ["FORBIDDEN"]
    assert await count_rows(state, "placements") == 1


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"name": "no spaces"}, "input.name"),
        ({"name": ""}, "input.name"),
        ({"count": 0}, "input.count"),
        ({"count": 101}, "input.count"),
        ({"diversity": 1.5}, "input.diversity"),
        ({"diversity": -0.1}, "input.diversity"),
        ({"boosts": [{"filter": {"tagsAny": ["x"]}, "factor": 0}]}, "input.boosts[0].factor"),
        ({"boosts": [{"filter": {"tagsAny": ["x"]}, "factor": -1}]}, "input.boosts[0].factor"),
        ({"boosts": [{"filter": {"tagsAny": ["x"]}, "factor": 10.5}]}, "input.boosts[0].factor"),
        ({"boosts": [{"filter": {}, "factor": 2}] * 21}, "input.boosts"),
        ({"boosts": [{"filter": {"tagsAll": ["t"] * 101}, "factor": 2}]}, "input.boosts[0].filter.tagsAll"),
        ({"filter": {"metadata": "inStock"}}, "input.filter.metadata"),
        ({"description": "d" * 1001}, "input.description"),
    ],
)
async def test_bad_placement_names_the_field_and_writes_nothing(
    gql: GQL, state: AppState, override: dict[str, Any], field: str
) -> None:
    body = await gql(PLACEMENT, {"input": {**HOME, **override}})
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == field
    assert await count_rows(state, "placements") == 0


# --- the SQL helper against a Python reference ----------------------------------------------------------------

CATEGORIES = ["Horror", "Comedy", "Drama", None]
TAGS = ["a", "b", "c", "d"]
TYPES = ["video", "article", "product"]


def catalog_rows() -> list[dict[str, Any]]:
    """A deterministic catalog covering every combination the strategies below can ask about."""
    rows = []
    for i in range(48):
        tags = [t for bit, t in enumerate(TAGS) if i >> bit & 1]
        rows.append(
            {
                "id": f"p{i}",
                "type": TYPES[i % 3],
                "category": CATEGORIES[i % 4],
                "tags": tags,
                "metadata": {"inStock": i % 2 == 0, "tier": i % 3},
                "published": datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=i),
            }
        )
    return rows


def reference(row: dict[str, Any], f: dict[str, Any]) -> bool:
    """What the filter means, written plainly."""
    tags = set(row["tags"])
    meta = f.get("metadata") or {}
    return (
        (not f.get("contentTypes") or row["type"] in f["contentTypes"])
        and (not f.get("categories") or row["category"] in f["categories"])
        and (not f.get("tagsAny") or bool(tags & set(f["tagsAny"])))
        and set(f.get("tagsAll") or ()) <= tags
        and not tags & set(f.get("excludeTags") or ())
        and all(row["metadata"].get(k) == v for k, v in meta.items())
        and (not f.get("publishedAfter") or row["published"] >= f["publishedAfter"])
    )


FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "contentTypes": st.lists(st.sampled_from(TYPES), max_size=2),
        "categories": st.lists(st.sampled_from(["Horror", "Comedy", "Drama"]), max_size=2),
        "tagsAny": st.lists(st.sampled_from(TAGS), max_size=3),
        "tagsAll": st.lists(st.sampled_from(TAGS), max_size=3),
        "excludeTags": st.lists(st.sampled_from(TAGS), max_size=2),
        "metadata": st.fixed_dictionaries({}, optional={"inStock": st.booleans(), "tier": st.integers(0, 3)}),
        "publishedAfter": st.datetimes(
            min_value=datetime(2019, 12, 1), max_value=datetime(2020, 3, 1), timezones=st.just(UTC)
        ),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(flt=FILTERS)
async def test_filter_sql_matches_its_meaning(state: AppState, flt: dict[str, Any]) -> None:
    rows = catalog_rows()
    async with state.sessions() as session:
        for r in rows:
            await session.execute(
                text(
                    """INSERT INTO content (content_id, title, content_type, category, tags, metadata, published_at)
                    VALUES (:id, 'x', :type, :category, :tags, CAST(:meta AS jsonb), :published)
                    ON CONFLICT DO NOTHING"""
                ),
                {**r, "meta": json.dumps(r["metadata"])},
            )
        await session.commit()
        page = await ContentRepository(session).list_page(ContentFilter(rules=parse_filter(flt)), first=100, after=None)
    assert {c.content_id for c in page} == {r["id"] for r in rows if reference(r, flt)}
