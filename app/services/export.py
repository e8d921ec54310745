"""Batch export: every user's recommendations as JSON lines, served by the API's own `serve`.

Resumable: users already in the output file are skipped, and a last line cut short by a crash
is dropped before appending.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import AppError
from app.repositories.users import UserRepository
from app.services import serving
from app.services.request import Strategy
from app.services.sessions import Subject, check_user_id

CONCURRENCY = 8


@dataclass
class ExportReport:
    """What an export run did."""

    exported: int = 0
    skipped: int = 0
    seconds: float = 0.0
    invalid: list[tuple[int, str]] = field(default_factory=list)

    @property
    def users_per_second(self) -> float:
        """Throughput of this run."""
        return self.exported / self.seconds if self.seconds > 0 else 0.0


def read_user_file(path: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """User ids, one a line (blank lines and # comments skipped), and (line, problem) of invalid ones."""
    users: list[str] = []
    invalid: list[tuple[int, str]] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            users.append(check_user_id(line))
        except AppError as exc:
            invalid.append((number, exc.message))
    return list(dict.fromkeys(users)), invalid


async def all_user_ids(serve: serving.Serving) -> list[str]:
    """Every user (not anonymous sessions), by id."""
    async with serve.recommender.sessions() as session:
        return await UserRepository(session).list_ids()


def exported_users(path: Path) -> set[str]:
    """Users already in the output file; a trailing partial line (a crash mid-write) is cut off."""
    if not path.exists():
        return set()
    done: set[str] = set()
    keep = 0
    with path.open("rb") as handle:
        for line in handle:
            try:
                done.add(str(json.loads(line)["userId"]))
            except (ValueError, KeyError, TypeError):
                break
            keep += len(line)
    if keep < path.stat().st_size:
        with path.open("r+b") as handle:
            handle.truncate(keep)
    return done


def export_line(served: serving.Served) -> str:
    """One user's JSON line."""
    result = served.result
    items = [
        {"contentId": i.content_id, "score": i.score, "rank": i.rank, "explanation": i.explanation}
        for i in result.items
    ]
    record: dict[str, Any] = {
        "userId": served.subject.user_id,
        "requestId": result.request_id,
        "modelVersion": result.model_version,
        "items": items,
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


async def export_recommendations(
    serve: serving.Serving,
    *,
    output: Path,
    users: Iterable[str],
    count: int = 20,
    strategy: Strategy = Strategy.HYBRID,
    placement: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """Append one line per user not yet in `output`, CONCURRENCY users at a time; lines come out as users finish."""
    done = exported_users(output)
    todo = [u for u in users if u not in done]
    report = ExportReport(skipped=len(done))
    started = time.perf_counter()
    pending = iter(todo)  # shared by the workers: each user is taken once
    with output.open("a", encoding="utf-8") as handle:

        async def worker() -> None:
            for user_id in pending:
                request = serving.ServeRequest(Subject(user_id, None), count, None, strategy, placement=placement)
                handle.write(export_line(await serving.serve(serve, request)))
                report.exported += 1
                if progress:
                    progress(1)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    report.seconds = time.perf_counter() - started
    return report
