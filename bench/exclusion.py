"""Excluding a long history from the candidate statement: anti-join vs shipped ids vs over-fetch.

Runs the service's candidate statement (`RetrievalRepository.candidates`) for the users with the
longest histories in the configured database (`RECENGINE_DATABASE_URL`, or the embedded one), once
per way of excluding what they consumed, and prints the median milliseconds of each:

- anti-join: `NOT EXISTS (SELECT 1 FROM events ...)` inside every branch (what serving does past
  `history_events` events);
- shipped: every consumed id sent as one array parameter (what serving does below it);
- over-fetch: no exclusion in SQL, k + |consumed| candidates fetched and filtered in Python.

    .venv/bin/python bench/exclusion.py --users 5 --repeat 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from sqlalchemy import text

from app.config import get_settings
from app.main import build_state, close_state
from app.ml.serving import RECENCY
from app.ml.sources import Source
from app.repositories.retrieval import CandidateQuery, Filters, RetrievalRepository
from app.services import candidates
from app.services.recommendations import RecRequest, build_job
from app.services.request import RecJob


async def main(users: int, repeat: int) -> None:
    """Time the three variants for the longest histories."""
    state = await build_state(get_settings())
    try:
        model = await state.recommender.active_model()
        async with state.sessions() as session:
            rows = await session.execute(
                text("SELECT user_id, count(DISTINCT content_id) FROM events GROUP BY 1 ORDER BY 2 DESC LIMIT :n"),
                {"n": users},
            )
            heavy = [(r[0], int(r[1])) for r in rows]
        timings: dict[str, list[float]] = {"anti-join": [], "shipped": [], "over-fetch": []}
        for user, n_consumed in heavy:
            async with state.sessions() as session:
                job = await build_job(state.recommender, session, RecRequest(user_id=user), model)
                job.weights = {k: v for k, v in job.weights.items() if k not in (Source.POPULAR, RECENCY)}
                consumed = tuple(
                    sorted(
                        r[0]
                        for r in await session.execute(
                            text("SELECT DISTINCT content_id FROM events WHERE user_id = :u"), {"u": user}
                        )
                    )
                )
                variants = {
                    "anti-join": (Filters(exclude_user=user), job.depth),
                    "shipped": (Filters(exclude=consumed), job.depth),
                    "over-fetch": (Filters(), job.depth + n_consumed),
                }
                for name, (filters, depth) in variants.items():
                    job.filters = filters
                    query = await plan(job, depth)
                    for _ in range(repeat):
                        started = time.perf_counter()
                        rows_ = await RetrievalRepository(session).candidates(query, filters)
                        if name == "over-fetch":  # the filtering in Python is part of its cost
                            {s: [c for c in cs if c.item_id not in consumed] for s, cs in rows_.sources.items()}
                        timings[name].append((time.perf_counter() - started) * 1000)
        for name, values in timings.items():
            p90 = sorted(values)[int(len(values) * 0.9)]
            print(f"{name:10s} median {statistics.median(values):7.2f} ms  p90 {p90:7.2f} ms")
        print(f"users: {heavy}")
    finally:
        await close_state(state)


async def plan(job: RecJob, depth: int) -> CandidateQuery:
    """The candidate query of a job, with `depth` candidates per branch."""
    assert job.model is not None
    query = CandidateQuery(job.model.version_id, job.model.dim, depth)
    memo: candidates.Memo = {}
    for source in Source:
        if job.wants(source) and candidates.available(job, source):
            await candidates.SERVING[source](job, query, memo)
    return query


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5, help="How many of the longest histories.")
    parser.add_argument("--repeat", type=int, default=20, help="Runs per variant and user.")
    args = parser.parse_args()
    asyncio.run(main(args.users, args.repeat))
