"""`similarContent(by: COLLABORATIVE)`: item-factor neighbours of the active model, on the MovieLens slice."""

from __future__ import annotations

import numpy as np

from app.context import AppState
from tests.conftest import error_codes
from tests.engine.conftest import Query

SIMILAR = """query($id: ID!, $by: SimilarityKind!) {
  similarContent(contentId: $id, count: 10, by: $by) { contentId score rank explanation reasons { kind anchorContentId weight } }
}"""


async def test_collaborative_neighbours_are_the_nearest_item_factors(ml: Query, ml_state: AppState) -> None:
    body = await ml(SIMILAR, {"id": "1", "by": "COLLABORATIVE"})
    items = body["data"]["similarContent"]
    ids = [i["contentId"] for i in items]
    assert len(set(ids)) == 10 and "1" not in ids
    assert [i["rank"] for i in items] == list(range(1, 11))
    scores = [i["score"] for i in items]
    assert scores[0] == 1.0 and scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    assert all(
        i["reasons"] == [{"kind": "COLLABORATIVE", "anchorContentId": "1", "weight": i["reasons"][0]["weight"]}]
        for i in items
    )
    assert items[0]["explanation"] == "People who engaged with Toy Story (1995) also engaged with this"
    model = await ml_state.recommender.active_model()
    assert model is not None
    order = list(model.item_index)
    products = model.item_factors @ model.item_factors[model.item_index["1"]]
    exact = [order[i] for i in np.argsort(-products) if order[i] != "1"][:10]
    assert len(set(ids) & set(exact)) >= 8  # HNSW is approximate; nearly all of the exact top 10


async def test_collaborative_differs_from_content_and_content_stays_the_default(ml: Query) -> None:
    collaborative = (await ml(SIMILAR, {"id": "1", "by": "COLLABORATIVE"}))["data"]["similarContent"]
    content = (await ml(SIMILAR, {"id": "1", "by": "CONTENT"}))["data"]["similarContent"]
    default = (await ml('{ similarContent(contentId: "1", count: 10) { contentId } }'))["data"]["similarContent"]
    assert [c["contentId"] for c in content] == [d["contentId"] for d in default]
    assert [c["contentId"] for c in content] != [c["contentId"] for c in collaborative]
    assert {r["kind"] for c in content for r in c["reasons"]} == {"CONTENT_SIMILARITY"}
    nested = await ml('{ content(id: "1") { similar(count: 10, by: COLLABORATIVE) { contentId } } }')
    assert [c["contentId"] for c in nested["data"]["content"]["similar"]] == [c["contentId"] for c in collaborative]


async def test_bad_by_and_unknown_item_are_clear_errors(ml: Query) -> None:
    bad = await ml('{ similarContent(contentId: "1", by: NEIGHBOURS) { contentId } }')
    assert error_codes(bad) == ["GRAPHQL_VALIDATION_FAILED"] and "SimilarityKind" in bad["errors"][0]["message"]
    missing = await ml(SIMILAR, {"id": "no-such-item", "by": "COLLABORATIVE"})
    assert error_codes(missing) == ["NOT_FOUND"] and missing["errors"][0]["extensions"]["field"] == "contentId"
