"""Business controls on the MovieLens slice: filters inside every source, availability, boosts, diversity,
placements and re-ranking."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from app.context import AppState
from app.repositories.retrieval import RetrievalRepository
from tests.conftest import error_codes, recorded_sql
from tests.engine.conftest import Query

STRATEGIES = ["HYBRID", "COLLABORATIVE", "CONTENT_BASED", "POPULAR", "TRENDING"]
RECS = """query($u: ID!, $n: Int, $s: Strategy, $f: ContentFilterInput, $b: [BoostInput!], $d: Float, $p: String) {
  recommendations(userId: $u, count: $n, strategy: $s, filter: $f, boosts: $b, diversity: $d, placement: $p) {
    strategy cached
    items { contentId score rank explanation reasons { kind anchorContentId weight factor }
            content { category tags metadata } }
  } }"""
CONTENT_FIELDS = "id title description contentType status category tags metadata availableFrom expiresAt"
UPSERT = "mutation($i: ContentInput!) { upsertContent(input: $i) { id } }"
RERANK = """query($u: ID!, $ids: [ID!]!, $p: String) {
  rerank(userId: $u, contentIds: $ids, placement: $p) {
    skippedIds items { contentId rank score reasons { kind factor } } } }"""


async def recs(ml: Query, user: str = "1", **variables: Any) -> dict[str, Any]:
    body = await ml(RECS, {"u": user, **variables})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["recommendations"]
    return result


def ids(result: dict[str, Any]) -> list[str]:
    return [i["contentId"] for i in result["items"]]


async def consumed(state: AppState, user: str) -> set[str]:
    async with state.sessions() as session:
        rows = await session.execute(text("SELECT DISTINCT content_id FROM events WHERE user_id = :u"), {"u": user})
        return {r[0] for r in rows}


async def eligible(ml: Query, flt: dict[str, Any]) -> set[str]:
    """Published, available items matching the filter (through `contents`, paged)."""
    found: set[str] = set()
    after = None
    while True:
        body = await ml(
            """query($f: ContentFilterInput, $a: String) { contents(first: 100, after: $a, filter: $f,
               available: true, status: PUBLISHED) { edges { node { id } } pageInfo { hasNextPage endCursor } } }""",
            {"f": flt, "a": after},
        )
        page = body["data"]["contents"]
        found |= {e["node"]["id"] for e in page["edges"]}
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


# --- filters inside every source ------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_horror_filter_returns_only_horror_and_still_count(ml: Query, ml_state: AppState, strategy: str) -> None:
    result = await recs(ml, n=20, s=strategy, f={"categories": ["Horror"]})
    assert len(result["items"]) == 20
    assert {i["content"]["category"] for i in result["items"]} == {"Horror"}
    assert not set(ids(result)) & await consumed(ml_state, "1")


@pytest.mark.parametrize(
    "flt",
    [{"categories": ["Western"]}, {"categories": ["Documentary"]}, {"tagsAll": ["Animation", "Musical", "Children"]}],
)
async def test_narrow_filter_returns_every_eligible_item_up_to_count(
    ml: Query, ml_state: AppState, flt: dict[str, Any]
) -> None:
    pool = await eligible(ml, flt) - await consumed(ml_state, "1")
    result = await recs(ml, n=10, f=flt)
    assert set(ids(result)) <= pool
    assert len(result["items"]) == min(10, len(pool))


async def test_metadata_containment(ml: Query) -> None:
    flt = {"metadata": {"genres": ["Comedy", "Romance"]}}
    result = await recs(ml, n=15, f=flt)
    assert len(result["items"]) == 15
    assert all({"Comedy", "Romance"} <= set(i["content"]["metadata"]["genres"]) for i in result["items"])


async def test_tags_all_and_exclude_tags(ml: Query) -> None:
    result = await recs(ml, n=10, f={"tagsAll": ["Animation", "Children"], "excludeTags": ["Comedy"]})
    assert len(result["items"]) == 10
    for item in result["items"]:
        assert {"Animation", "Children"} <= set(item["content"]["tags"]) and "Comedy" not in item["content"]["tags"]


async def test_filter_on_similar_trending_and_search(ml: Query) -> None:
    flt = {"categories": ["Animation"]}
    similar = await ml(
        'query($f: ContentFilterInput) { similarContent(contentId: "1", count: 8, filter: $f) { content { category } } }',
        {"f": flt},
    )
    nested = await ml(
        'query($f: ContentFilterInput) { content(id: "1") { similar(count: 8, filter: $f) { content { category } } } }',
        {"f": flt},
    )
    trending = await ml(
        "query($f: ContentFilterInput) { trending(count: 8, windowHours: 8784, filter: $f) { content { category } } }",
        {"f": flt},
    )
    search = await ml(
        'query($f: ContentFilterInput) { searchContent(query: "toys", count: 8, filter: $f) { content { category } } }',
        {"f": flt},
    )
    lists = [similar["data"]["similarContent"], nested["data"]["content"]["similar"]]
    lists += [trending["data"]["trending"], search["data"]["searchContent"]]
    for rows in lists:
        assert len(rows) == 8 and {r["content"]["category"] for r in rows} == {"Animation"}


# --- availability ---------------------------------------------------------------------------------------------


@pytest.fixture
async def windowed(ml: Query) -> AsyncIterator[Any]:
    """Set an item's window through upsertContent; every item touched is restored (open window) afterwards."""
    saved: dict[str, dict[str, Any]] = {}

    async def set_window(cid: str, **window: str | None) -> None:
        if cid not in saved:
            body = await ml(f'{{ content(id: "{cid}") {{ {CONTENT_FIELDS} }} }}')
            saved[cid] = body["data"]["content"]
        item = {k: v for k, v in saved[cid].items() if k not in ("availableFrom", "expiresAt")}
        body = await ml(UPSERT, {"i": item | window})
        assert "errors" not in body, body

    yield set_window
    for item in saved.values():
        await ml(UPSERT, {"i": {k: v for k, v in item.items() if k not in ("availableFrom", "expiresAt")}})


