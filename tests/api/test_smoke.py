"""First end-to-end checks of the HTTP surface."""

from __future__ import annotations

from tests.conftest import GQL, error_codes


async def test_health_and_ready(client) -> None:  # type: ignore[no-untyped-def]
    assert (await client.get("/health")).json() == {"status": "ok"}
    body = (await client.get("/ready")).json()
    assert body["status"] == "ready", body


async def test_upsert_and_read_content(gql: GQL) -> None:
    body = await gql(
        'mutation { upsertContent(input: {id: "c1", title: "Space rocket", contentType: VIDEO}) { id title status } }'
    )
    assert body == {"data": {"upsertContent": {"id": "c1", "title": "Space rocket", "status": "PUBLISHED"}}}
    body = await gql('{ content(id: "c1") { title contentType } }')
    assert body["data"]["content"] == {"title": "Space rocket", "contentType": "VIDEO"}


async def test_no_key(gql: GQL) -> None:
    body = await gql('{ content(id: "c1") { title } }', key=None)
    assert error_codes(body) == ["UNAUTHENTICATED"]
