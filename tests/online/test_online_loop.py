"""The online loop over HTTP: identity rules, attribution, impressions, stats, experiments, session merges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from app import migrate
from app.config import AuthMode
from app.context import AppState
from app.main import build_state, close_state, create_app
from tests.cli.test_cli import recengine
from tests.conftest import GQL, error_codes

LOG = "mutation($input: EventInput!) { logEvent(input: $input) { event { userId sessionId recommendationId } } }"
LOG_MANY = "mutation($inputs: [EventInput!]!) { logEvents(inputs: $inputs) { accepted errors { index message } } }"
RECS = """query($u: ID, $s: String, $p: String, $strategy: Strategy! = HYBRID) {
  recommendations(userId: $u, sessionId: $s, placement: $p, count: 3, strategy: $strategy) {
    userId sessionId requestId cached strategy modelVersion experiment { name arm } items { contentId rank } } }"""
UPSERT_EXP = """mutation($input: ExperimentInput!) {
  upsertExperiment(input: $input) { name placement active arms { name strategy modelVersion traffic } } }"""
STATS = """query($since: DateTime!, $g: [StatsDimension!]) { recommendationStats(since: $since, groupBy: $g) {
  strategy modelVersion placement experiment arm impressions users clicks ctr conversions conversionRate } }"""
SINCE = (datetime.now(UTC) - timedelta(hours=1)).isoformat()


@pytest.fixture(autouse=True)
async def warm_embedder(state: AppState) -> None:
    """Load the embedding model outside any request (its first load may outlast a request's time budget)."""
    await state.recommender.embed(["warm up"])


async def scalar(state: AppState, sql: str, **params: Any) -> Any:
    async with state.sessions() as session:
        return (await session.execute(text(sql), params)).scalar()


async def seed(gql: GQL, n: int = 6) -> None:
    inputs = [{"id": f"c{i}", "title": f"Item {i}", "contentType": "VIDEO"} for i in range(n)]
    body = await gql("mutation($i: [ContentInput!]!) { upsertContents(inputs: $i) { accepted } }", {"i": inputs})
    assert body.get("data") and body["data"]["upsertContents"]["accepted"] == n, body
    events = [{"userId": f"p{j}", "contentId": f"c{i}", "eventType": "view"} for i in range(n) for j in range(n - i)]
    assert (await gql(LOG_MANY, {"inputs": events}))["data"]["logEvents"]["accepted"] == len(events)
    placed = await gql('mutation { upsertPlacement(input: {name: "home"}) { name } }')  # an unknown one is NOT_FOUND
    assert placed["data"]["upsertPlacement"]["name"] == "home", placed


async def recs(gql: GQL, **variables: Any) -> dict[str, Any]:
    body = await gql(RECS, variables)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["recommendations"]
    return result


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_event_needs_a_user_or_a_session(gql: GQL, state: AppState) -> None:
    await seed(gql, 1)
    before = await scalar(state, "SELECT count(*) FROM events")
    body = await gql(LOG, {"input": {"contentId": "c0", "eventType": "view"}})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "input.userId"
    bad_session = await gql(LOG, {"input": {"sessionId": "has spaces", "contentId": "c0", "eventType": "view"}})
    assert bad_session["errors"][0]["extensions"]["field"] == "input.sessionId"
    long_id = await gql(
        LOG, {"input": {"userId": "u", "contentId": "c0", "eventType": "view", "recommendationId": "r" * 65}}
    )
    assert long_id["errors"][0]["extensions"]["field"] == "input.recommendationId"
    batch = await gql(
        LOG_MANY,
        {
            "inputs": [
                {"contentId": "c0", "eventType": "view"},
                {"sessionId": "s1", "contentId": "c0", "eventType": "view"},
            ]
        },
    )
    assert batch["data"]["logEvents"]["accepted"] == 1
    assert batch["data"]["logEvents"]["errors"][0]["index"] == 0
    assert await scalar(state, "SELECT count(*) FROM events") == before + 1
    anonymous = await gql(
        LOG, {"input": {"sessionId": "s1", "contentId": "c0", "eventType": "like", "recommendationId": "r1"}}
    )
    assert anonymous["data"]["logEvent"]["event"] == {"userId": None, "sessionId": "s1", "recommendationId": "r1"}


async def test_recommendations_need_exactly_one_identity(gql: GQL, state: AppState) -> None:
    for variables in ({}, {"u": "u1", "s": "s1"}):
        body = await gql(RECS, variables)
        assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "userId"
    assert (await gql(RECS, {"s": "bad session"}))["errors"][0]["extensions"]["field"] == "sessionId"
    assert (await gql(RECS, {"u": "u1", "p": "no spaces\x00"}))["errors"][0]["extensions"]["field"] == "placement"
    await state.impressions.flush()
    assert await scalar(state, "SELECT count(*) FROM impressions") == 0


async def test_impressions_for_cached_and_uncached_lists(gql: GQL, state: AppState) -> None:
    await seed(gql)
    first = await recs(gql, u="u1", p="home")
    second = await recs(gql, u="u1", p="home")
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["requestId"] != second["requestId"]
    await state.impressions.flush()
    async with state.sessions() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT request_id, user_id, placement, item_ids, cached, strategy FROM impressions ORDER BY served_at"
                )
            )
        ).all()
    shown = [i["contentId"] for i in first["items"]]
    assert [tuple(r) for r in rows] == [
        (first["requestId"], "u1", "home", shown, False, "hybrid"),
        (second["requestId"], "u1", "home", shown, True, "hybrid"),
    ]


