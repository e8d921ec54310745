"""SQL for users."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, Text, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import EventKey, User, UserFactor
from app.repositories.arrays import among

# Whether the user of alias `u` shares data (the default): their events count for popularity and training.
SHARES_DATA = "coalesce((u.privacy_settings->>'data_sharing')::boolean, true)"

# Minimal profiles for an array of ids, the model's defaults filled in: one statement whatever the number of
# ids (a multi-row VALUES was compiled again for every batch size; 10% of a 1,000-event batch's CPU).
_IDS = func.unnest(bindparam("ids", type_=ARRAY(Text))).column_valued("user_id")
ENSURE_EXIST = insert(cast(Table, User.__table__)).from_select(["user_id"], select(_IDS)).on_conflict_do_nothing()


class UserRepository:
    """Reads and writes `users`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_id(self, user_id: str) -> User | None:
        """The user, or None."""
        return await self.session.get(User, user_id)

    async def list_by_ids(self, user_ids: Sequence[str]) -> list[User]:
        """The users among `user_ids` that exist."""
        rows = await self.session.scalars(select(User).where(among(User.user_id, user_ids)))
        return list(rows)

    async def list_ids(self) -> list[str]:
        """Every user id, in order, without anonymous sessions' guest profiles (ids starting with `~`)."""
        stmt = select(User.user_id).where(User.user_id.not_like("~%")).order_by(User.user_id)
        return list(await self.session.scalars(stmt))

    async def get_by_email(self, email: str) -> User | None:
        """The user with this email, or None."""
        return await self.session.scalar(select(User).where(User.email == email))

    async def upsert(self, user_id: str, values: dict[str, Any]) -> User:
        """Insert the user or update only the given columns."""
        stmt = insert(User).values(user_id=user_id, **values)
        stmt = stmt.on_conflict_do_update(index_elements=[User.user_id], set_=values or {"user_id": user_id})
        await self.session.execute(stmt)
        user = await self.session.get(User, user_id, populate_existing=True)
        assert user is not None
        return user

    async def ensure_exist(self, user_ids: Sequence[str]) -> int:
        """Create minimal profiles for unknown ids; returns how many were created."""
        if not user_ids:
            return 0
        result = await self.session.execute(ENSURE_EXIST, {"ids": list(user_ids)})
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def touch(self, latest: dict[str, datetime]) -> None:
        """Move each user's last_active forward to the given time, in one statement."""
        await self.session.execute(
            text(
                "UPDATE users u SET last_active = v.at "
                "FROM unnest(CAST(:ids AS text[]), CAST(:ats AS timestamptz[])) AS v(id, at) "
                "WHERE u.user_id = v.id AND (u.last_active IS NULL OR u.last_active < v.at)"
            ),
            {"ids": list(latest), "ats": list(latest.values())},
        )

    async def set_privacy(self, user_id: str, settings: dict[str, bool]) -> User:
        """Replace the privacy settings."""
        await self.session.execute(update(User).where(User.user_id == user_id).values(privacy_settings=settings))
        user = await self.session.get(User, user_id, populate_existing=True)
        assert user is not None
        return user

    async def delete_everything(self, user_id: str) -> dict[str, int]:
        """Delete the user's events, impressions, keys, factors and profile; returns counts per table."""
        counts: dict[str, int] = {}
        result = await self.session.execute(text("DELETE FROM events WHERE user_id = :u"), {"u": user_id})
        counts["events"] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        result = await self.session.execute(text("DELETE FROM impressions WHERE user_id = :u"), {"u": user_id})
        counts["impressions"] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        for name, model in (("eventKeys", EventKey), ("factors", UserFactor)):
            result = await self.session.execute(delete(model).where(model.user_id == user_id))
            counts[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        result = await self.session.execute(delete(User).where(User.user_id == user_id))
        counts["profiles"] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        return counts