async def everywhere(ml: Query, cid: str, title: str, anchor: str) -> dict[str, bool]:
    """Whether the item shows up in each list it was in before."""
    rec = await recs(ml, n=20)
    sim = await ml(f'{{ similarContent(contentId: "{anchor}", count: 20) {{ contentId }} }}')
    trend = await ml("{ trending(count: 50, windowHours: 8784) { contentId } }")
    search = await ml("query($q: String!) { searchContent(query: $q, count: 20) { content { id } } }", {"q": title})
    return {
        "recommendations": cid in ids(rec),
        "similar": cid in [i["contentId"] for i in sim["data"]["similarContent"]],
        "trending": cid in [i["contentId"] for i in trend["data"]["trending"]],
        "search": cid in [h["content"]["id"] for h in search["data"]["searchContent"]],
    }


async def pick_visible_item(ml: Query) -> tuple[str, str, str]:
    """An item that is recommended to user 1, trending, similar to another item and found by its title."""
    top = ids(await recs(ml, n=20))
    trend = await ml("{ trending(count: 50, windowHours: 8784) { contentId } }")
    trending = {i["contentId"] for i in trend["data"]["trending"]}
    for cid in (c for c in top if c in trending):
        sim = await ml(f'{{ content(id: "{cid}") {{ title similar(count: 1) {{ contentId }} }} }}')
        anchor = sim["data"]["content"]["similar"][0]["contentId"]
        title = sim["data"]["content"]["title"]
        if all((await everywhere(ml, cid, title, anchor)).values()):
            return cid, title, anchor
    raise AssertionError("no item is visible everywhere")


async def test_expired_item_never_appears_but_content_id_returns_it(ml: Query, windowed: Any) -> None:
    cid, title, anchor = await pick_visible_item(ml)
    await windowed(cid, expiresAt=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())
    assert await everywhere(ml, cid, title, anchor) == dict.fromkeys(
        ["recommendations", "similar", "trending", "search"], False
    )
    assert (await ml(f'{{ content(id: "{cid}") {{ id expiresAt }} }}'))["data"]["content"]["id"] == cid
    rerank = await ml(RERANK, {"u": "1", "ids": [cid]})
    assert rerank["data"]["rerank"] == {"skippedIds": [cid], "items": []}


async def test_item_appears_when_available_from_passes_without_retraining(ml: Query, windowed: Any) -> None:
    cid, title, anchor = await pick_visible_item(ml)
    start = datetime.now(UTC) + timedelta(seconds=3)
    await windowed(cid, availableFrom=start.isoformat())
    assert not any((await everywhere(ml, cid, title, anchor)).values())
    await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 0.5)
    # the cached result computed before `start` expired at `start`; no training, no job
    assert all((await everywhere(ml, cid, title, anchor)).values())