async def test_impressions_survive_a_graceful_shutdown(gql: GQL, state: AppState) -> None:
    await seed(gql)
    settings = state.settings.model_copy(update={"auth": AuthMode.DISABLED, "impression_flush_seconds": 3600.0})
    own = await build_state(settings)
    app = create_app(settings, state=own)
    ids = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        for user in ("a", "b", "c"):
            body = (await http.post("/graphql", json={"query": RECS, "variables": {"u": user}})).json()
            ids.append(body["data"]["recommendations"]["requestId"])
    written = "SELECT count(*) FROM impressions WHERE request_id = ANY(:ids)"
    assert own.impressions.queued == 3 and await scalar(state, written, ids=ids) == 0
    await close_state(own)
    assert await scalar(state, written, ids=ids) == 3


async def test_attributed_events_count_for_the_lists_strategy_and_arm(gql: GQL, state: AppState) -> None:
    await seed(gql)
    arms = [
        {"name": "pop", "strategy": "POPULAR", "traffic": 0.5},
        {"name": "trend", "strategy": "TRENDING", "traffic": 0.5},
    ]
    assert "errors" not in await gql(UPSERT_EXP, {"input": {"name": "exp1", "placement": "home", "arms": arms}})
    served = [await recs(gql, u=f"u{i}", p="home") for i in range(12)]
    assert {s["experiment"]["arm"] for s in served} == {"pop", "trend"}
    assert all(s["strategy"] == {"pop": "POPULAR", "trend": "TRENDING"}[s["experiment"]["arm"]] for s in served)
    target = served[0]
    arm, strategy = target["experiment"]["arm"], target["strategy"].lower()
    labels = {"strategy": strategy, "experiment": "exp1", "arm": arm}
    clicks = counter("recengine_recommendation_clicks_total", **labels)
    conversions = counter("recengine_recommendation_conversions_total", **labels)
    item = target["items"][0]["contentId"]
    for event_type in ("click", "purchase", "dislike"):
        event = {"userId": "u0", "contentId": item, "eventType": event_type, "recommendationId": target["requestId"]}
        assert "errors" not in await gql(LOG, {"input": event})
    assert counter("recengine_recommendation_clicks_total", **labels) == clicks + 2  # click, purchase; not dislike
    assert counter("recengine_recommendation_conversions_total", **labels) == conversions + 1
    await state.impressions.flush()
    rows = (await gql(STATS, {"since": SINCE, "g": ["EXPERIMENT_ARM"]}))["data"]["recommendationStats"]
    by_arm = {r["arm"]: r for r in rows}
    assert set(by_arm) == {"pop", "trend"}
    assert sum(r["users"] for r in rows) == 12
    assert by_arm[arm]["clicks"] == 1 and by_arm[arm]["conversions"] == 1  # one shown item, clicked and bought
    assert by_arm[arm]["impressions"] == 3 * sum(s["experiment"]["arm"] == arm for s in served)
    assert by_arm[arm]["ctr"] == 1 / by_arm[arm]["impressions"]
    other = by_arm[({"pop", "trend"} - {arm}).pop()]
    assert other["clicks"] == 0 and other["ctr"] == 0
    by_strategy = (await gql(STATS, {"since": SINCE, "g": ["STRATEGY"]}))["data"]["recommendationStats"]
    assert {r["strategy"] for r in by_strategy} == {"POPULAR", "TRENDING"}
    total = (await gql(STATS, {"since": SINCE}))["data"]["recommendationStats"]
    assert len(total) == 1 and total[0]["impressions"] == 36 and total[0]["arm"] is None


