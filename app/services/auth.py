"""API keys: creation, hashing, constant-time lookup, roles."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cachetools import TTLCache
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, InvalidInput, NotFound
from app.models import ApiKey
from app.notifications import Topic, notify
from app.repositories.api_keys import ApiKeyRepository

KEY_PREFIX = "rk_"
ROLE_MEMO_SECONDS = 5
_roles: TTLCache[str, Role | None] = TTLCache(maxsize=10_000, ttl=ROLE_MEMO_SECONDS)
_UNKNOWN: Any = object()


class Role(str, Enum):
    """Who is calling: admin keys do everything, client keys act for any user, user tokens for one user."""

    USER = "user"
    CLIENT = "client"
    ADMIN = "admin"


KEY_ROLES = (Role.CLIENT, Role.ADMIN)  # the roles an API key can have; user tokens are signed, not stored


@dataclass(frozen=True)
class Caller:
    """A verified caller: its role and, for a user token, the user (or session) id it is bound to."""

    role: Role
    subject: str | None = None


@dataclass(frozen=True)
class NewKey:
    """A freshly created key; `secret` is shown once and never stored."""

    name: str
    role: Role
    secret: str


def hash_key(secret: str) -> str:
    """SHA-256 of a key (keys are 256-bit random, so a fast hash is enough)."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_key(session: AsyncSession, *, name: str, role: str) -> NewKey:
    """Create and store a key; returns its secret once."""
    if role not in {r.value for r in KEY_ROLES}:
        raise InvalidInput(f"role must be one of client, admin; got {role!r}", field="role")
    if not 1 <= len(name) <= 100:
        raise InvalidInput("name must be 1-100 characters", field="name")
    repo = ApiKeyRepository(session)
    if await repo.get_by_name(name) is not None:
        raise Conflict(f"a key named {name!r} exists already", field="name")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    await repo.add(name=name, key_hash=hash_key(secret), prefix=secret[:8], role=role)
    await notify(session, Topic.KEYS)
    await session.commit()
    _roles.pop(hash_key(secret), None)
    return NewKey(name=name, role=Role(role), secret=secret)


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    """Every key (hashes only)."""
    return await ApiKeyRepository(session).list_all()


async def revoke_key(session: AsyncSession, *, name: str) -> None:
    """Revoke the named key, or NotFound."""
    if not await ApiKeyRepository(session).revoke(name):
        raise NotFound(f"no active key named {name!r}", field="name")
    await notify(session, Topic.KEYS)  # other processes forget their memoised roles when this commits
    await session.commit()
    forget_roles()


def forget_roles() -> None:
    """Drop the memoised roles of this process (a key was created or revoked somewhere)."""
    _roles.clear()


def remembered_role(secret: str) -> tuple[bool, Role | None]:
    """(True, the role or None) when this process remembers the key's answer, else (False, None): a caller
    that holds no session yet can skip opening one (`app.context.resolve_caller`)."""
    return _remembered(hash_key(secret))


def _remembered(digest: str) -> tuple[bool, Role | None]:
    found = _roles.get(digest, _UNKNOWN)
    return (False, None) if found is _UNKNOWN else (True, found)


async def role_for(session: AsyncSession, *, secret: str) -> Role | None:
    """The role of an active key, or None; the stored hash is compared in constant time.

    Answers are remembered for ROLE_MEMO_SECONDS per process; a revocation reaches every process at
    once through the change notification (app.watcher), at the latest after ROLE_MEMO_SECONDS.
    """
    digest = hash_key(secret)
    known, role = _remembered(digest)
    if known:
        return role
    key = await ApiKeyRepository(session).get_by_hash(digest)
    role = Role(key.role) if key is not None and hmac.compare_digest(key.key_hash, digest) else None
    _roles[digest] = role
    return role


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def ensure_key(session: AsyncSession, *, name: str, secret: str, role: str = "admin") -> None:
    """Make `secret` the key named `name` (a deployment secret): registered when new, and when the secret
    changed the old one is replaced, so rotating `RECENGINE_ADMIN_API_KEY` retires the previous key."""
    digest = hash_key(secret)
    repo = ApiKeyRepository(session)
    current = await repo.get_by_name(name)
    if current is not None and current.key_hash == digest and current.revoked_at is None:
        return
    try:
        if current is None:
            await repo.add(name=name, key_hash=digest, prefix=secret[:8], role=role)
        elif await repo.get_by_hash(digest) is not None:  # the new secret is registered under another name
            await repo.revoke(name)
        else:
            await repo.replace_secret(name, key_hash=digest, prefix=secret[:8], role=role)
        await session.commit()
    except IntegrityError:  # another replica registered it at the same moment
        await session.rollback()
    _roles.clear()
