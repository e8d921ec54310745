"""Client-facing schema conventions: complete PageInfo, enums, ids for normalized caches, no breaking change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphql import GraphQLNonNull, GraphQLObjectType, build_schema, find_breaking_changes, get_named_type
from sqlalchemy import text

from app.context import AppState
from app.schema.schema import schema
from tests.api.test_users_events import seed_content
from tests.conftest import GQL

ROOT = Path(__file__).resolve().parents[2]
# Types a normalized cache (Apollo, urql Graphcache, Relay) keeps as entities: each needs an `id`.
ENTITIES = {"Content", "User", "Event", "ModelVersion", "EventTypeWeight"}
PAGE_INFO_FIELDS = {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}


def live_sdl() -> str:
    return schema.as_str()


def baselines() -> list[tuple[str, str]]:
    """The committed schema.graphql, and the base branch's when CI passes it in RECENGINE_SCHEMA_BASELINE."""
    found = [("schema.graphql", (ROOT / "schema.graphql").read_text(encoding="utf-8"))]
    extra = os.environ.get("RECENGINE_SCHEMA_BASELINE")
    if extra:
        found.append((extra, Path(extra).read_text(encoding="utf-8")))
    return found


def breaking(old_sdl: str, new_sdl: str) -> list[str]:
    """Human-readable breaking changes from `old_sdl` to `new_sdl`."""
    return [
        f"{c.type.name}: {c.description}" for c in find_breaking_changes(build_schema(old_sdl), build_schema(new_sdl))
    ]


@pytest.mark.parametrize(("name", "sdl"), baselines(), ids=[name for name, _ in baselines()])
def test_no_breaking_change_against_committed_schema(name: str, sdl: str) -> None:
    changes = breaking(sdl, live_sdl())
    assert changes == [], f"breaking changes against {name} (add and deprecate instead): {changes}"


def test_the_guard_sees_a_removed_field_and_a_changed_type() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    removed = committed.replace("  hasPreviousPage: Boolean!", "  hasPreviousPageRenamed: Boolean!", 1)
    assert any("hasPreviousPage" in c for c in breaking(committed, removed))
    retyped = committed.replace("  status: String! @deprecated", "  status: Int! @deprecated", 1)
    assert any("ModelVersion.status" in c for c in breaking(committed, retyped))


def _object_types() -> dict[str, GraphQLObjectType]:
    types = build_schema(live_sdl()).type_map
    return {n: t for n, t in types.items() if isinstance(t, GraphQLObjectType) and not n.startswith("__")}


def test_every_connection_has_a_complete_page_info() -> None:
    types = _object_types()
    connections = [t for n, t in types.items() if n.endswith("Connection")]
    assert len(connections) >= 2
    for connection in connections:
        page_info = connection.fields["pageInfo"].type
        assert isinstance(page_info, GraphQLNonNull) and get_named_type(page_info).name == "PageInfo"
        assert {"edges", "pageInfo"} <= set(connection.fields)
    assert set(types["PageInfo"].fields) >= PAGE_INFO_FIELDS


def test_every_entity_type_has_an_id() -> None:
    types = _object_types()
    missing = [name for name in sorted(ENTITIES) if "id" not in types[name].fields]
    assert missing == []
    assert all(isinstance(types[name].fields["id"].type, GraphQLNonNull) for name in ENTITIES)


CONTENTS = "query($after: String) { contents(first: 2, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"


async def test_content_pages_fill_every_page_info_field(gql: GQL) -> None:
    await seed_content(gql, "a", "b", "c")
    first = (await gql(CONTENTS))["data"]["contents"]
    cursors = [e["cursor"] for e in first["edges"]]
    assert first["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": cursors[0],
        "endCursor": cursors[1],
    }
    second = (await gql(CONTENTS, {"after": cursors[1]}))["data"]["contents"]
    assert [e["node"]["id"] for e in second["edges"]] == ["c"]
    only = second["edges"][0]["cursor"]
    assert second["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": True, "startCursor": only, "endCursor": only}


EVENTS = 'query($after: String) { events(userId: "u1", first: 1, after: $after) { edges { cursor } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }'


async def test_event_pages_fill_every_page_info_field(gql: GQL) -> None:
    await seed_content(gql, "a", "b")
    log = "mutation($input: EventInput!) { logEvent(input: $input) { duplicate } }"
    for content_id in ("a", "b"):
        await gql(log, {"input": {"userId": "u1", "contentId": content_id, "eventType": "view"}})
    first = (await gql(EVENTS))["data"]["events"]
    cursor = first["edges"][0]["cursor"]
    assert first["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": cursor,
        "endCursor": cursor,
    }
    second = (await gql(EVENTS, {"after": cursor}))["data"]["events"]
    last = second["edges"][0]["cursor"]
    assert second["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": True, "startCursor": last, "endCursor": last}
    empty = (await gql(EVENTS, {"after": last}))["data"]["events"]
    assert empty["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": True, "startCursor": None, "endCursor": None}


async def test_event_type_weights_carry_their_name_as_id(gql: GQL) -> None:
    body = await gql("{ eventTypes { id eventType weight } }")
    rows = body["data"]["eventTypes"]
    assert rows and all(row["id"] == row["eventType"] for row in rows)
    changed = await gql('mutation { setEventTypeWeight(eventType: "view", weight: 1.5) { id weight } }')
    assert changed["data"]["setEventTypeWeight"] == {"id": "view", "weight": 1.5}


async def test_model_version_status_and_kind_are_enums_beside_the_old_strings(gql: GQL, state: AppState) -> None:
    async with state.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO model_versions (kind, status) VALUES ('als', 'retired'), ('als', 'candidate')")
        )
    body = await gql("{ modelVersions { status versionStatus kind modelKind } }")
    rows = sorted(body["data"]["modelVersions"], key=lambda r: r["status"])
    assert rows == [
        {"status": "candidate", "versionStatus": "CANDIDATE", "kind": "als", "modelKind": "ALS"},
        {"status": "retired", "versionStatus": "RETIRED", "kind": "als", "modelKind": "ALS"},
    ]