# --- boosts and diversity -------------------------------------------------------------------------------------


def mean_rank(result: dict[str, Any], category: str) -> float:
    ranks = [i["rank"] for i in result["items"] if i["content"]["category"] == category]
    return float(np.mean(ranks)) if ranks else float("inf")


async def test_boost_moves_a_category_up_and_explains_itself(ml: Query) -> None:
    plain = await recs(ml, n=30)
    categories = [i["content"]["category"] for i in plain["items"]]
    # a category present in the list whose items are not already at the very top
    target = next(c for c in dict.fromkeys(reversed(categories)) if categories.index(c) > 0)
    boosted = await recs(ml, n=30, b=[{"filter": {"categories": [target]}, "factor": 3.0}])
    before = sum(c == target for c in categories)
    after = sum(i["content"]["category"] == target for i in boosted["items"])
    assert after >= before
    assert boosted["items"][0]["content"]["category"] == target
    assert mean_rank(boosted, target) < mean_rank(plain, target)
    for item in boosted["items"]:
        boosts = [r for r in item["reasons"] if r["kind"] == "BOOST"]
        if item["content"]["category"] == target:
            assert boosts and boosts[0]["factor"] == pytest.approx(3.0)
        else:
            assert not boosts
    scores = [i["score"] for i in boosted["items"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


async def test_boost_below_one_buries(ml: Query) -> None:
    plain = await recs(ml, n=20)
    top = plain["items"][0]["content"]["category"]
    buried = await recs(ml, n=20, b=[{"filter": {"categories": [top]}, "factor": 0.1}])
    assert mean_rank(buried, top) > mean_rank(plain, top)


async def mean_pairwise_similarity(state: AppState, content_ids: list[str]) -> float:
    """Mean cosine similarity of the content embeddings over all pairs of the list."""
    async with state.sessions() as session:
        vectors = await RetrievalRepository(session).embeddings(content_ids)
    unit = [vectors[c].astype(np.float64) / np.linalg.norm(vectors[c]) for c in content_ids]
    return float(np.mean([a @ b for a, b in itertools.combinations(unit, 2)]))


@pytest.mark.parametrize("user", ["1", "68", "414"])
async def test_diversity_lowers_pairwise_similarity(ml: Query, ml_state: AppState, user: str) -> None:
    plain = await recs(ml, user, n=20)
    diverse = await recs(ml, user, n=20, d=0.5)
    before = await mean_pairwise_similarity(ml_state, ids(plain))
    after = await mean_pairwise_similarity(ml_state, ids(diverse))
    print(f"user {user}: mean pairwise cosine {before:.4f} -> {after:.4f} with diversity 0.5")
    assert len(diverse["items"]) == 20 and after < before
    assert len(set(ids(plain)) & set(ids(diverse))) >= 5  # still the user's list, reordered and varied


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"d": 1.5}, "diversity"),
        ({"d": -0.5}, "diversity"),
        ({"b": [{"filter": {"categories": ["Horror"]}, "factor": 0}]}, "boosts[0].factor"),
        ({"b": [{"filter": {"categories": ["Horror"]}, "factor": 11}]}, "boosts[0].factor"),
        ({"f": {"tagsAny": [f"t{i}" for i in range(101)]}}, "filter.tagsAny"),
    ],
)
async def test_bad_controls_name_the_field(ml: Query, variables: dict[str, Any], field: str) -> None:
    body = await ml(RECS, {"u": "1", **variables})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field


async def test_controls_are_part_of_the_cache_key(ml: Query) -> None:
    await recs(ml, "5", n=10)
    assert (await recs(ml, "5", n=10))["cached"] is True
    for extra in (
        {"f": {"categories": ["Comedy"]}},
        {"b": [{"filter": {"categories": ["Drama"]}, "factor": 2}]},
        {"d": 0.4},
    ):
        first = await recs(ml, "5", n=10, **extra)
        assert first["cached"] is False
        assert (await recs(ml, "5", n=10, **extra))["cached"] is True


# --- placements -----------------------------------------------------------------------------------------------

PLACEMENT = "mutation($i: PlacementInput!) { upsertPlacement(input: $i) { name version } }"


@pytest.fixture
async def placements(ml: Query) -> AsyncIterator[None]:
    yield
    body = await ml("{ placements { name } }")
    for p in body["data"]["placements"]:
        await ml("mutation($n: String!) { deletePlacement(name: $n) }", {"n": p["name"]})


