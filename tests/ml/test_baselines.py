"""Baselines on a tiny block matrix: users of a block get that block's items."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.ml.baselines import EASE, ImplicitModel
from app.ml.batch import History, popular


def block_matrix() -> sp.csr_matrix:
    """Users 0-3 like items 0-4, users 4-7 like items 5-9; each user misses one item of its block."""
    dense = np.zeros((8, 10), dtype=np.float32)
    for u in range(8):
        block = range(0, 5) if u < 4 else range(5, 10)
        for i in block:
            if i % 5 != u % 4:
                dense[u, i] = 1.0
    return sp.csr_matrix(dense)


def missing_item(u: int) -> int:
    return (u % 4) + (0 if u < 4 else 5)


@pytest.mark.parametrize("n_users_first", [True, False])
def test_ease_recommends_the_missing_block_item(n_users_first: bool) -> None:
    matrix = block_matrix() if n_users_first else sp.csr_matrix(sp.vstack([block_matrix()] * 2))
    model = EASE(regularization=1.0)
    model.fit(matrix)
    top = model.recommend(matrix, 3)
    for u in range(matrix.shape[0]):
        assert top[u, 0] == missing_item(u % 8)


def test_ease_woodbury_matches_direct_inverse() -> None:
    rng = np.random.default_rng(1)
    x = sp.csr_matrix((rng.random((6, 9)) < 0.4).astype(np.float32))
    wide, tall = EASE(5.0), EASE(5.0)
    wide.fit(x)
    p = np.linalg.inv(x.T @ x + 5.0 * np.eye(9))
    b = np.eye(9) - p / np.diag(p)
    np.testing.assert_allclose(wide.scores(np.arange(6)), x.toarray() @ b, atol=1e-8)
    tall.fit(sp.csr_matrix(sp.vstack([x, x])))
    np.testing.assert_allclose(tall.scores(np.arange(6)), x.toarray() @ (np.eye(9) - p2(x) / np.diag(p2(x))), atol=1e-8)


def p2(x: sp.csr_matrix) -> np.ndarray:
    dense = np.vstack([x.toarray(), x.toarray()])
    return np.asarray(np.linalg.inv(dense.T @ dense + 5.0 * np.eye(dense.shape[1])))


def test_popular_excludes_seen_and_orders_by_count_then_item() -> None:
    users, items = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 2, 0, 3])
    history = History(3, 5, users, items, np.ones(6), np.zeros(6))
    top, counts = popular(history, 4)
    assert top[2].tolist() == [1, 2, -1, -1] and counts[2, :2].tolist() == [1.0, 1.0]
    assert top[0].tolist()[:2] == [2, 3]


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("itemknn", {"K": 5}),
        ("als", {"factors": 2, "iterations": 20, "regularization": 0.1, "random_state": 42}),
    ],
)
def test_implicit_models_stay_in_block(kind: str, params: dict[str, object]) -> None:
    matrix = block_matrix()
    model = ImplicitModel(kind, **params)
    model.fit(matrix)
    top = model.recommend(matrix, 1)
    for u in range(8):
        assert top[u, 0] == missing_item(u)


@pytest.mark.parametrize("copies", [1, 2])
def test_ease_item_links_are_the_top_positive_weights(copies: int) -> None:
    rng = np.random.default_rng(2)
    x = sp.csr_matrix((rng.random((6, 9)) < 0.5).astype(np.float32))
    matrix = sp.csr_matrix(sp.vstack([x] * copies))
    model = EASE(3.0)
    model.fit(matrix)
    dense = matrix.toarray().astype(np.float64)
    p = np.linalg.inv(dense.T @ dense + 3.0 * np.eye(9))
    b = np.eye(9) - p / np.diag(p)
    links = model.item_links(top_n=3, chunk=4).toarray()
    for i in range(9):
        expected = sorted((v for j, v in enumerate(b[i]) if j != i and v > 0), reverse=True)[:3]
        assert sorted(links[i][links[i] > 0], reverse=True) == pytest.approx(expected)
