"""Candidate retrieval in SQL: each source is one indexed query with its filters inside."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Float,
    Select,
    Text,
    and_,
    cast,
    func,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.ml.hybrid import Candidate
from app.models import Content, Event, EventType, ItemFactor, ItemLink
from app.repositories.filters import ContentRules, eligible


@dataclass(frozen=True)
class Filters:
    """What every source must respect: published and available now, a content type, the request's content
    rules, exclusions, and (re-ranking) the only ids allowed. `where` is the one place they become SQL."""

    content_type: str | None = None
    exclude: tuple[str, ...] = ()
    rules: ContentRules | None = None
    only: tuple[str, ...] | None = None

    def where(self, table: Any = Content) -> list[ColumnElement[bool]]:
        """WHERE clauses on `table` (Content or an alias of it)."""
        return eligible(self.rules, table=table, content_type=self.content_type, exclude=self.exclude, only=self.only)

    def excluding(self, more: Iterable[str]) -> Filters:
        """The same filters with more ids excluded."""
        return replace(self, exclude=tuple(sorted(set(self.exclude) | set(more))))

    @property
    def shared(self) -> bool:
        """Whether results may come from a list shared by requests (no per-request id restriction)."""
        return self.only is None


def _eligible(f: Filters) -> list[ColumnElement[bool]]:
    return f.where(Content)


def _anchor_rows(anchors: Sequence[str]) -> Any:
    """unnest(:anchors) WITH ORDINALITY AS a(anchor, pos)."""
    return (
        func.unnest(cast(list(anchors), ARRAY(Text)))
        .table_valued("anchor", with_ordinality="pos")
        .render_derived(name="a")
    )


def embedding_neighbors_stmt(anchors: Sequence[str], f: Filters, k: int) -> Select[Any]:
    """Each anchor's k nearest eligible items by content embedding (a LATERAL HNSW query per anchor)."""
    a = _anchor_rows(anchors)
    src, c = aliased(Content, name="src"), aliased(Content, name="c")
    distance = c.embedding.cosine_distance(src.embedding)
    n = (
        select(c.content_id.label("content_id"), (1 - distance).label("score"))
        .where(c.embedding.is_not(None), *f.where(c))
        .order_by(distance)
        .limit(k)
        .lateral("n")
    )
    joined = a.join(src, and_(src.content_id == a.c.anchor, src.embedding.is_not(None))).join(n, true())
    return select(a.c.anchor, n.c.content_id, n.c.score).select_from(joined).order_by(a.c.pos, n.c.score.desc())


def factor_neighbors_stmt(anchors: Sequence[str], f: Filters, k: int, *, version: int, dim: int) -> Select[Any]:
    """Each anchor's k nearest eligible items by ALS factors (inner product, the per-version HNSW index)."""
    a = _anchor_rows(anchors)
    src, other, c = aliased(ItemFactor, name="src"), aliased(ItemFactor, name="f"), aliased(Content, name="c")
    v: ColumnElement[Any] = literal_column(str(int(version)))  # inlined so the per-version partial index applies
    distance = cast(other.factors, Vector(dim)).max_inner_product(cast(src.factors, Vector(dim)))
    n = (
        select(other.content_id.label("content_id"), (-distance).label("score"))
        .join(c, c.content_id == other.content_id)
        .where(other.model_version_id == v, *f.where(c))
        .order_by(distance)
        .limit(k)
        .lateral("n")
    )
    joined = a.join(src, and_(src.model_version_id == v, src.content_id == a.c.anchor)).join(n, true())
    return select(a.c.anchor, n.c.content_id, n.c.score).select_from(joined).order_by(a.c.pos, n.c.score.desc())


def co_occurrence_stmt(items: dict[str, float], f: Filters, k: int, *, version: int) -> Select[Any]:
    """Eligible items linked to the user's items: sum of item weight x link weight, anchored on the top one."""
    h = (
        func.unnest(cast(list(items), ARRAY(Text)), cast(list(items.values()), ARRAY(Float)))
        .table_valued("content_id", "w")
        .render_derived(name="h")
    )
    c = aliased(Content, name="c")
    contribution = ItemLink.weight * h.c.w
    score = func.sum(contribution).label("score")
    anchor = func.array_agg(aggregate_order_by(h.c.content_id, contribution.desc()))[1].label("anchor")
    version_matches = ItemLink.model_version_id == literal_column(str(int(version)))
    joined = h.join(ItemLink, and_(version_matches, ItemLink.content_id == h.c.content_id)).join(
        c, c.content_id == ItemLink.neighbor_id
    )
    return (
        select(ItemLink.neighbor_id, score, anchor)
        .select_from(joined)
        .where(*f.where(c))
        .group_by(ItemLink.neighbor_id)
        .order_by(score.desc(), ItemLink.neighbor_id)
        .limit(k)
    )


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
        return await self._neighbors(embedding_neighbors_stmt(anchors, f, k))

    async def factor_neighbors(
        self, anchors: Sequence[str], *, version: int, dim: int, f: Filters, k: int
    ) -> list[Candidate]:
        """Nearest items of each anchor by ALS item factors, tagged with the anchor (one query)."""
        if not anchors:
            return []
        return await self._neighbors(factor_neighbors_stmt(anchors, f, k, version=version, dim=dim))

    async def co_occurrence(self, items: dict[str, float], *, version: int, f: Filters, k: int) -> list[Candidate]:
        """Items linked to the user's items: sum of item weight x link weight, anchored on the top contributor."""
        if not items:
            return []
        rows = await self.session.execute(co_occurrence_stmt(items, f, k, version=version))
        return [Candidate(item_id=r[0], score=float(r[1]), anchor_id=r[2]) for r in rows]

    async def _neighbors(self, stmt: Select[Any]) -> list[Candidate]:
        rows = await self.session.execute(stmt)
        return [Candidate(item_id=r[1], score=float(r[2]), anchor_id=r[0]) for r in rows]

    async def next_window_change(self) -> datetime | None:
        """The next moment an item enters or leaves its availability window (results cached until then)."""
        now = func.now()
        starts = select(func.min(Content.available_from)).where(Content.available_from > now).scalar_subquery()
        ends = select(func.min(Content.expires_at)).where(Content.expires_at > now).scalar_subquery()
        found: datetime | None = await self.session.scalar(select(func.least(starts, ends)))
        return found

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