async def test_stats_and_experiments_are_admin_only(gql: GQL, client_key: str) -> None:
    assert error_codes(await gql(STATS, {"since": SINCE}, key=client_key)) == ["FORBIDDEN"]
    body = await gql(UPSERT_EXP, {"input": {"name": "e", "arms": [{"name": "a", "traffic": 1}]}}, key=client_key)
    assert error_codes(body) == ["FORBIDDEN"]
    assert error_codes(await gql("{ experiments { name } }", key=client_key)) == ["FORBIDDEN"]
    stats = await gql(
        STATS.replace("$since: DateTime!", "$since: DateTime!, $until: DateTime").replace(
            "since: $since,", "since: $since, until: $until,"
        ),
        {"since": SINCE, "until": SINCE},
    )
    assert stats["errors"][0]["extensions"]["field"] == "until"


async def test_experiment_rules(gql: GQL, state: AppState) -> None:
    one = [{"name": "a", "traffic": 0.6}]
    bad = [
        ({"name": "e", "arms": [{"name": "a", "traffic": 0.6}, {"name": "b", "traffic": 0.6}]}, "input.arms"),
        ({"name": "e", "arms": [{"name": "a", "traffic": 0.5}, {"name": "a", "traffic": 0.5}]}, "input.arms"),
        ({"name": "e", "arms": [{"name": "a", "traffic": 0}]}, "input.arms.0.traffic"),
        ({"name": "e", "arms": [{"name": "a", "traffic": 1, "modelVersion": 99}]}, "input.arms[0].modelVersion"),
        ({"name": "bad name", "arms": one}, "input.name"),
        ({"name": "e", "arms": []}, "input.arms"),
    ]
    for value, field in bad:
        body = await gql(UPSERT_EXP, {"input": value})
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["extensions"]["field"] == field
    assert await scalar(state, "SELECT count(*) FROM experiments") == 0
    assert "errors" not in await gql(UPSERT_EXP, {"input": {"name": "e1", "placement": "home", "arms": one}})
    clash = await gql(UPSERT_EXP, {"input": {"name": "e2", "placement": "home", "arms": one}})
    assert error_codes(clash) == ["CONFLICT"]
    stopped = await gql('mutation { stopExperiment(name: "e1") { active } }')
    assert stopped["data"]["stopExperiment"] == {"active": False}
    assert "errors" not in await gql(UPSERT_EXP, {"input": {"name": "e2", "placement": "home", "arms": one}})
    listed = (await gql("{ experiments { name active } }"))["data"]["experiments"]
    assert listed == [{"name": "e2", "active": True}, {"name": "e1", "active": False}]
    assert error_codes(await gql('mutation { stopExperiment(name: "nope") { active } }')) == ["NOT_FOUND"]
    assert error_codes(await gql('mutation { stopExperiment(name: "bad name") { active } }')) == ["BAD_USER_INPUT"]


async def test_conversion_flag_of_event_types(gql: GQL) -> None:
    query = 'mutation($c: Boolean) { setEventTypeWeight(eventType: "signup", weight: 5, conversion: $c) { eventType weight conversion } }'
    assert (await gql(query, {"c": True}))["data"]["setEventTypeWeight"]["conversion"] is True
    assert (await gql(query, {}))["data"]["setEventTypeWeight"]["conversion"] is True  # omitted keeps it
    assert (await gql(query, {"c": False}))["data"]["setEventTypeWeight"]["conversion"] is False


