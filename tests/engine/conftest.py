"""A MovieLens slice imported, embedded and trained once per test run, in its own database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from app.context import AppState
from app.main import build_state, close_state, create_app
from app.ml.datasets import MovieLens, Ratings, load_movielens
from app.ml.training import train
from app.services.importer import import_movielens
from tests.conftest import fresh_database, make_settings

ML_PATH = Path(
    os.environ.get(
        "RECENGINE_TEST_MOVIELENS", Path(__file__).resolve().parents[3] / "shared" / "data" / "ml-latest-small"
    )
)
MIN_RATINGS = 12
KEEP = {"1", "3114", "78499"}
Query = Callable[..., Awaitable[dict[str, Any]]]


def movielens_slice(path: Path) -> MovieLens:
    """Movies with at least MIN_RATINGS ratings (plus the Toy Story films) and all their ratings."""
    full = load_movielens(path)
    ids, counts = np.unique(full.ratings.item_ids.astype(str), return_counts=True)
    keep = set(ids[counts >= MIN_RATINGS].tolist()) | KEEP
    mask = np.array([i in keep for i in full.ratings.item_ids], dtype=bool)
    r = full.ratings
    ratings = Ratings(r.user_ids[mask], r.item_ids[mask], r.values[mask], r.timestamps[mask])
    return MovieLens(movies=[m for m in full.movies if m.movie_id in keep], ratings=ratings)


@pytest.fixture(scope="session")
async def ml_state(pg_uri: str) -> AsyncIterator[AppState]:
    """State over the trained MovieLens database (auth disabled: these tests are about the engine)."""
    if not (ML_PATH / "ratings.csv").exists():
        pytest.fail(f"MovieLens not found at {ML_PATH}: set RECENGINE_TEST_MOVIELENS to ml-latest-small")
    url = fresh_database(pg_uri, "recengine_ml")
    state = await build_state(make_settings(url, auth="disabled", embedding_batch_size=128))
    await import_movielens(state.sessions, movielens_slice(ML_PATH))
    report = await train(state.sessions, state.settings, seed=7)
    assert report.activated, report.reason
    yield state
    await close_state(state)


@pytest.fixture
async def ml(ml_state: AppState) -> AsyncIterator[Query]:
    """POST a GraphQL operation to the MovieLens service."""
    app = create_app(ml_state.settings, state=ml_state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:

        async def run(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
            response = await http.post("/graphql", json={"query": query, "variables": variables or {}})
            body: dict[str, Any] = response.json()
            return body

        yield run
