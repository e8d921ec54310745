"""The one definition of event weights, decay, anchors, strongest items, seeds, profile and popularity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ml import signals
from app.ml.als import DEFAULT_EVENT_WEIGHTS
from app.ml.serving import default_config
from app.ml.sources import Source

DAY = signals.SECONDS_PER_DAY


@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(DEFAULT_EVENT_WEIGHTS)), st.none() | st.floats(-10, 10)),
        min_size=1,
        max_size=30,
    )
)
@settings(max_examples=60, deadline=None)
def test_vectorised_weights_equal_the_one_event_definition(events: list[tuple[str, float | None]]) -> None:
    types = [t for t, _ in events]
    values = [v for _, v in events]
    many = signals.event_weights(types, values, DEFAULT_EVENT_WEIGHTS)
    one = [signals.event_weight(t, v, DEFAULT_EVENT_WEIGHTS) for t, v in events]
    np.testing.assert_allclose(many, one)


def test_unknown_event_type_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown event type 'teleport'"):
        signals.event_weights(["view", "teleport"], [None, None], DEFAULT_EVENT_WEIGHTS)


def test_decay_is_measured_from_the_clock_given() -> None:
    now = 10_000 * DAY
    stamps = np.array([now - 30 * DAY, now, now + 1e6 * DAY])  # the last one has a wrong, far-future date
    weights = signals.decay(stamps, now, 30.0)
    np.testing.assert_allclose(weights, [0.5, 1.0, 1.0])
    assert signals.decay(stamps, now, None).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="half_life_days"):
        signals.decay(stamps, now, 0.0)


def test_a_future_event_does_not_make_other_weights_underflow() -> None:
    now = 20_000 * DAY
    items = np.array(["a", "b", "c"], dtype=object)
    stamps = np.array([now + 50_000 * DAY, now - DAY, now - 2 * DAY])
    names, totals = signals.item_totals(items, np.ones(3), stamps, now=now, half_life_days=90.0)
    assert set(names.tolist()) == {"a", "b", "c"}
    assert totals.min() > 0.9  # anchored on the newest event, b and c would weigh 0.5 ** 555


def test_anchors_are_the_latest_distinct_positive_items() -> None:
    items = np.array(["x", "d", "x", "y", "z", "w"], dtype=object)  # newest first
    weights = np.array([4.0, -4.0, 1.0, 2.0, 3.0, 1.0])
    assert signals.anchors(items, weights, 3) == ["x", "y", "z"]


def test_strongest_items_sum_decayed_weights_and_break_ties_by_item() -> None:
    items = np.array(["b", "a", "b", "c", "d"], dtype=object)
    weights = np.array([1.0, 2.0, 1.0, 2.0, -5.0])
    names, totals = signals.strongest(items, weights, np.zeros(5), now=0.0, half_life_days=None, n=2)
    assert names.tolist() == ["a", "b"] and totals.tolist() == [2.0, 2.0]


def test_seeds_per_link_source() -> None:
    config = default_config()
    history = signals.UserHistory(
        np.array(["c", "b", "a"], dtype=object), np.array([1.0, 5.0, 1.0]), np.array([3.0, 2.0, 1.0]) * DAY
    )
    items, weights = signals.seeds(Source.SEQUENTIAL, history, config, now=3 * DAY)
    assert items.tolist() == ["c", "b", "a"] and weights.tolist() == pytest.approx([1.0, 1 / 2, 1 / 3])
    items, weights = signals.seeds(Source.ITEM_NEIGHBORS, history, config, now=3 * DAY)
    assert weights.tolist() == [1.0, 1.0, 1.0]
    items, _ = signals.seeds(Source.CO_OCCURRENCE, history, config, now=3 * DAY)
    assert items[0] == "b"


def test_profile_is_the_unit_mean() -> None:
    even = signals.profile(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert even.tolist() == pytest.approx([2**-0.5, 2**-0.5], abs=1e-6)
    assert signals.profile(np.zeros((0, 2))).shape == (2,)


def test_popularity_counts_distinct_users() -> None:
    counts = signals.popularity(np.array([0, 0, 1, 2]), np.array([1, 1, 1, 0]), 3)
    assert counts.tolist() == [1.0, 2.0, 0.0]