async def test_placement_defaults_and_explicit_arguments_win(ml: Query, placements: None) -> None:
    await ml(
        PLACEMENT,
        {"i": {"name": "horror-shelf", "count": 7, "strategy": "POPULAR", "filter": {"categories": ["Horror"]}}},
    )
    result = await recs(ml, p="horror-shelf")
    assert len(result["items"]) == 7 and result["strategy"] == "POPULAR"
    assert {i["content"]["category"] for i in result["items"]} == {"Horror"}
    explicit = await recs(ml, p="horror-shelf", n=4, s="HYBRID", f={"categories": ["Comedy"]})
    assert len(explicit["items"]) == 4 and explicit["strategy"] == "HYBRID"
    assert {i["content"]["category"] for i in explicit["items"]} == {"Comedy"}


async def test_changing_a_placement_invalidates_its_results(ml: Query, placements: None) -> None:
    await ml(PLACEMENT, {"i": {"name": "shelf", "filter": {"categories": ["Horror"]}}})
    await recs(ml, p="shelf")
    assert (await recs(ml, p="shelf"))["cached"] is True
    await ml(PLACEMENT, {"i": {"name": "shelf", "filter": {"categories": ["Comedy"]}}})
    changed = await recs(ml, p="shelf")
    assert changed["cached"] is False
    assert {i["content"]["category"] for i in changed["items"]} == {"Comedy"}
    await ml('mutation { deletePlacement(name: "shelf") }')
    assert error_codes(await ml(RECS, {"u": "1", "p": "shelf"})) == ["NOT_FOUND"]


async def test_unknown_placement_is_not_found(ml: Query) -> None:
    body = await ml(RECS, {"u": "1", "p": "nowhere"})
    assert error_codes(body) == ["NOT_FOUND"]
    assert body["errors"][0]["extensions"]["field"] == "placement"


# --- re-ranking -----------------------------------------------------------------------------------------------


def concordance(order: list[str], reference: list[str]) -> float:
    """Share of item pairs that `order` puts in the same relative order as `reference`."""
    pos = {c: i for i, c in enumerate(reference)}
    pairs = list(itertools.combinations(order, 2))
    return sum(pos[a] < pos[b] for a, b in pairs) / len(pairs)


async def test_rerank_orders_exactly_the_eligible_ids_by_personal_score(ml: Query, ml_state: AppState) -> None:
    personal = ids(await recs(ml, n=12))
    async with ml_state.sessions() as session:
        await session.execute(text("UPDATE content SET status = 'archived' WHERE content_id = '78499'"))
        await session.commit()
    try:
        given = [*reversed(personal), "no-such-item", "78499", personal[2]]
        body = await ml(RERANK, {"u": "1", "ids": given})
        shuffled = await ml(RERANK, {"u": "1", "ids": [*personal[6:], "78499", *personal[:6]]})
    finally:
        async with ml_state.sessions() as session:
            await session.execute(text("UPDATE content SET status = 'published' WHERE content_id = '78499'"))
            await session.commit()
    result = body["data"]["rerank"]
    order = [i["contentId"] for i in result["items"]]
    assert result["skippedIds"] == ["no-such-item", "78499"]
    assert sorted(order) == sorted(personal) and [i["rank"] for i in result["items"]] == list(range(1, 13))
    assert order == [i["contentId"] for i in shuffled["data"]["rerank"]["items"]]  # the caller's order is irrelevant
    # the same blend: each source's own top list sets the rank scale, so the user's top list keeps its order
    # (a pair may swap when a source scores a given item it did not list); 0.5 would be no relation at all
    agreement = concordance(order, personal)
    print(f"rerank vs recommendations pairwise order agreement: {agreement:.3f}")
    assert agreement >= 0.9
    assert all(i["reasons"] for i in result["items"])
    scores = [i["score"] for i in result["items"]]
    assert scores == sorted(scores, reverse=True)


async def test_rerank_puts_the_users_best_item_above_the_tail(ml: Query) -> None:
    personal = ids(await recs(ml, n=100))
    given = [*personal[90:], personal[0]]
    body = await ml(RERANK, {"u": "1", "ids": given})
    order = [i["contentId"] for i in body["data"]["rerank"]["items"]]
    assert sorted(order) == sorted(given)
    assert order.index(personal[0]) <= 1, order


