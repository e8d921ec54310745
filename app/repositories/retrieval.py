"""Candidate retrieval in SQL: each source is one indexed query with its filters inside."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from pgvector.sqlalchemy import Vector
from sqlalchemy import ColumnElement, cast, func, literal, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.ml.hybrid import Candidate
from app.models import Content, Event, EventType, ItemFactor

NEIGHBOR_FILTER = """c.status = 'published'
          AND (CAST(:ctype AS text) IS NULL OR c.content_type = CAST(:ctype AS text))
          AND c.content_id <> ALL(CAST(:excl AS text[]))"""

EMBEDDING_NEIGHBORS = f"""
SELECT a.anchor, n.content_id, n.score
FROM unnest(CAST(:anchors AS text[])) WITH ORDINALITY AS a(anchor, pos)
JOIN content src ON src.content_id = a.anchor AND src.embedding IS NOT NULL
CROSS JOIN LATERAL (
    SELECT c.content_id, 1 - (c.embedding <=> src.embedding) AS score
    FROM content c
    WHERE c.embedding IS NOT NULL AND {NEIGHBOR_FILTER}
    ORDER BY c.embedding <=> src.embedding
    LIMIT :k
) n
ORDER BY a.pos, n.score DESC"""

# {version} and {dim} are integers from our own registry, inlined so the per-version partial index applies.
FACTOR_NEIGHBORS = f"""
SELECT a.anchor, n.content_id, n.score
FROM unnest(CAST(:anchors AS text[])) WITH ORDINALITY AS a(anchor, pos)
JOIN item_factors src ON src.model_version_id = {{version}} AND src.content_id = a.anchor
CROSS JOIN LATERAL (
    SELECT f.content_id, -((f.factors::vector({{dim}})) <#> (src.factors::vector({{dim}}))) AS score
    FROM item_factors f JOIN content c ON c.content_id = f.content_id
    WHERE f.model_version_id = {{version}} AND {NEIGHBOR_FILTER}
    ORDER BY (f.factors::vector({{dim}})) <#> (src.factors::vector({{dim}}))
    LIMIT :k
) n
ORDER BY a.pos, n.score DESC"""


CO_OCCURRENCE = f"""
SELECT l.neighbor_id, sum(l.weight * h.w) AS score,
       (array_agg(h.content_id ORDER BY l.weight * h.w DESC))[1] AS anchor
FROM unnest(CAST(:items AS text[]), CAST(:weights AS float8[])) AS h(content_id, w)
JOIN item_links l ON l.model_version_id = {{version}} AND l.content_id = h.content_id
JOIN content c ON c.content_id = l.neighbor_id
WHERE {NEIGHBOR_FILTER}
GROUP BY l.neighbor_id
ORDER BY score DESC, l.neighbor_id
LIMIT :k"""


@dataclass(frozen=True)
class Filters:
    """What every source must respect: published only, a content type, exclusions."""

    content_type: str | None = None
    exclude: tuple[str, ...] = ()


def _eligible(f: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Content.status == "published"]
    if f.content_type:
        conditions.append(Content.content_type == f.content_type)
    if f.exclude:
        conditions.append(Content.content_id.not_in(f.exclude))
    return conditions


def factor_expr(dim: int) -> ColumnElement[object]:
    """The typed factor expression the per-version HNSW index is built on."""
    return cast(ItemFactor.factors, Vector(dim))


class RetrievalRepository:
    """Candidate queries for the recommendation pipeline."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _candidates(self, stmt: Any) -> list[Candidate]:
        rows = await self.session.execute(stmt)
        return [Candidate(item_id=str(r[0]), score=float(r[1])) for r in rows]

    async def collaborative(self, user_vector: np.ndarray, *, version: int, f: Filters, k: int) -> list[Candidate]:
        """Items by inner product with the user's ALS vector (HNSW on the active version)."""
        expr = factor_expr(user_vector.size)
        distance = expr.max_inner_product(user_vector)
        stmt = (
            select(ItemFactor.content_id, (-distance).label("score"))
            .join(Content, Content.content_id == ItemFactor.content_id)
            .where(ItemFactor.model_version_id == literal_column(str(int(version))), *_eligible(f))
            .order_by(distance)
            .limit(k)
        )
        return await self._candidates(stmt)

    async def by_embedding(self, vector: np.ndarray, *, f: Filters, k: int) -> list[Candidate]:
        """Items by cosine similarity of their content embedding to `vector` (HNSW)."""
        distance = Content.embedding.cosine_distance(vector)
        stmt = (
            select(Content.content_id, (1 - distance).label("score"))
            .where(Content.embedding.is_not(None), *_eligible(f))
            .order_by(distance)
            .limit(k)
        )
        return await self._candidates(stmt)

    async def embedding_neighbors(self, anchors: Sequence[str], *, f: Filters, k: int) -> list[Candidate]:
        """Nearest items of each anchor by content embedding, tagged with the anchor (one query)."""
        if not anchors:
            return []
        return await self._neighbors(EMBEDDING_NEIGHBORS, anchors, f, k)

    async def factor_neighbors(
        self, anchors: Sequence[str], *, version: int, dim: int, f: Filters, k: int
    ) -> list[Candidate]:
        """Nearest items of each anchor by ALS item factors, tagged with the anchor (one query)."""
        if not anchors:
            return []
        sql = FACTOR_NEIGHBORS.format(version=int(version), dim=int(dim))
        return await self._neighbors(sql, anchors, f, k)

    async def co_occurrence(self, items: dict[str, float], *, version: int, f: Filters, k: int) -> list[Candidate]:
        """Items linked to the user's items: sum of item weight x link weight, anchored on the top contributor."""
        if not items:
            return []
        params = {
            "items": list(items),
            "weights": list(items.values()),
            "ctype": f.content_type,
            "excl": list(f.exclude),
            "k": k,
        }
        rows = await self.session.execute(text(CO_OCCURRENCE.format(version=int(version))), params)
        return [Candidate(item_id=r[0], score=float(r[1]), anchor_id=r[2]) for r in rows]

    async def _neighbors(self, sql: str, anchors: Sequence[str], f: Filters, k: int) -> list[Candidate]:
        params = {"anchors": list(anchors), "ctype": f.content_type, "excl": list(f.exclude), "k": k}
        rows = await self.session.execute(text(sql), params)
        return [Candidate(item_id=r[1], score=float(r[2]), anchor_id=r[0]) for r in rows]

    async def embeddings(self, content_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored embeddings of these items."""
        stmt = select(Content.content_id, Content.embedding).where(
            Content.content_id.in_(content_ids), Content.embedding.is_not(None)
        )
        return {r[0]: np.asarray(r[1], dtype=np.float32) for r in await self.session.execute(stmt)}

    async def popular(self, *, f: Filters, k: int, since: datetime | None = None) -> list[Candidate]:
        """Items by weighted event count (positive event types), optionally within a window."""
        weight = func.sum(func.greatest(EventType.weight, literal(0.0)))
        stmt = (
            select(Event.content_id, weight.label("score"))
            .join(EventType, EventType.name == Event.event_type)
            .join(Content, Content.content_id == Event.content_id)
            .where(EventType.weight > 0, *_eligible(f))
            .group_by(Event.content_id)
            .order_by(weight.desc(), Event.content_id)
            .limit(k)
        )
        if since is not None:
            stmt = stmt.where(Event.timestamp >= since)
        return await self._candidates(stmt)

    async def trending(self, *, f: Filters, k: int, window_hours: int, now: datetime) -> list[Candidate]:
        """Items by weighted event count within the last `window_hours`."""
        return await self.popular(f=f, k=k, since=now - timedelta(hours=window_hours))

    async def newest(self, *, f: Filters, k: int) -> list[Candidate]:
        """Most recently published items (the last-resort fill when there are no events)."""
        age = func.extract("epoch", func.coalesce(Content.published_at, Content.created_at))
        stmt = select(Content.content_id, age.label("score")).where(*_eligible(f)).order_by(age.desc()).limit(k)
        return await self._candidates(stmt)

    async def consumed(self, user_id: str) -> list[str]:
        """Items the user has any event with."""
        stmt = select(Event.content_id).where(Event.user_id == user_id).distinct()
        return list(await self.session.scalars(stmt))

    async def history(self, user_id: str, *, limit: int) -> list[tuple[str, str, float | None, datetime]]:
        """The user's latest (content_id, event_type, value, timestamp), newest first."""
        stmt = (
            select(Event.content_id, Event.event_type, Event.value, Event.timestamp)
            .where(Event.user_id == user_id)
            .order_by(Event.timestamp.desc())
            .limit(limit)
        )
        return [(r[0], r[1], r[2], r[3]) for r in await self.session.execute(stmt)]

    async def titles(self, content_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(title, content type) of these items, for explanations."""
        stmt = select(Content.content_id, Content.title, Content.content_type).where(
            Content.content_id.in_(content_ids)
        )
        return {r[0]: (r[1], r[2]) for r in await self.session.execute(stmt)}
