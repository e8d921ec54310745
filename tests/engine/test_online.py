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
from tests.engine.conftest import Query
from tests.engine.test_recommendations import genres

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
