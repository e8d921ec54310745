"""SQL that moves a guest profile's events to a user."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories.users import UserRepository


class SessionRepository:
    """Merges guest profiles (anonymous sessions) into users."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def merge(self, guest_id: str, user_id: str) -> int:
        """Move the guest's events and event keys to the user, drop the guest profile; returns events moved."""
        await UserRepository(self.session).ensure_exist([user_id])
        params = {"g": guest_id, "u": user_id}
        result = await self.session.execute(text("UPDATE events SET user_id = :u WHERE user_id = :g"), params)
        moved = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if moved:
            await self.session.execute(text("UPDATE event_keys SET user_id = :u WHERE user_id = :g"), params)
            # the user's stored vector predates the moved events: the next request folds it in again
            await self.session.execute(text("DELETE FROM user_factors WHERE user_id = :u"), params)
            await self.session.execute(
                text(
                    "UPDATE users SET last_active = greatest(coalesce(last_active, '-infinity'), "
                    '(SELECT max("timestamp") FROM events WHERE user_id = :u)) WHERE user_id = :u'
                ),
                params,
            )
        await self.session.execute(text("DELETE FROM users WHERE user_id = :g"), params)
        return moved
