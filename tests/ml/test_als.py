"""Tests for interaction matrices, ALS training, fold-in and persistence."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ml.als import (
    DEFAULT_EVENT_WEIGHTS,
    ALSModel,
    Interactions,
    build_interactions,
    event_weight,
    fold_in_vector,
)

DAY = 86_400.0
N_USERS, N_ITEMS, CLUSTER_ITEMS = 60, 40, 20


def fold_in(model: ALSModel, items: np.ndarray, confidences: np.ndarray) -> np.ndarray:
    """A user vector against the model's item factors, as serving folds users in."""
    y = model.item_factors.astype(np.float64)
    return fold_in_vector(
        model.item_factors, y.T @ y, items, confidences, alpha=model.alpha, regularization=model.regularization
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _block_interactions(seed: int = 7) -> Interactions:
    """Two clusters: users 0-29 use items 0-19, users 30-59 use items 20-39."""
    rng = np.random.default_rng(seed)
    users, items, weights = [], [], []
    for user in range(N_USERS):
        offset = 0 if user < N_USERS // 2 else CLUSTER_ITEMS
        for item in rng.choice(CLUSTER_ITEMS, size=8, replace=False) + offset:
            users.append(f"u{user:02d}")
            items.append(f"i{item:02d}")
            weights.append(float(rng.integers(1, 5)))
    return build_interactions(users, items, np.array(weights))


@pytest.fixture(scope="module")
def block() -> Interactions:
    return _block_interactions()


@pytest.fixture(scope="module")
def model(block: Interactions) -> ALSModel:
    return ALSModel(factors=4, regularization=1.0, iterations=10, random_state=3).fit(block)


def _cluster(item_index: int) -> int:
    return 0 if item_index < CLUSTER_ITEMS else 1


# event_weight


def test_event_weight_table() -> None:
    assert event_weight("purchase", None, DEFAULT_EVENT_WEIGHTS) == 10.0
    assert event_weight("view", 0.3, DEFAULT_EVENT_WEIGHTS) == 1.0
    assert event_weight("dislike", None, DEFAULT_EVENT_WEIGHTS) == -4.0


def test_event_weight_unknown_type_is_named() -> None:
    with pytest.raises(ValueError, match="'teleport'"):
        event_weight("teleport", None, DEFAULT_EVENT_WEIGHTS)


def test_rating_weight() -> None:
    w = DEFAULT_EVENT_WEIGHTS
    assert event_weight("rate", 5.0, w) == 5.0
    assert event_weight("rate", 0.5, w) == 0.5
    assert event_weight("rate", None, w) == 2.5
    assert event_weight("rate", 99.0, w) == 5.0
    assert event_weight("rate", 4.0, {**w, "rate": 2.0}) == 8.0
    assert event_weight("rate", 4.0, {**w, "rate": -1.0}) == -1.0
    with pytest.raises(ValueError, match="finite"):
        event_weight("rate", float("nan"), w)


@given(
    st.floats(min_value=-10, max_value=10, allow_nan=False),
    st.floats(min_value=-10, max_value=10, allow_nan=False),
)
def test_rating_weight_positive_and_monotone(low: float, high: float) -> None:
    low, high = sorted((low, high))
    a = event_weight("rate", low, DEFAULT_EVENT_WEIGHTS)
    b = event_weight("rate", high, DEFAULT_EVENT_WEIGHTS)
    assert 0 < a <= b


# build_interactions


def test_sums_and_sorted_ids() -> None:
    inter = build_interactions(["u2", "u1", "u2", "u2"], ["b", "a", "b", "a"], np.array([1.0, 2.0, 3.0, 4.0]))
    assert inter.user_ids == ["u1", "u2"]
    assert inter.item_ids == ["a", "b"]
    assert inter.matrix.dtype == np.float32
    np.testing.assert_array_equal(inter.matrix.toarray(), [[2.0, 0.0], [4.0, 4.0]])
    assert inter.user_index() == {"u1": 0, "u2": 1}
    assert inter.item_index() == {"a": 0, "b": 1}


def test_time_decay() -> None:
    now = 1_000 * DAY
    stamps = np.array([now, now - 10 * DAY, now - 20 * DAY, now + DAY])
    inter = build_interactions(["u"] * 4, ["a", "b", "c", "d"], np.full(4, 4.0), stamps, half_life_days=10, now=now)
    np.testing.assert_allclose(inter.matrix.toarray(), [[4.0, 2.0, 1.0, 4.0]], rtol=1e-6)


def test_decay_is_anchored_on_the_clock_given_not_on_the_newest_event() -> None:
    now = 1_000 * DAY
    far_future = now + 100_000 * DAY  # one event with a wrong date must not age every other one into underflow
    stamps = np.array([now - 5 * DAY, now, far_future])
    inter = build_interactions(["u"] * 3, ["a", "b", "c"], np.full(3, 2.0), stamps, half_life_days=5, now=now)
    np.testing.assert_allclose(inter.matrix.toarray(), [[1.0, 2.0, 2.0]])
    with pytest.raises(ValueError, match="now"):
        build_interactions(["u"], ["a"], np.array([1.0]), np.array([0]), half_life_days=5)


def test_dislike_dropped_but_ids_kept() -> None:
    inter = build_interactions(
        ["u1", "u1", "u1", "u2"],
        ["a", "a", "b", "c"],
        np.array([4.0, -4.0, 1.0, -4.0]),
        item_universe=["z"],
    )
    assert inter.user_ids == ["u1", "u2"]
    assert inter.item_ids == ["a", "b", "c", "z"]
    np.testing.assert_array_equal(inter.matrix.toarray(), [[0, 1, 0, 0], [0, 0, 0, 0]])
    assert inter.matrix.nnz == 1


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="one length"):
        build_interactions(["u"], ["a", "b"], np.array([1.0]))
    with pytest.raises(ValueError, match="timestamps"):
        build_interactions(["u"], ["a"], np.array([1.0]), half_life_days=3)
    with pytest.raises(ValueError, match="half_life_days"):
        build_interactions(["u"], ["a"], np.array([1.0]), np.array([0]), half_life_days=0, now=0.0)
    with pytest.raises(ValueError, match="finite"):
        build_interactions(["u"], ["a"], np.array([np.inf]))


events = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3", "u10"]),
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.sampled_from(sorted(DEFAULT_EVENT_WEIGHTS)),
        st.floats(min_value=0.5, max_value=5.0),
        st.integers(min_value=0, max_value=400 * int(DAY)),
    ),
    max_size=40,
)


@given(events, st.none() | st.floats(min_value=0.5, max_value=100))
@settings(max_examples=60, deadline=None)
def test_property_positive_entries_and_shapes(
    rows: list[tuple[str, str, str, float, int]], half_life: float | None
) -> None:
    weights = np.array([event_weight(t, v, DEFAULT_EVENT_WEIGHTS) for _, _, t, v, _ in rows])
    inter = build_interactions(
        [r[0] for r in rows],
        [r[1] for r in rows],
        weights,
        np.array([r[4] for r in rows], dtype=np.int64),
        half_life_days=half_life,
        now=400 * DAY,
        item_universe=["e"],
    )
    assert inter.matrix.shape == (len(inter.user_ids), len(inter.item_ids))
    assert (inter.matrix.data > 0).all()
    assert inter.user_ids == sorted({r[0] for r in rows})
    assert inter.item_ids == sorted({r[1] for r in rows} | {"e"})
    assert inter.matrix.has_canonical_format


mixed_ids = st.one_of(st.integers(min_value=0, max_value=12), st.sampled_from(["0", "3", "x", "10", "é"]))


