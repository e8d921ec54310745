"""Anonymous sessions: one identity rule, guest profiles, and merging a session into a user.

A visitor without a user id is identified by a client session id. Their events are stored
under a guest profile `~session:<sessionId>` — a `users` row like any other, so the
session's events fold into a session vector, are cached and invalidated exactly as a
user's are (Recombee does the same and merges users at sign-in). `~` cannot occur in a
real user id (see `USER_ID_PATTERN`), so a guest id never collides with a user's.
`mergeSession` moves the guest's events to the user and deletes the guest profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput
from app.repositories.sessions import SessionRepository
from app.services.cache import Cache
from app.services.users import invalidate_user

GUEST_PREFIX = "~session:"
USER_ID_PATTERN = r"^[a-zA-Z0-9_.@:-]+$"
SESSION_ID_PATTERN = r"^[a-zA-Z0-9_.@:-]{1,200}$"


def guest_id(session_id: str) -> str:
    """The profile id a session's events are stored under."""
    return GUEST_PREFIX + session_id


def is_guest(user_id: str) -> bool:
    """Whether a stored user id is a session's guest profile."""
    return user_id.startswith(GUEST_PREFIX)


def session_of(user_id: str) -> str | None:
    """The session id of a guest profile, None for a real user."""
    return user_id[len(GUEST_PREFIX) :] if is_guest(user_id) else None


def check_session_id(session_id: str, *, field: str = "sessionId") -> str:
    """A session id usable as an identity, else BAD_USER_INPUT naming `field`."""
    if not re.fullmatch(SESSION_ID_PATTERN, session_id):
        raise InvalidInput(f"{field}: must match {SESSION_ID_PATTERN} to identify an anonymous visitor", field=field)
    return session_id


def check_user_id(user_id: str, *, field: str = "userId") -> str:
    """A valid user id, else BAD_USER_INPUT naming `field`."""
    if not (1 <= len(user_id) <= 255 and re.fullmatch(USER_ID_PATTERN, user_id)):
        raise InvalidInput(f"{field}: must be 1-255 characters matching {USER_ID_PATTERN}", field=field)
    return user_id


@dataclass(frozen=True)
class Subject:
    """Who a request or event is for: a user, or an anonymous session."""

    user_id: str | None
    session_id: str | None

    @property
    def key(self) -> str:
        """The profile id the pipeline reads and caches under (the guest id for a session)."""
        return self.user_id if self.user_id is not None else guest_id(self.session_id or "")


def request_subject(user_id: str | None, session_id: str | None, *, prefix: str = "") -> Subject:
    """Exactly one of userId and sessionId, validated; else BAD_USER_INPUT."""
    if (user_id is None) == (session_id is None):
        field = f"{prefix}userId"
        raise InvalidInput(f"{field}: give exactly one of userId and sessionId", field=field)
    if user_id is not None:
        return Subject(check_user_id(user_id, field=f"{prefix}userId"), None)
    return Subject(None, check_session_id(str(session_id), field=f"{prefix}sessionId"))


def event_subject(user_id: str | None, session_id: str | None, *, prefix: str) -> str:
    """The stored user id of an event: the user's, else the session's guest id; neither is BAD_USER_INPUT."""
    if user_id is not None:
        return user_id
    if session_id is None:
        field = f"{prefix}.userId"
        raise InvalidInput(f"{field}: give userId, or sessionId for an anonymous visitor", field=field)
    return guest_id(check_session_id(session_id, field=f"{prefix}.sessionId"))


async def merge_session(session: AsyncSession, cache: Cache, *, session_id: str, user_id: str) -> int:
    """Attach the session's events to the user (idempotent); returns how many events moved."""
    guest = guest_id(check_session_id(session_id))
    check_user_id(user_id)
    moved = await SessionRepository(session).merge(guest, user_id)
    await session.commit()
    await invalidate_user(cache, guest)
    await invalidate_user(cache, user_id)
    return moved
