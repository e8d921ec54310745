"""The online loop on the MovieLens slice: anonymous sessions, merges, batch export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from app.context import AppState
from app.services import export, serving
from app.services import recommendations as rec
from tests.conftest import error_codes
from tests.engine.conftest import Query
from tests.engine.test_recommendations import consumed, genres

SESSION_RECS = """query($s: String, $u: ID) { recommendations(sessionId: $s, userId: $u, count: 10) {
  userId sessionId cached items { contentId reasons { kind } } } }"""


async def top_horror(state: AppState, n: int = 5) -> list[str]:
    async with state.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT c.content_id FROM content c JOIN events e USING (content_id) "
                "WHERE c.category = 'Horror' GROUP BY c.content_id ORDER BY count(*) DESC, c.content_id LIMIT :n"
            ),
            {"n": n},
        )
        return [r[0] for r in rows]


async def horror_share(state: AppState, result: dict[str, Any]) -> int:
    ids = [i["contentId"] for i in result["items"]]
    found = await genres(state, ids)
    return sum("Horror" in found[i] for i in ids)


async def served(ml: Query, **variables: str) -> dict[str, Any]:
    body = await ml(SESSION_RECS, variables)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["recommendations"]
    return result


async def test_session_events_shape_its_recommendations_then_merge_into_the_user(ml: Query, ml_state: AppState) -> None:
    horror = await top_horror(ml_state)
    session_id, user = f"visit-{uuid.uuid4().hex[:8]}", f"signup-{uuid.uuid4().hex[:8]}"
    cold = await served(ml, s=session_id)
    assert cold["sessionId"] == session_id and cold["userId"] is None
    assert {r["kind"] for i in cold["items"] for r in i["reasons"]} == {"COLD_START"}
    events = [{"sessionId": session_id, "contentId": c, "eventType": "like"} for c in horror]
    body = await ml("mutation($i: [EventInput!]!) { logEvents(inputs: $i) { accepted } }", {"i": events})
    assert body["data"]["logEvents"]["accepted"] == 5
    warm = await served(ml, s=session_id)
    assert warm["cached"] is False and not {i["contentId"] for i in warm["items"]} & set(horror)
    assert await horror_share(ml_state, warm) >= 6
    before = await served(ml, u=user)
    assert await horror_share(ml_state, before) < 6
    merge = "mutation($s: String!, $u: ID!) { mergeSession(sessionId: $s, userId: $u) { eventsMoved } }"
    assert (await ml(merge, {"s": session_id, "u": user}))["data"]["mergeSession"]["eventsMoved"] == 5
    after = await served(ml, u=user)
    assert after["cached"] is False and await horror_share(ml_state, after) >= 6
    assert not {i["contentId"] for i in after["items"]} & set(horror)
    assert (await ml(merge, {"s": session_id, "u": user}))["data"]["mergeSession"]["eventsMoved"] == 0
    emptied = await served(ml, s=session_id)
    assert {r["kind"] for i in emptied["items"] for r in i["reasons"]} == {"COLD_START"}
    await forget_users(ml_state, user)


async def forget_users(state: AppState, *users: str) -> None:
    """Delete users this module created (their events go too): the database is shared by the engine tests."""
    async with state.sessions() as session:
        await session.execute(text("DELETE FROM users WHERE user_id = ANY(:u)"), {"u": list(users)})
        await session.commit()


def serving_of(state: AppState) -> serving.Serving:
    return serving.Serving(state.recommender, state.impressions, state.experiments)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_export_writes_one_line_per_user_and_resumes(ml_state: AppState, tmp_path: Path) -> None:
    users = [str(u) for u in range(1, 31)]
    output = tmp_path / "recs.jsonl"
    first = await export.export_recommendations(serving_of(ml_state), output=output, users=users[:12], count=20)
    assert (first.exported, first.skipped) == (12, 0) and first.users_per_second > 0
    lines = read_lines(output)
    assert sorted(r["userId"] for r in lines) == sorted(users[:12])
    for record in lines:
        assert set(record) == {"userId", "requestId", "modelVersion", "items"} and record["modelVersion"] == 1
        assert [i["rank"] for i in record["items"]] == list(range(1, 21))
        assert all(set(i) == {"contentId", "score", "rank", "explanation"} for i in record["items"])
    with output.open("a", encoding="utf-8") as handle:
        handle.write('{"userId": "13", "requestId": "cut sh')  # a crash mid-line
    second = await export.export_recommendations(serving_of(ml_state), output=output, users=users, count=20)
    assert (second.exported, second.skipped) == (18, 12)
    again = read_lines(output)
    assert sorted(r["userId"] for r in again) == sorted(users) and len(again) == 30
    await ml_state.impressions.flush()
    async with ml_state.sessions() as session:
        stored = (
            await session.execute(
                text("SELECT count(*) FROM impressions WHERE request_id = ANY(:r)"),
                {"r": [r["requestId"] for r in again]},
            )
        ).scalar()
    assert stored == 30


def test_export_command(ml_state: AppState, tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("1\n2\n\n# a comment\nnot valid!\n3\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    env = {**os.environ, "RECENGINE_DATABASE_URL": ml_state.database_url, "COLUMNS": "200"}
    args = [sys.executable, "-m", "app", "export", "recommendations", "--output", str(output), "--users", str(users)]
    result = subprocess.run([*args, "--count", "5"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "line 5:" in result.stdout and "users/s" in result.stdout
    assert [r["userId"] for r in sorted(read_lines(output), key=lambda r: r["userId"])] == ["1", "2", "3"]
    rerun = subprocess.run([*args, "--count", "5"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert "exported 0 users" in rerun.stdout and "(3 already there)" in rerun.stdout
    assert len(read_lines(output)) == 3


PAGE = """query($u: ID!, $after: ID) { recommendations(userId: $u, count: 20, after: $after) {
  requestId cached items { contentId rank } } }"""


async def page(ml: Query, user: str, after: str | None) -> dict[str, Any]:
    body = await ml(PAGE, {"u": user, "after": after})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["recommendations"]
    return result


async def test_five_pages_of_twenty_continue_one_list(ml: Query, ml_state: AppState) -> None:
    user, pages, after = "4", [], None
    for _ in range(5):
        pages.append(await page(ml, user, after))
        after = pages[-1]["requestId"]
    ids = [i["contentId"] for p in pages for i in p["items"]]
    assert len(ids) == 100 and len(set(ids)) == 100
    assert not set(ids) & await consumed(ml_state, user)
    assert [i["rank"] for p in pages for i in p["items"]] == list(range(1, 101))
    deep = await rec.recommend(ml_state.recommender, rec.RecRequest(user_id=user, count=20, offset=80), request_id="x")
    assert ids == [i.content_id for i in deep.items]  # the same ranking, continued: same order
    await ml_state.impressions.flush()
    async with ml_state.sessions() as session:
        parents = dict(
            (
                await session.execute(text("SELECT request_id, parent_request_id FROM impressions WHERE user_id = '4'"))
            ).all()
        )
    assert [parents[p["requestId"]] for p in pages] == [None] + [p["requestId"] for p in pages[:-1]]


async def test_paging_after_new_events_recomputes_without_repeats(ml: Query, ml_state: AppState) -> None:
    user = "6"
    first = await page(ml, user, None)
    second = await page(ml, user, first["requestId"])
    clicked = second["items"][0]["contentId"]
    event = {"userId": user, "contentId": clicked, "eventType": "click", "recommendationId": second["requestId"]}
    assert "errors" not in await ml("mutation($e: EventInput!) { logEvent(input: $e) { duplicate } }", {"e": event})
    third = await page(ml, user, second["requestId"])
    shown = {i["contentId"] for p in (first, second) for i in p["items"]}
    ids = [i["contentId"] for i in third["items"]]
    assert len(ids) == 20 and not set(ids) & shown and clicked not in ids
    assert [i["rank"] for i in third["items"]] == list(range(41, 61))
    async with ml_state.sessions() as session:  # the database is shared by the engine tests
        await session.execute(text("DELETE FROM events WHERE recommendation_id = :r"), {"r": second["requestId"]})
        await session.commit()


async def test_paging_rejects_another_users_or_an_unknown_request(ml: Query, ml_state: AppState) -> None:
    mine = await page(ml, "9", None)
    await ml_state.impressions.flush()
    async with ml_state.sessions() as session:
        before = (await session.execute(text("SELECT count(*) FROM impressions"))).scalar()
    for after in (mine["requestId"], "no-such-request", "bad id"):
        body = await ml(PAGE, {"u": "10", "after": after})
        assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "after"
    await ml_state.impressions.flush()
    async with ml_state.sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM impressions"))).scalar() == before


async def second_version(state: AppState) -> int:
    """A candidate version: version 1's item factors dealt to other items (a different model)."""
    async with state.sessions() as session:
        version = (
            await session.execute(
                text(
                    "INSERT INTO model_versions (kind, params, training_stats, metrics, status) "
                    "SELECT kind, params, training_stats, metrics, 'candidate' FROM model_versions WHERE id = 1 "
                    "RETURNING id"
                )
            )
        ).scalar_one()
        await session.execute(
            text(
                """INSERT INTO item_factors (model_version_id, content_id, factors)
                   SELECT :v, a.content_id, b.factors
                   FROM (SELECT content_id, row_number() OVER (ORDER BY content_id) AS n
                         FROM item_factors WHERE model_version_id = 1) a
                   JOIN (SELECT factors, row_number() OVER (ORDER BY md5(content_id)) AS n
                         FROM item_factors WHERE model_version_id = 1) b USING (n)"""
            ),
            {"v": version},
        )
        await session.commit()
    return int(version)


