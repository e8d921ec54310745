"""SQL for users."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import EventKey, User, UserFactor
from app.repositories.arrays import among

# Whether the user of alias `u` shares data (the default): their events count for popularity and training.
SHARES_DATA = "coalesce((u.privacy_settings->>'data_sharing')::boolean, true)"

# Minimal profiles (the columns' defaults) for an array of ids, whatever their number, in one statement.
ENSURE_EXIST = text("INSERT INTO users (user_id) SELECT unnest(CAST(:ids AS text[])) ON CONFLICT DO NOTHING")


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
