"""The serving blend: normalisation, weighting, contributions, MMR, profile vectors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ml.hybrid import Candidate, blend, normalize
from app.ml.serving import RECENCY, default_config
from app.ml.sources import Source


def _cands(scores: dict[str, float], anchor: str | None = None) -> list[Candidate]:
    return [Candidate(item, score, anchor) for item, score in scores.items()]


def test_normalize_is_rank_based_with_shared_ties() -> None:
    out = normalize(np.array([10.0, 1000.0, 10.0, 0.5]))
    assert out.tolist() == pytest.approx([2.5 / 4, 1.0, 2.5 / 4, 0.25])
    assert normalize(np.array([])).size == 0
    assert normalize(np.array([3.0, 3.0])).tolist() == [0.75, 0.75]


def test_default_weights_name_only_known_sources() -> None:
    hybrid = default_config().blend("hybrid")
    assert set(hybrid) <= {*(s.value for s in Source), RECENCY}
    assert all(weight > 0 for weight in hybrid.values())


def test_blend_scores_in_unit_interval_descending_and_count() -> None:
    sources = {
        "collaborative": _cands({"a": 5.0, "b": 3.0, "c": 1.0}),
        "popular": _cands({"c": 900.0, "d": 800.0, "a": 10.0}),
    }
    ranked = blend(sources, 3, weights={"collaborative": 1.0, "popular": 1.0})
    assert len(ranked) == 3
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    # a: 1/2*1 + 1/2*(1/3); c: 1/2*(1/3) + 1/2*1 -> tie broken by id
    assert [r.item_id for r in ranked] == ["a", "c", "b"]
    assert sum(ranked[0].contributions.values()) == pytest.approx(ranked[0].score)
    assert set(ranked[0].contributions) == {"collaborative", "popular"}


def test_blend_weights_decide_and_anchors_are_kept() -> None:
    sources = {
        "collaborative": _cands({"a": 2.0, "b": 1.0}),
        "item_neighbors": _cands({"b": 0.9, "a": 0.1}, anchor="seed"),
    }
    assert blend(sources, 1, weights={"collaborative": 1.0, "item_neighbors": 0.0})[0].item_id == "a"
    top = blend(sources, 1, weights={"collaborative": 0.1, "item_neighbors": 1.0})[0]
    assert top.item_id == "b"
    assert top.anchors == {"item_neighbors": "seed"}


def test_blend_keeps_best_duplicate_within_a_source() -> None:
    sources = {"item_neighbors": [Candidate("x", 0.2, "p"), Candidate("x", 0.9, "q"), Candidate("y", 0.5, "p")]}
    ranked = blend(sources, 5, weights={"item_neighbors": 1.0})
    assert [r.item_id for r in ranked] == ["x", "y"]
    assert ranked[0].anchors["item_neighbors"] == "q"


def test_blend_recency_boost() -> None:
    sources = {"popular": _cands({"old": 2.0, "new": 1.0})}
    plain = blend(sources, 2, weights={"popular": 1.0})
    boosted = blend(sources, 2, weights={"popular": 1.0, "recency": 1.0}, recency={"new": 1.0, "old": 0.0})
    assert plain[0].item_id == "old"
    assert boosted[0].item_id == "new"
    assert boosted[0].contributions["recency"] == pytest.approx(0.5)


def test_mmr_diversity_changes_order() -> None:
    sources = {"collaborative": _cands({"a": 3.0, "a2": 2.9, "b": 2.0})}
    vectors = {"a": np.array([1.0, 0.0]), "a2": np.array([1.0, 0.01]), "b": np.array([0.0, 1.0])}
    plain = [r.item_id for r in blend(sources, 3, weights={"collaborative": 1.0})]
    diverse = blend(sources, 3, weights={"collaborative": 1.0}, diversity=0.7, vectors=vectors)
    assert plain == ["a", "a2", "b"]
    assert [r.item_id for r in diverse] == ["a", "b", "a2"]
    scores = [r.score for r in diverse]
    assert scores == sorted(scores, reverse=True)


def test_blend_empty_and_zero_count() -> None:
    assert blend({}, 5, weights={"popular": 1.0}) == []
    assert blend({"popular": _cands({"a": 1.0})}, 0, weights={"popular": 1.0}) == []


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([s.value for s in Source]),
        st.dictionaries(st.text("abcdef", min_size=1, max_size=2), st.floats(-1e6, 1e6), max_size=8),
        max_size=4,
    ),
    st.integers(1, 10),
)
def test_blend_properties(raw: dict[str, dict[str, float]], count: int) -> None:
    sources = {name: _cands(items) for name, items in raw.items()}
    ranked = blend(sources, count, weights={s.value: 1.0 for s in Source})
    distinct = {item for items in raw.values() for item in items}
    assert len(ranked) == min(count, len(distinct))
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 + 1e-12 for s in scores)
    assert len({r.item_id for r in ranked}) == len(ranked)


def test_zero_weight_sources_alone_still_rank() -> None:
    ranked = blend({"popular": _cands({"a": 3.0, "b": 1.0})}, 2, weights={"popular": 0.0, "collaborative": 1.0})
    assert [r.item_id for r in ranked] == ["a", "b"]
    assert ranked[0].score == pytest.approx(1.0)


def test_history_weights_shift_to_content_only_within_the_strategy() -> None:
    config = default_config()
    short_history = config.history.short_history
    hybrid_w = config.blend("hybrid")
    assert config.adapt(hybrid_w, short_history) == dict(hybrid_w)
    short = config.adapt(hybrid_w, short_history // 4)
    assert short["collaborative"] == pytest.approx(hybrid_w["collaborative"] * 0.25)
    assert short["content"] > hybrid_w["content"] and "item_neighbors" not in short
    assert config.adapt(config.blend("collaborative"), 1).keys() == {"collaborative"}
    assert config.adapt(config.blend("popular"), 0) == config.blend("popular")
