"""Ranking metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.ml import metrics


def test_precision_recall_hit_rate() -> None:
    ranked = ["a", "b", "c", "d"]
    relevant = {"b", "d", "z"}
    assert metrics.precision_at_k(ranked, relevant, 2) == 0.5
    assert metrics.recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    assert metrics.hit_rate_at_k(ranked, relevant, 1) == 0.0
    assert metrics.hit_rate_at_k(ranked, relevant, 2) == 1.0


def test_k_larger_than_list_counts_missing_positions_as_misses() -> None:
    assert metrics.precision_at_k(["a"], {"a"}, 5) == pytest.approx(0.2)
    assert metrics.recall_at_k(["a"], {"a"}, 5) == 1.0
    assert metrics.ndcg_at_k(["a"], {"a"}, 5) == 1.0


def test_ndcg_ideal_uses_min_of_k_and_relevant() -> None:
    # hits at ranks 2 and 3, three relevant, k = 3
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at_k(["x", "a", "b"], {"a", "b", "c"}, 3) == pytest.approx(dcg / ideal)
    # five relevant but k = 2: a perfect top 2 scores 1
    assert metrics.ndcg_at_k(["a", "b"], {"a", "b", "c", "d", "e"}, 2) == pytest.approx(1.0)


def test_single_held_out_item() -> None:
    assert metrics.ndcg_at_k(["x", "a"], {"a"}, 10) == pytest.approx(1 / math.log2(3))
    assert metrics.average_precision_at_k(["x", "a"], {"a"}, 10) == pytest.approx(0.5)


def test_map_normalised_by_min_k_relevant() -> None:
    # hits at 1 and 3: (1/1 + 2/3) / min(3, 4)
    assert metrics.average_precision_at_k(["a", "x", "b"], {"a", "b", "c", "d"}, 3) == pytest.approx((1 + 2 / 3) / 3)


def test_empty_relevant_is_zero() -> None:
    assert metrics.ndcg_at_k(["a"], set(), 3) == 0.0
    assert metrics.recall_at_k(["a"], set(), 3) == 0.0


def test_ties_in_ranked_input_are_positional() -> None:
    # a duplicated item still takes two slots; only its first slot can be the hit that counts
    assert metrics.precision_at_k(["a", "a"], {"a"}, 2) == 1.0


def test_vectorised_matches_scalar() -> None:
    rng = np.random.default_rng(0)
    top = np.array([rng.permutation(30)[:10] for _ in range(25)])
    relevant = [rng.choice(30, size=rng.integers(1, 6), replace=False) for _ in range(25)]
    hits = metrics.hit_matrix(top, relevant)
    n_rel = np.array([r.size for r in relevant])
    for k in (1, 5, 10):
        got = metrics.metrics_at_k(hits, n_rel, k)
        for name, fn in [
            ("precision", metrics.precision_at_k),
            ("recall", metrics.recall_at_k),
            ("ndcg", metrics.ndcg_at_k),
            ("map", metrics.average_precision_at_k),
            ("hit_rate", metrics.hit_rate_at_k),
        ]:
            expected = np.mean([fn(list(t), set(r.tolist()), k) for t, r in zip(top, relevant, strict=True)])
            assert got[name] == pytest.approx(expected), (name, k)


def test_padding_is_never_a_hit() -> None:
    top = np.array([[3, -1, -1]])
    hits = metrics.hit_matrix(top, [np.array([3])])
    assert metrics.metrics_at_k(hits, np.array([1]), 3)["precision"] == pytest.approx(1 / 3)


def test_coverage_and_novelty() -> None:
    assert metrics.catalog_coverage([["a", "b"], ["b", "c"]], 6) == 0.5
    assert metrics.coverage_of(np.array([[0, 1], [1, -1]]), 4) == 0.5
    assert metrics.novelty([["a"]], {"a": 0.25}) == pytest.approx(2.0)
    assert metrics.novelty_of(np.array([[0, 1]]), np.array([0.5, 0.125])) == pytest.approx(2.0)