async def test_rerank_scores_items_outside_the_top_list(ml: Query) -> None:
    """Items the user would never be recommended still get a personal order (seen items included)."""
    given = ["1", "3114", "78499", "2571", "260", "1196"]
    body = await ml(RERANK, {"u": "1", "ids": given})
    result = body["data"]["rerank"]
    assert sorted(i["contentId"] for i in result["items"]) == sorted(given) and result["skippedIds"] == []
    scores = [i["score"] for i in result["items"]]
    assert scores == sorted(scores, reverse=True)


async def test_rerank_applies_the_placement_filter_and_boosts(ml: Query, placements: None) -> None:
    await ml(
        PLACEMENT,
        {
            "i": {
                "name": "kids",
                "filter": {"tagsAny": ["Children"]},
                "boosts": [{"filter": {"tagsAny": ["Animation"]}, "factor": 10}],
            }
        },
    )
    body = await ml(RERANK, {"u": "1", "ids": ["1", "3114", "2571", "78499"], "p": "kids"})
    result = body["data"]["rerank"]
    assert result["skippedIds"] == ["2571"]  # The Matrix is not tagged Children
    assert {i["contentId"] for i in result["items"]} == {"1", "3114", "78499"}
    assert all(any(r["kind"] == "BOOST" for r in i["reasons"]) for i in result["items"])


@pytest.mark.parametrize(("given", "field"), [([], "contentIds"), ([str(i) for i in range(501)], "contentIds")])
async def test_rerank_bad_input(ml: Query, given: list[str], field: str) -> None:
    body = await ml(RERANK, {"u": "1", "ids": given})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field


async def test_narrow_filter_ranks_neighbours_exactly(ml: Query, ml_state: AppState) -> None:
    """A category filter ranks similar items by exact cosine over the matching rows, not by the HNSW walk."""
    body = await ml('{ similarContent(contentId: "1", count: 10, filter: {categories: ["Horror"]}) { contentId } }')
    got = [i["contentId"] for i in body["data"]["similarContent"]]
    async with ml_state.sessions() as session:
        exact = (
            await session.execute(
                text(
                    "SELECT c.content_id FROM content c, content s WHERE s.content_id = '1' AND c.content_id <> '1' "
                    "AND c.category = 'Horror' AND c.status = 'published' AND c.embedding IS NOT NULL "
                    "ORDER BY (c.embedding <=> s.embedding) + 0, c.content_id LIMIT 10"
                )
            )
        ).scalars()
        plan = "\n".join(
            (
                await session.execute(
                    text(
                        "EXPLAIN SELECT c.content_id FROM content c WHERE c.category = 'Horror' "
                        "ORDER BY (c.embedding <=> (SELECT embedding FROM content WHERE content_id = '1')) + 0 LIMIT 10"
                    )
                )
            ).scalars()
        )
    assert got == list(exact)
    assert "ix_content_embedding" not in plan  # the suffix keeps the HNSW index out of the plan


@pytest.mark.parametrize("cap", [None, 1])
async def test_narrow_filter_ranks_collaborative_exactly(
    ml_state: AppState, monkeypatch: pytest.MonkeyPatch, cap: int | None
) -> None:
    """Under narrow rules the collaborative source is the exact inner-product order over the matching rows:
    ranked with the in-memory factors from the ids the candidate statement ships, or in SQL past MATCH_CAP;
    both equal a plain SQL ranking of every eligible item's stored factors."""
    from app.repositories import retrieval
    from app.services import candidates
    from app.services.controls import Controls
    from app.services.filters import parse_filter
    from app.services.recommendations import build_job
    from app.services.request import RecRequest, Strategy

    if cap is not None:
        monkeypatch.setattr(retrieval, "MATCH_CAP", cap)
    rules = parse_filter({"categories": ["Horror"]})
    request = RecRequest(user_id="1", count=10, strategy=Strategy.COLLABORATIVE, controls=Controls(rules, (), 0.0))
    model = await ml_state.recommender.active_model()
    assert model is not None
    async with ml_state.sessions() as session:
        job = await build_job(ml_state.recommender, session, request, model)
        vector = candidates.user_vector(job)
        assert vector is not None
        with recorded_sql(ml_state.engine) as statements:
            sources, _ = await candidates.gather(job)
        reference = (
            await session.execute(
                text(
                    "SELECT f.content_id FROM item_factors f JOIN content c ON c.content_id = f.content_id "
                    "WHERE f.model_version_id = :v AND c.category = 'Horror' AND c.status = 'published' "
                    "AND NOT (c.content_id = ANY(CAST(:consumed AS text[]))) "
                    "ORDER BY f.factors::vector <#> CAST(:u AS vector) LIMIT :k"
                ),
                {
                    "v": model.version_id,
                    "u": "[" + ",".join(str(float(x)) for x in vector) + "]",
                    "consumed": sorted(job.history.consumed()),
                    "k": job.depth,
                },
            )
        ).scalars()
    got = [c.item_id for c in sources["collaborative"]]
    assert len(got) >= 10 and got == list(reference)
    assert len(statements) == (1 if cap is None else 2), statements  # past the cap: one more statement


