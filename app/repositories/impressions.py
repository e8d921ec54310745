"""SQL for reading served lists back (paging chains)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# a page and the pages before it, oldest first (the depth bound stops a malformed cycle)
CHAIN = """
WITH RECURSIVE chain AS (
    SELECT request_id, parent_request_id, user_id, session_id, item_ids, 0 AS depth
    FROM impressions WHERE request_id = :r
    UNION ALL
    SELECT i.request_id, i.parent_request_id, i.user_id, i.session_id, i.item_ids, c.depth + 1
    FROM impressions i JOIN chain c ON i.request_id = c.parent_request_id
    WHERE c.depth < 200
)
SELECT request_id, parent_request_id, user_id, session_id, item_ids FROM chain ORDER BY depth DESC
"""


class ImpressionRepository:
    """Reads `impressions`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def chain(self, request_id: str) -> list[tuple[str, str | None, str | None, str | None, list[str]]]:
        """(request id, parent, user, session, item ids) of a page and its ancestors, oldest first."""
        rows = await self.session.execute(text(CHAIN), {"r": request_id})
        return [(r[0], r[1], r[2], r[3], list(r[4])) for r in rows]
