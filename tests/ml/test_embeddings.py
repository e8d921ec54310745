"""Tests for the content embedder (uses the bundled all-MiniLM-L6-v2 weights, offline)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ml.embeddings import (
    EMBEDDING_DIM,
    MODEL_NAME,
    Embedder,
    content_text,
    get_embedder,
    text_hash,
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder()


def test_shape_dtype_and_unit_norm(embedder: Embedder) -> None:
    vectors = embedder.encode(["Toy Story", "a film about toys", "x" * 5000])
    assert vectors.shape == (3, EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_texts_are_closer(embedder: Embedder) -> None:
    rocket, space, wedding = embedder.encode(["space rocket astronaut", "outer space", "romantic comedy wedding"])
    assert float(rocket @ space) > float(rocket @ wedding) + 0.1


def test_batching_does_not_change_results(embedder: Embedder) -> None:
    texts = [f"movie number {i} about {w}" for i, w in enumerate(["cats", "war", "love", "jazz"])]
    small = copy.copy(embedder)  # shares the loaded model, smaller batches
    small.batch_size = 3
    np.testing.assert_allclose(small.encode(texts), embedder.encode(texts), atol=1e-5)


def test_deterministic(embedder: Embedder) -> None:
    text = ["Heat (1995) Action, Crime and Thriller film."]
    np.testing.assert_array_equal(embedder.encode(text), embedder.encode(text))


def test_empty_input(embedder: Embedder) -> None:
    empty = embedder.encode([])
    assert empty.shape == (0, EMBEDDING_DIM)
    assert empty.dtype == np.float32


def test_single_string_is_rejected(embedder: Embedder) -> None:
    with pytest.raises(TypeError):
        embedder.encode("not a list")


def test_cached_instance(embedder: Embedder) -> None:
    assert get_embedder() is embedder
    assert embedder.name == MODEL_NAME


def test_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Embedder(batch_size=0)


def test_content_text() -> None:
    text = content_text("Toy Story (1995)", "Animation film.", ["pixar", " ", "fun"])
    assert text == "Toy Story (1995)\nAnimation film.\nTags: pixar, fun"
    assert content_text("Heat", None, []) == "Heat"


def test_text_hash_known_value() -> None:
    assert text_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@given(st.text(), st.text())
def test_text_hash_stable_and_distinct(a: str, b: str) -> None:
    assert text_hash(a) == text_hash(a)
    assert len(text_hash(a)) == 64
    assert (text_hash(a) == text_hash(b)) == (a == b)


@given(st.text(max_size=50), st.none() | st.text(max_size=50), st.lists(st.text(max_size=10), max_size=5))
def test_content_text_deterministic(title: str, description: str | None, tags: list[str]) -> None:
    assert content_text(title, description, tags) == content_text(title, description, list(tags))