LINK_REFERENCE = """
SELECT source, neighbor_id, score, anchor FROM (
    SELECT a.*, row_number() OVER (PARTITION BY a.source ORDER BY a.score DESC, a.neighbor_id) AS rn FROM (
        SELECT l.source, l.neighbor_id,
               CASE WHEN l.source = ANY(CAST(:max_sources AS text[])) THEN max(l.weight * s.w)
                    ELSE sum(l.weight * s.w) END AS score,
               (array_agg(s.item ORDER BY l.weight * s.w DESC, s.item))[1] AS anchor
        FROM unnest(CAST(:sources AS text[]), CAST(:items AS text[]), CAST(:weights AS float8[])) AS s(source, item, w)
        JOIN item_links l ON l.model_version_id = :v AND l.content_id = s.item AND l.source = s.source
        GROUP BY l.source, l.neighbor_id
    ) a JOIN content c ON c.content_id = a.neighbor_id
    WHERE c.status = 'published' AND NOT (c.content_id = ANY(CAST(:consumed AS text[]))) AND {rule}
) r WHERE r.rn <= :k ORDER BY source, score DESC, neighbor_id"""


@pytest.mark.parametrize(
    ("rules", "rule"),
    [
        ({}, "true"),
        ({"content_types": ["video"]}, "c.content_type = 'video'"),
        ({"categories": ["Horror"]}, "c.category = 'Horror'"),
    ],
)
async def test_link_sources_are_the_top_eligible_neighbours(
    ml_state: AppState, rules: dict[str, Any], rule: str
) -> None:
    """Every link source, as the candidate statement serves it (best-first probing under broad rules, the
    matched rows under narrow ones), equals ranking all of the seeds' eligible neighbours in plain SQL."""
    from app.ml.sources import SPECS, Need, Source
    from app.repositories.retrieval import CandidateQuery
    from app.services import candidates
    from app.services.controls import Controls
    from app.services.filters import parse_filter
    from app.services.recommendations import build_job
    from app.services.request import RecRequest, Strategy

    controls = Controls(parse_filter(rules), (), 0.0)
    request = RecRequest(user_id="1", count=10, strategy=Strategy.HYBRID, controls=controls)
    model = await ml_state.recommender.active_model()
    assert model is not None
    async with ml_state.sessions() as session:
        job = await build_job(ml_state.recommender, session, request, model)
        sources, _ = await candidates.gather(job)
        query = CandidateQuery(model.version_id, model.dim, job.depth)  # the link sources' seeds, as gather plans them
        for source in Source:
            if Need.LINKS in SPECS[source].needs and job.wants(source) and candidates.available(job, source):
                await candidates.SERVING[source](job, query, {})
        seeds = list(query.seeds)
        reference = await session.execute(
            text(LINK_REFERENCE.format(rule=rule)),
            {
                "max_sources": sorted(query.max_sources),
                "sources": [s for s, _, _ in seeds],
                "items": [i for _, i, _ in seeds],
                "weights": [float(w) for _, _, w in seeds],
                "v": model.version_id,
                "consumed": sorted(job.history.consumed()),
                "k": query.k,
            },
        )
    expected: dict[str, list[tuple[str, float, str]]] = {}
    for source, item, score, anchor in reference:
        expected.setdefault(source, []).append((item, round(score, 9), anchor))
    assert expected and len(expected) >= 2
    for source, rows in expected.items():
        got = sorted(sources[source], key=lambda c: (-c.score, c.item_id))
        assert [(c.item_id, round(c.score, 9), c.anchor_id) for c in got] == rows, source