async def test_merge_session_moves_events_once(gql: GQL, state: AppState) -> None:
    await seed(gql, 3)
    events = [{"sessionId": "visit-1", "contentId": f"c{i}", "eventType": "view"} for i in range(3)]
    assert (await gql(LOG_MANY, {"inputs": events}))["data"]["logEvents"]["accepted"] == 3
    merge = (
        "mutation($s: String!, $u: ID!) { mergeSession(sessionId: $s, userId: $u) { sessionId userId eventsMoved } }"
    )
    bad = await gql(merge, {"s": "visit 1", "u": "alice"})
    assert error_codes(bad) == ["BAD_USER_INPUT"] and bad["errors"][0]["extensions"]["field"] == "sessionId"
    assert await scalar(state, "SELECT count(*) FROM events WHERE user_id = 'alice'") == 0
    first = (await gql(merge, {"s": "visit-1", "u": "alice"}))["data"]["mergeSession"]
    assert first == {"sessionId": "visit-1", "userId": "alice", "eventsMoved": 3}
    again = (await gql(merge, {"s": "visit-1", "u": "alice"}))["data"]["mergeSession"]
    assert again["eventsMoved"] == 0
    assert await scalar(state, "SELECT count(*) FROM events WHERE user_id = 'alice' AND session_id = 'visit-1'") == 3
    assert await scalar(state, "SELECT count(*) FROM users WHERE user_id LIKE '~%'") == 0


async def test_impressions_are_partitioned_by_month_and_kept_for_the_retention(state: AppState) -> None:
    insert = """INSERT INTO impressions (request_id, user_id, strategy, item_ids, served_at)
                VALUES (:r, 'u', 'hybrid', ARRAY['c1'], now() - make_interval(months => :m))"""
    async with state.engine.begin() as conn:
        await conn.execute(
            text("SELECT create_month_partition('impressions', 'served_at', now() - interval '12 months')")
        )
        for request_id, months in (("now", 0), ("year-ago", 12), ("ancient", 60)):
            await conn.execute(text(insert), {"r": request_id, "m": months})
        placed = dict((await conn.execute(text("SELECT request_id, tableoid::regclass::text FROM impressions"))).all())
    now = datetime.now(UTC)
    assert placed["now"] == f"impressions_y{now:%Y}m{now:%m}" and placed["ancient"] == "impressions_default"
    assert placed["year-ago"].startswith("impressions_y")
    assert await migrate.drop_old_impressions(state.engine, 0) == 0  # 0 keeps everything
    assert await migrate.drop_old_impressions(state.engine, 6) == 1
    assert await scalar(state, "SELECT array_agg(request_id) FROM impressions") == ["now"]
    assert await scalar(state, "SELECT to_regclass(:p)", p=placed["year-ago"]) is None


async def test_experiment_report_command(gql: GQL, state: AppState, database_url: str) -> None:
    await seed(gql)
    arms = [
        {"name": "base", "strategy": "POPULAR", "traffic": 0.5},
        {"name": "alt", "strategy": "TRENDING", "traffic": 0.5},
    ]
    assert "errors" not in await gql(UPSERT_EXP, {"input": {"name": "cli-exp", "arms": arms}})
    for i in range(12):  # every list gets one click on its first item: CTR 1/3 in both arms
        served = await recs(gql, u=f"r{i}")
        event = {"userId": f"r{i}", "contentId": served["items"][0]["contentId"], "eventType": "click"}
        assert "errors" not in await gql(LOG, {"input": {**event, "recommendationId": served["requestId"]}})
    await state.impressions.flush()
    result = recengine(["experiment", "report", "cli-exp"], database_url)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.split()[1:2] in (["base"], ["alt"])}
    assert set(rows) == {"base", "alt"} and "p-value" in result.stdout
    assert all("0.3333" in row for row in rows.values())
    assert "1.0000" in rows["alt"]  # equal CTRs: z = 0, p = 1
    missing = recengine(["experiment", "report", "nope"], database_url)
    assert missing.returncode == 1 and "not found" in missing.stdout
