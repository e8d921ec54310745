"""Training: determinism, privacy in training, the promotion gate and activation."""

from __future__ import annotations

import numpy as np
from sqlalchemy import text

from app.context import AppState
from app.ml.gate import EventArrays
from app.ml.training import fit, load_events, train
from tests.engine.conftest import Query

SMALL = {"factors": 16, "iterations": 5}


async def test_same_seed_same_factors(ml_state: AppState) -> None:
    events = await load_events(ml_state.sessions)
    first, _ = fit(events, ml_state.settings, seed=3, **SMALL)
    second, _ = fit(events, ml_state.settings, seed=3, **SMALL)
    other, _ = fit(events, ml_state.settings, seed=4, **SMALL)
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
    a, _ = fit(opted_out, ml_state.settings, seed=5, **SMALL)
    b, _ = fit(without, ml_state.settings, seed=5, **SMALL)
    assert "10" not in a.user_ids
    np.testing.assert_array_equal(a.item_factors, b.item_factors)


async def test_gate_refuses_worse_and_accepts_better(ml_state: AppState, ml: Query) -> None:
    before = await ml('{ recommendations(userId: "1", count: 3) { modelVersion } }')
    active = before["data"]["recommendations"]["modelVersion"]
    worse = await train(ml_state.sessions, ml_state.settings, seed=1, factors=2, iterations=1)
    assert not worse.activated and "kept as candidate" in worse.reason
    assert worse.metrics["ndcg@10"] < worse.metrics["active_ndcg@10"]
    forced = await train(ml_state.sessions, ml_state.settings, seed=1, factors=2, iterations=1, force=True)
    assert forced.activated and "--force" in forced.reason
    better = await train(ml_state.sessions, ml_state.settings, seed=7)
    assert better.activated, better.reason
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
