"""Evaluation protocol: the temporal split, the hybrid on a block matrix, a whole tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ml.evaluation import EvalData, index_data, make_split, run_evaluation, temporal_split
from app.ml.serving import default_config
from app.ml.strategies import blend_top, fit_sources
from app.ml.tuning import variant


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 20)), min_size=1, max_size=60),
    st.sampled_from([0.2, 0.5]),
)
def test_temporal_split_never_leaks(events: list[tuple[int, int]], fraction: float) -> None:
    users = np.array([f"u{u}" for u, _ in events], dtype=object)
    stamps = np.array([t for _, t in events], dtype=np.int64)
    train, test = temporal_split(users, stamps, fraction)
    assert not (train & test).any()
    assert (train | test).all()
    for user in set(users.tolist()):
        mine = users == user
        n = int(mine.sum())
        n_test = int(test[mine].sum())
        if n < 2:
            assert n_test == 0  # a single interaction stays in training
            continue
        assert n_test == max(1, int(np.floor(fraction * n)))
        assert stamps[mine & test].min() >= stamps[mine & train].max()


def test_temporal_split_breaks_time_ties_by_input_order() -> None:
    _, test = temporal_split(np.array(["a"] * 5, dtype=object), np.zeros(5, dtype=np.int64))
    assert test.tolist() == [False, False, False, False, True]


def block_data(n_users: int = 12, seed: int = 0) -> EvalData:
    """Two taste blocks of 6 items each; every user rates their block's items over time."""
    rng = np.random.default_rng(seed)
    users, items, stamps = [], [], []
    for u in range(n_users):
        block = [f"i{i}" for i in (range(6) if u % 2 == 0 else range(6, 12))]
        for t, item in enumerate(rng.permutation(block)):
            users.append(f"u{u}")
            items.append(str(item))
            stamps.append(1_600_000_000 + 86_400 * t + u)
    n = len(users)
    return EvalData(
        np.array(users, dtype=object),
        np.array(items, dtype=object),
        np.array(stamps, dtype=np.int64),
        np.full(n, 4.0, dtype=np.float32),
        None,
        {f"i{i}": f"item {i}" for i in range(14)},
    )


def block_vectors() -> dict[str, np.ndarray]:
    """Embeddings that agree with the blocks (items 12, 13 are never interacted with)."""
    return {f"i{i}": np.array([1.0, 0.1 * i] if i < 6 else [0.1 * i, 1.0]) for i in range(14)}


def test_hybrid_ranks_the_users_block_first() -> None:
    data = block_data()
    indexed = index_data(data)
    train, test = temporal_split(indexed.users, indexed.timestamps)
    split = make_split(indexed, train, test)
    vec = np.vstack([block_vectors()[str(i)] for i in indexed.item_ids]).astype(np.float32)
    params = variant(default_config(), **{"als.factors": 2, "half_life_days": None})
    lists = fit_sources(
        split.history,
        indexed.item_ids,
        vec,
        params,
        split.users,
        ("collaborative", "co_occurrence", "content"),
    )
    pos = {str(item): i for i, item in enumerate(indexed.item_ids)}
    top = blend_top(lists, {"collaborative": 1.0, "co_occurrence": 1.0, "content": 0.5}, 1, pos)
    for row, u in enumerate(split.users):
        assert top[row, 0] in split.relevant[row], (u, top[row])


def test_run_evaluation_writes_the_report(tmp_path: Path) -> None:
    report = run_evaluation(
        block_data(16), tmp_path, ks=(1, 2), progress=False, item_vectors=block_vectors(), quick=True
    )
    assert {p.name for p in tmp_path.iterdir()} >= {
        "report.json",
        "report.md",
        "ndcg_at_10.png",
        "metrics_vs_k.png",
    }
    stored = json.loads((tmp_path / "report.json").read_text())
    assert set(stored) >= {"protocol", "dataset", "results", "tuning"}
    models = {"HYBRID", "COLLABORATIVE", "CONTENT_BASED", "POPULAR", "EASE", "ALS", "BPR", "ItemKNN"}
    assert set(stored["results"]) == models
    for row in stored["results"].values():
        assert set(row) >= {
            "ndcg@2",
            "recall@2",
            "precision@2",
            "map@2",
            "hit_rate@2",
            "coverage",
            "novelty",
            "fit_seconds",
            "score_seconds",
        }
    assert "weights" in stored["tuning"]["HYBRID"]
    assert report["results"]["HYBRID"]["ndcg@2"] == stored["results"]["HYBRID"]["ndcg@2"]
    assert "HYBRID (batch) / best baseline" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "serving.json").is_file()