COLLAB = """query($u: ID!, $p: String) { recommendations(userId: $u, count: 10, strategy: COLLABORATIVE, placement: $p) {
  modelVersion experiment { name arm } items { contentId } } }"""


async def collab(ml: Query, user: str, placement: str | None = None) -> dict[str, Any]:
    body = await ml(COLLAB, {"u": user, "p": placement})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["recommendations"]
    return result


async def test_an_arm_serves_its_own_model_version(ml: Query, ml_state: AppState) -> None:
    version = await second_version(ml_state)
    placed = await ml('mutation { upsertPlacement(input: {name: "lab"}) { name } }')  # an unknown one is NOT_FOUND
    assert "errors" not in placed, placed
    arms = [
        {"name": "current", "strategy": "COLLABORATIVE", "traffic": 0.5},
        {"name": "next", "strategy": "COLLABORATIVE", "modelVersion": version, "traffic": 0.5},
    ]
    body = await ml(
        "mutation($i: ExperimentInput!) { upsertExperiment(input: $i) { name } }",
        {"i": {"name": "versions", "placement": "lab", "arms": arms}},
    )
    assert "errors" not in body, body
    served = {u: await collab(ml, u, "lab") for u in map(str, range(20, 40))}
    on_next = [u for u, r in served.items() if r["experiment"]["arm"] == "next"]
    on_current = [u for u, r in served.items() if r["experiment"]["arm"] == "current"]
    assert on_next and on_current
    assert all(served[u]["modelVersion"] == version for u in on_next)
    assert all(served[u]["modelVersion"] == 1 for u in on_current)
    user = on_next[0]
    with_v1 = await collab(ml, user)
    try:
        await ml("mutation($v: Int!) { activateModel(id: $v) { id } }", {"v": version})
        with_v2 = await collab(ml, user)
    finally:
        await ml("mutation { activateModel(id: 1) { id } }")
        await ml('mutation { stopExperiment(name: "versions") { active } }')
        async with ml_state.sessions() as session:  # other tests expect version 1 to be the newest
            await session.execute(text("DELETE FROM model_versions WHERE id = :v"), {"v": version})
            await session.commit()
    assert served[user]["items"] == with_v2["items"] != with_v1["items"]
    await ml_state.impressions.flush()
    stats = await ml(
        "query($s: DateTime!) { recommendationStats(since: $s, groupBy: [MODEL_VERSION, EXPERIMENT_ARM]) "
        "{ modelVersion experiment arm impressions } }",
        {"s": "2000-01-01T00:00:00Z"},
    )
    rows = {(r["modelVersion"], r["arm"]): r["impressions"] for r in stats["data"]["recommendationStats"]}
    assert rows[(version, "next")] == 10 * len(on_next) and rows[(1, "current")] == 10 * len(on_current)
