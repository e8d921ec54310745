"""User profiles, privacy settings and erasure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound
from app.models import User
from app.models.user import DEFAULT_PRIVACY
from app.repositories import popularity
from app.repositories.users import UserRepository
from app.services.cache import Cache, hash_tag
from app.services.validation import UserWrite, validate


@dataclass(frozen=True)
class DeletionReceipt:
    """What `delete_user` removed."""

    user_id: str
    events: int
    event_keys: int
    factors: int
    impressions: int
    profiles: int
    cache_entries_invalidated: bool


async def get_user(session: AsyncSession, *, user_id: str) -> User:
    """The user, or NotFound."""
    user = await UserRepository(session).get_by_id(user_id)
    if user is None:
        raise NotFound(f"user {user_id!r} not found", field="id")
    return user


async def upsert_user(session: AsyncSession, *, data: dict[str, Any]) -> User:
    """Create or update a user; omitted fields keep their stored value."""
    write = validate(UserWrite, data)
    repo = UserRepository(session)
    if write.email is not None:
        other = await repo.get_by_email(write.email)
        if other is not None and other.user_id != write.id:
            raise Conflict(f"input.email: {write.email!r} belongs to another user", field="input.email")
    current = await repo.get_by_id(write.id)
    values = _user_values(write, current)
    if current is not None and "privacy_settings" in values:
        await _sharing_changed(session, write.id, current.data_sharing, values["privacy_settings"]["data_sharing"])
    user = await repo.upsert(write.id, values)
    await session.commit()
    return user


def _user_values(write: UserWrite, current: User | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        k: v
        for k, v in write.model_dump(include={"email", "demographics", "preferences", "segments", "status"}).items()
        if v is not None
    }
    privacy = dict(current.privacy_settings) if current else dict(DEFAULT_PRIVACY)
    if write.data_sharing is not None or write.personalization is not None or current is None:
        privacy.update(_privacy_changes(write.data_sharing, write.personalization))
        values["privacy_settings"] = privacy
    return values


def _privacy_changes(data_sharing: bool | None, personalization: bool | None) -> dict[str, bool]:
    changes: dict[str, bool] = {}
    if data_sharing is not None:
        changes["data_sharing"] = data_sharing
    if personalization is not None:
        changes["personalization"] = personalization
    return changes


async def update_privacy(
    session: AsyncSession, cache: Cache, *, user_id: str, data_sharing: bool | None, personalization: bool | None
) -> User:
    """Change privacy settings; omitted ones keep their value. Invalidates the user's cached results."""
    repo = UserRepository(session)
    user = await get_user(session, user_id=user_id)
    privacy = {**DEFAULT_PRIVACY, **user.privacy_settings, **_privacy_changes(data_sharing, personalization)}
    await _sharing_changed(session, user_id, user.data_sharing, privacy["data_sharing"])
    user = await repo.set_privacy(user_id, privacy)
    await session.commit()
    await invalidate_user(cache, user_id)
    return user


async def delete_user(session: AsyncSession, cache: Cache, *, user_id: str) -> DeletionReceipt:
    """Erase profile, events, impressions, factors in one transaction, then every cache entry of the user."""
    user = await get_user(session, user_id=user_id)
    await _sharing_changed(session, user_id, user.data_sharing, False)  # their events leave popularity
    counts = await UserRepository(session).delete_everything(user_id)
    await session.commit()
    # the generation only ever grows (never deleted or reset), so a request that read the old value
    # before the deletion caches under a key no later request computes
    invalidated = await invalidate_user(cache, user_id)
    await cache.delete_prefix(result_prefix(user_id))
    return DeletionReceipt(
        user_id=user_id,
        events=counts["events"],
        event_keys=counts["eventKeys"],
        factors=counts["factors"],
        impressions=counts["impressions"],
        profiles=counts["profiles"],
        cache_entries_invalidated=invalidated,
    )


async def _sharing_changed(session: AsyncSession, user_id: str, before: bool, after: bool) -> None:
    """Whether the user's engagement counts in popularity changes: adjust the stored counts with it."""
    if before != after:
        await popularity.count_user(session, user_id, sharing=after)


def generation_key(user_id: str) -> str:
    """The cache counter whose increment invalidates a user's cached results (same cluster slot as them)."""
    return f"gen:user:{hash_tag(user_id)}"


def result_prefix(user_id: str) -> str:
    """The prefix of every cached result of a user (hash-tagged like the user's generation)."""
    return f"rec:{hash_tag(user_id)}:"


async def invalidate_user(cache: Cache, user_id: str) -> bool:
    """Make every cached result of this user stale; False when the cache could not count (Redis down).

    The counter expires `cache.generation_ttl` after its last increment, longer than any result
    cached under it lives, so expiry never revives a stale result."""
    return await cache.incr(generation_key(user_id), ttl=cache.generation_ttl) > 0
