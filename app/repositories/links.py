"""The `item_links` neighbour tables: bulk writes at training, fresh neighbours at upsert, reads for evaluation."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.ml.links import LinkRow
from app.ml.sources import Source
from app.models import Content, ItemLink
from app.repositories import bulk

logger = logging.getLogger(__name__)

# The new items' nearest embeddings (HNSW), written both ways under the active version: a new item
# links to its neighbours, and each neighbour links back to it, so it is reachable at once.
FRESH_NEIGHBORS = """
WITH near AS (
    SELECT src.content_id AS item, n.content_id AS neighbor, n.score
    FROM content src
    CROSS JOIN LATERAL (
        SELECT c.content_id, 1 - (c.embedding <=> src.embedding) AS score
        FROM content c
        WHERE c.embedding IS NOT NULL AND c.content_id <> src.content_id
        ORDER BY c.embedding <=> src.embedding
        LIMIT :k
    ) n
    WHERE src.content_id = ANY(CAST(:items AS text[])) AND src.embedding IS NOT NULL
),
pairs AS (
    SELECT item, neighbor, score FROM near WHERE score > 0
    UNION ALL
    SELECT neighbor, item, score FROM near WHERE score > 0
)
INSERT INTO item_links (model_version_id, content_id, source, neighbor_id, weight)
SELECT DISTINCT ON (item, neighbor) :version, item, :source, neighbor, score FROM pairs
ORDER BY item, neighbor, score DESC
ON CONFLICT (model_version_id, content_id, source, neighbor_id) DO UPDATE SET weight = EXCLUDED.weight
"""
STALE_NEIGHBORS = """
DELETE FROM item_links
WHERE model_version_id = :version AND source = :source AND content_id = ANY(CAST(:items AS text[]))
"""


async def vacuum_links(engine: AsyncEngine) -> None:
    """VACUUM (ANALYZE) `item_links` after a version's links were written: it sets the new pages' visibility map
    now rather than at autovacuum's next round, so the serving join reads the primary key alone (index-only
    scan, `weight` included) instead of fetching each link's row; and the planner sees the new row counts.
    An optimisation: a failure is logged and the training goes on (autovacuum sets the map later)."""
    try:
        async with engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("SET statement_timeout = 0"))  # a batch job, not a request
            try:
                await auto.execute(text("VACUUM (ANALYZE) item_links"))
            finally:
                await auto.execute(text("RESET statement_timeout"))
    except SQLAlchemyError as exc:
        logger.warning("VACUUM item_links failed (autovacuum will catch up): %s", exc)


class LinkRepository:
    """Reads and writes of the per-version neighbour tables."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def write(self, version_id: int, rows: Sequence[LinkRow]) -> None:
        """Store a version's links (COPY)."""
        await bulk.copy_links(self.session, version_id, rows)

    async def link_fresh(self, version_id: int, content_ids: Sequence[str], *, k: int) -> None:
        """Give (re-)embedded items their k nearest items as embedding neighbours, both ways."""
        params = {"items": list(content_ids), "version": version_id, "source": Source.ITEM_NEIGHBORS.value}
        await self.session.execute(text(STALE_NEIGHBORS), params)
        await self.session.execute(text(FRESH_NEIGHBORS), params | {"k": k})

    async def list_for_source(self, version_id: int, source: Source) -> list[tuple[str, str, float]]:
        """(item, neighbour, weight) rows of one source under a version."""
        stmt = select(ItemLink.content_id, ItemLink.neighbor_id, ItemLink.weight).where(
            ItemLink.model_version_id == version_id, ItemLink.source == source.value
        )
        return [(r[0], r[1], float(r[2])) for r in await self.session.execute(stmt)]

    async def embedded_count(self) -> int:
        """How many items have a stored embedding."""
        return int(await self.session.scalar(select(func.count()).where(Content.embedding.is_not(None))) or 0)

    async def embeddings(self) -> tuple[list[str], np.ndarray]:
        """Every stored content embedding (ids sorted), for the embedding neighbour table."""
        stmt = (
            select(Content.content_id, Content.embedding)
            .where(Content.embedding.is_not(None))
            .order_by(Content.content_id)
        )
        rows = (await self.session.execute(stmt)).all()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [r[0] for r in rows], np.vstack([np.asarray(r[1], dtype=np.float32) for r in rows])