@given(st.lists(st.tuples(mixed_ids, mixed_ids, st.floats(min_value=-5, max_value=5)), max_size=60))
@settings(max_examples=80, deadline=None)
def test_property_matrix_is_the_summed_weights_by_string_id(rows: list[tuple[object, object, float]]) -> None:
    """Every (user, item) cell is the sum of its rows' weights under the ids' string forms (1 and "1" are
    one id), positives only; the reference is a plain dictionary of sums."""
    totals: dict[tuple[str, str], float] = {}
    for user, item, weight in rows:
        totals[(str(user), str(item))] = totals.get((str(user), str(item)), 0.0) + weight
    inter = build_interactions(
        np.array([r[0] for r in rows], dtype=object),
        np.array([r[1] for r in rows], dtype=object),
        np.array([r[2] for r in rows], dtype=np.float64),
    )
    assert inter.user_ids == sorted({u for u, _ in totals})
    assert inter.item_ids == sorted({i for _, i in totals})
    dense = inter.matrix.toarray()
    users, items = inter.user_index(), inter.item_index()
    expected = np.zeros_like(dense)
    for (user, item), total in totals.items():
        expected[users[user], items[item]] = max(np.float32(total), 0.0)
    np.testing.assert_allclose(dense, expected, rtol=1e-5, atol=1e-6)


# ALSModel


def test_fit_is_deterministic(block: Interactions) -> None:
    first = ALSModel(factors=8, iterations=5, random_state=1).fit(block)
    second = ALSModel(factors=8, iterations=5, random_state=1, num_threads=1).fit(block)
    np.testing.assert_array_equal(first.user_factors, second.user_factors)
    np.testing.assert_array_equal(first.item_factors, second.item_factors)
    other = ALSModel(factors=8, iterations=5, random_state=2).fit(block)
    assert not np.array_equal(first.item_factors, other.item_factors)


def test_fit_shapes_and_ids(model: ALSModel, block: Interactions) -> None:
    assert model.user_factors.shape == (N_USERS, 4)
    assert model.item_factors.shape == (N_ITEMS, 4)
    assert model.user_factors.dtype == np.float32
    assert model.user_ids == block.user_ids and model.item_ids == block.item_ids
    assert model.params["factors"] == 4 and model.params["alpha"] == 2.0


def test_fold_in_existing_user_matches_trained_vector(model: ALSModel, block: Interactions) -> None:
    for user in range(0, N_USERS, 5):
        row = block.matrix[user]
        assert _cosine(fold_in(model, row.indices, row.data), model.user_factors[user]) > 0.9


def test_fold_in_is_implicits_recalculate_user(model: ALSModel, block: Interactions) -> None:
    from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped,unused-ignore]

    reference = AlternatingLeastSquares(factors=4, regularization=1.0, alpha=1.0)
    reference.item_factors = model.item_factors
    reference.user_factors = model.user_factors
    row = block.matrix[4]
    confidence = sp.csr_matrix(row, copy=True)
    confidence.data = 1.0 + model.alpha * confidence.data
    expected = reference.recalculate_user(0, confidence)
    np.testing.assert_allclose(fold_in(model, row.indices, row.data), expected, atol=1e-4)


def test_fold_in_new_user_gets_own_cluster(model: ALSModel) -> None:
    for liked in ([0, 3, 7], [21, 25, 33]):
        vector = fold_in(model, np.array(liked), np.array([3.0, 2.0, 4.0]))
        scores = model.item_factors @ vector
        scores[liked] = -np.inf
        order = np.argsort(-scores)[: N_ITEMS - 3]
        own = np.array([_cluster(i) == _cluster(liked[0]) for i in order])
        assert own[:5].all()
        assert scores[order][own].mean() > scores[order][~own].mean() + 0.1


def test_fold_in_edge_cases(model: ALSModel) -> None:
    np.testing.assert_array_equal(fold_in(model, np.array([]), np.array([])), np.zeros(4))
    dislike_only = fold_in(model, np.array([1]), np.array([-4.0]))
    np.testing.assert_array_equal(dislike_only, np.zeros(4))
    summed = fold_in(model, np.array([1, 1, 2]), np.array([1.0, 2.0, 1.0]))
    np.testing.assert_allclose(summed, fold_in(model, np.array([2, 1]), np.array([1.0, 3.0])))
    with pytest.raises(IndexError):
        fold_in(model, np.array([N_ITEMS]), np.array([1.0]))
    with pytest.raises(ValueError, match="confidences"):
        fold_in(model, np.array([1, 2]), np.array([1.0]))


def test_bad_params() -> None:
    with pytest.raises(ValueError):
        ALSModel(factors=0)
    with pytest.raises(ValueError):
        ALSModel(alpha=0)
