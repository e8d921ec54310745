"""Training: determinism, privacy in training, the promotion gate and activation."""

from __future__ import annotations

import numpy as np
from sqlalchemy import text

from app.context import AppState
from app.ml.gate import EventArrays
from app.ml.serving import ServingConfig, default_config
from app.ml.training import fit, load_events, train
from app.ml.tuning import variant
from tests.engine.conftest import Query

SMALL = variant(default_config(), **{"als.factors": 16, "als.iterations": 5})
TINY = variant(default_config(), **{"als.factors": 2, "als.iterations": 1})


async def test_same_seed_same_factors(ml_state: AppState) -> None:
    events = await load_events(ml_state.sessions)
    first, _ = fit(events, SMALL, seed=3)
    second, _ = fit(events, SMALL, seed=3)
    other, _ = fit(events, SMALL, seed=4)
    np.testing.assert_array_equal(first.item_factors, second.item_factors)
    np.testing.assert_array_equal(first.user_factors, second.user_factors)
    assert not np.array_equal(first.item_factors, other.item_factors)


async def test_data_sharing_off_has_no_influence(ml_state: AppState, ml: Query) -> None:
    everyone = await load_events(ml_state.sessions)
    await ml('mutation { updatePrivacySettings(userId: "10", input: {dataSharing: false}) { id } }')
    try:
        opted_out = await load_events(ml_state.sessions)
    finally:
        await ml('mutation { updatePrivacySettings(userId: "10", input: {dataSharing: true}) { id } }')
    keep = everyone.user_ids != "10"
    without = EventArrays(
        everyone.user_ids[keep], everyone.item_ids[keep], everyone.weights[keep], everyone.timestamps[keep]
    )
    assert "10" in set(everyone.user_ids) and "10" not in set(opted_out.user_ids)
    a, _ = fit(opted_out, SMALL, seed=5)
    b, _ = fit(without, SMALL, seed=5)
    assert "10" not in a.user_ids
    np.testing.assert_array_equal(a.item_factors, b.item_factors)


async def test_gate_refuses_worse_and_accepts_better(ml_state: AppState, ml: Query) -> None:
    before = await ml('{ recommendations(userId: "1", count: 3) { modelVersion } }')
    active = before["data"]["recommendations"]["modelVersion"]
    worse = await train(ml_state.sessions, ml_state.settings, config=TINY, seed=1)
    assert not worse.activated and "kept as candidate" in worse.reason
    assert worse.metrics["ndcg@10"] < worse.metrics["active_ndcg@10"]
    forced = await train(ml_state.sessions, ml_state.settings, config=TINY, seed=1, force=True)
    assert forced.activated and "--force" in forced.reason
    reweighted = variant(default_config(), weights=default_config().weights | {"hybrid": {"collaborative": 1.0}})
    better = await train(ml_state.sessions, ml_state.settings, config=reweighted, seed=7)
    assert better.activated, better.reason
    ml_state.recommender.forget_model()
    await ml_state.recommender.active_model()
    assert ml_state.recommender.serving_config() == reweighted  # the service blends with the active version's
    shown = await ml("{ modelVersions { id params } }")
    params = {v["id"]: v["params"] for v in shown["data"]["modelVersions"]}
    assert ServingConfig.from_params(params[better.version_id]) == reweighted
    async with ml_state.sessions() as session:
        rows = (await session.execute(text("SELECT id, status FROM model_versions ORDER BY id"))).all()
    statuses = dict(rows)
    assert statuses[better.version_id] == "active" and statuses[worse.version_id] == "candidate"
    assert statuses[active] == "retired" and list(statuses.values()).count("active") == 1
    rollback = await ml("mutation { activateModel(id: %d) { status } }" % active)
    assert rollback["data"]["activateModel"]["status"] == "active"
    ml_state.recommender.forget_model()
    after = await ml('{ recommendations(userId: "1", count: 3) { modelVersion cached } }')
    assert after["data"]["recommendations"] == {"modelVersion": active, "cached": False}
    assert ml_state.recommender.serving_config() == default_config()  # weights rolled back with the factors
