"""Importers: MovieLens (fast COPY path) and CSV/JSONL files of content or events."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.db import SessionFactory
from app.ml.datasets import MovieLens, movie_content
from app.repositories import bulk
from app.repositories.content import ContentRepository
from app.repositories.users import UserRepository
from app.services import content as content_service
from app.services import events as event_service
from app.services.content import EmbedFn
from app.services.validation import MAX_EVENT_FUTURE_SECONDS

ML_NAMESPACE = uuid.UUID("6f1c1f5e-8d1a-4b8e-9a51-8a3c1b6f0e42")
BATCH = 1000
Progress = Callable[[int], None]


@dataclass
class ImportReport:
    """What an import stored and skipped."""

    content: int = 0
    users: int = 0
    events: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def movielens_event_id(user_id: str, movie_id: str, timestamp: int) -> uuid.UUID:
    """A stable id per rating, so importing twice adds nothing."""
    return uuid.uuid5(ML_NAMESPACE, f"ml:{user_id}:{movie_id}:{timestamp}")


async def import_movielens(
    sessions: SessionFactory, data: MovieLens, *, progress: Progress | None = None
) -> ImportReport:
    """Load movies as content, users, and ratings as `rate` events (idempotent)."""
    report = ImportReport()
    rows = [_content_row(movie_content(m)) for m in data.movies]
    async with sessions() as session:
        for start in range(0, len(rows), BATCH):
            await ContentRepository(session).upsert_many(rows[start : start + BATCH])
        users = sorted(set(data.ratings.user_ids.tolist()))
        report.users = await UserRepository(session).ensure_exist(users)
        await session.commit()
    report.content = len(rows)
    for start in range(0, len(data.ratings), BATCH * 20):
        records = list(_rating_records(data, start, start + BATCH * 20))
        async with sessions() as session:
            report.events += len(await bulk.copy_events(session, records, profiles=True))  # with last_active
            await session.commit()
        if progress:
            progress(len(records))
    return report


def _content_row(data: dict[str, Any]) -> dict[str, Any]:
    row = {**data, "content_id": data["id"], "published_at": None}
    del row["id"]
    return row


def _rating_records(data: MovieLens, start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    r = data.ratings
    for user, item, value, ts in zip(
        r.user_ids[start:stop], r.item_ids[start:stop], r.values[start:stop], r.timestamps[start:stop], strict=True
    ):
        at = datetime.fromtimestamp(int(ts), UTC)
        event_id = movielens_event_id(user, item, int(ts))
        yield (event_id, user, item, "rate", float(np.float32(value)), at, None, None, None, "{}")


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record) from a CSV (header row) or JSONL file; a bad line yields its error text."""
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, _json_line(line)
        return
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, _csv_row(row)


def _json_line(line: str) -> dict[str, Any] | str:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg}"
    return value if isinstance(value, dict) else "each line must be a JSON object"


def _csv_row(row: dict[str, str | None]) -> dict[str, Any] | str:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:
            return "more fields than the header"
        if value in (None, ""):
            continue
        out[key] = _csv_value(key, value)
    return out


def _csv_value(key: str, value: str) -> Any:
    if key in {"tags", "segments"}:
        return [t.strip() for t in value.split("|") if t.strip()]
    if key in {"metadata", "demographics", "preferences"}:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if key == "value":
        try:
            return float(value)
        except ValueError:
            return value
    return value


CONTENT_KEYS = {
    "contentType": "content_type",
    "type": "content_type",
    "content_id": "id",
    "availableFrom": "available_from",
    "expiresAt": "expires_at",
}
EVENT_KEYS = {
    "eventId": "event_id",
    "userId": "user_id",
    "contentId": "content_id",
    "eventType": "event_type",
    "sessionId": "session_id",
    "deviceType": "device_type",
    "recommendationId": "recommendation_id",
}


def _rename(record: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names.get(k, k): v for k, v in record.items()}


async def import_content_file(
    sessions: SessionFactory, path: Path, *, embed: EmbedFn | None, progress: Progress | None = None
) -> ImportReport:
    """Store valid content rows; invalid ones are reported by line number and skipped."""
    report = ImportReport()
    for batch in _batches(read_records(path)):
        valid = [(n, r) for n, r in batch if isinstance(r, dict)]
        report.skipped += [(n, r) for n, r in batch if isinstance(r, str)]
        records = [_rename(r, CONTENT_KEYS) for _, r in valid]
        for record in records:
            record["content_type"] = str(record.get("content_type", "")).lower()
            record["status"] = str(record.get("status", "published")).lower()
        async with sessions() as session:
            outcome = await content_service.upsert_contents(session, inputs=records, embed=embed, max_batch=BATCH)
        report.content += outcome.accepted
        report.skipped += [(valid[i][0], _strip_prefix(m)) for i, m in outcome.errors]
        if progress:
            progress(len(batch))
    report.skipped.sort()
    return report


async def import_events_file(
    sessions: SessionFactory,
    path: Path,
    *,
    progress: Progress | None = None,
    max_future_seconds: int = MAX_EVENT_FUTURE_SECONDS,
) -> ImportReport:
    """Store valid event rows; invalid ones (a timestamp in the future included) are reported by line and skipped."""
    report = ImportReport()
    for batch in _batches(read_records(path)):
        valid = [(n, r) for n, r in batch if isinstance(r, dict)]
        report.skipped += [(n, r) for n, r in batch if isinstance(r, str)]
        async with sessions() as session:
            logged = await event_service.log_events(
                session,
                inputs=[_rename(r, EVENT_KEYS) for _, r in valid],
                max_batch=BATCH,
                max_future_seconds=max_future_seconds,
            )
        report.events += logged.outcome.accepted
        report.skipped += [(valid[i][0], _strip_prefix(m)) for i, m in logged.outcome.errors]
        if progress:
            progress(len(batch))
    report.skipped.sort()
    return report


def _strip_prefix(message: str) -> str:
    head, sep, rest = message.partition(".")
    return rest if sep and head.startswith("inputs[") else message


def _batches(records: Iterator[tuple[int, dict[str, Any] | str]]) -> Iterator[list[tuple[int, dict[str, Any] | str]]]:
    batch: list[tuple[int, dict[str, Any] | str]] = []
    for record in records:
        batch.append(record)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
