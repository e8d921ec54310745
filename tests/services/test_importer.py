"""The MovieLens importer: profiles, events and last_active, idempotently."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from sqlalchemy import text

from app.context import AppState
from app.ml.datasets import Movie, MovieLens, Ratings
from app.services.importer import import_movielens


def sample() -> MovieLens:
    movies = [Movie(str(i), f"Movie {i} (1999)", ("Drama",), 1999, None, None, ()) for i in (1, 2, 3)]
    ratings = Ratings(
        user_ids=np.array(["7", "7", "8"]),
        item_ids=np.array(["1", "2", "3"]),
        values=np.array([4.0, 3.5, 5.0]),
        timestamps=np.array([1_000_000, 1_000_500, 2_000_000]),
    )
    return MovieLens(movies=movies, ratings=ratings)


async def test_import_sets_profiles_and_last_active_once(state: AppState) -> None:
    first = await import_movielens(state.sessions, sample())
    again = await import_movielens(state.sessions, sample())
    assert (first.users, first.events) == (2, 3)
    assert (again.users, again.events) == (0, 0)
    async with state.sessions() as session:
        rows = (await session.execute(text("SELECT user_id, last_active FROM users ORDER BY user_id"))).all()
    assert [tuple(r) for r in rows] == [
        ("7", datetime.fromtimestamp(1_000_500, UTC)),
        ("8", datetime.fromtimestamp(2_000_000, UTC)),
    ]
