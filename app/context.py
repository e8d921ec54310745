"""Per-process application state and the typed per-request GraphQL context."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from app.config import AuthMode, Settings
from app.db import SessionFactory
from app.errors import Forbidden, Unauthenticated
from app.services import auth
from app.services.auth import Role
from app.services.cache import Cache

if TYPE_CHECKING:
    from app.db_routing import ReadRouter, ReadSessions
    from app.loaders import Loaders
    from app.security.ratelimit import RateLimiter
    from app.services.engine import Engine

logger = logging.getLogger(__name__)


@dataclass
class AppState:
    """What lives for the whole process: settings, database, cache and the recommendation engine."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    cache: Cache
    recommender: Engine
    database_url: str = ""
    background: set[asyncio.Future[None]] = field(default_factory=set)
    limiter: RateLimiter | None = None
    reads: ReadRouter | None = None

    def read_sessions(self, user_id: str | None = None) -> ReadSessions:
        """Sessions for lag-tolerant reads (a replica when configured) on behalf of `user_id`."""
        return self.reads.sessions(user_id) if self.reads is not None else self.sessions


@dataclass
class Context:
    """One GraphQL request: state, caller, request id and its DataLoaders."""

    state: AppState
    loaders: Loaders
    request: Request | None = None
    response: Response | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    authorization: str | None = None
    _role_lookup: asyncio.Future[Role | None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        """The process settings."""
        return self.state.settings

    @property
    def cache(self) -> Cache:
        """The result cache."""
        return self.state.cache

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A short-lived session for one root resolver (never shared between siblings)."""
        async with self.state.sessions() as session:
            yield session

    @asynccontextmanager
    async def read_session(self, user_id: str | None = None) -> AsyncIterator[AsyncSession]:
        """A session for lag-tolerant reads (content, search): a healthy replica when configured."""
        async with self.state.read_sessions(user_id)() as session:
            yield session

    async def note_writes(self, user_ids: list[str]) -> None:
        """After a commit of these users' writes: their next reads must see them (read-your-writes)."""
        if self.state.reads is not None:
            await self.state.reads.note_writes(user_ids)

    async def role(self) -> Role | None:
        """The caller's role from the bearer key (looked up once per request)."""
        if self.settings.auth is AuthMode.DISABLED:
            return Role.ADMIN
        if self._role_lookup is None:  # sibling resolvers share one lookup
            self._role_lookup = asyncio.ensure_future(self._lookup_role())
        return await asyncio.shield(self._role_lookup)

    async def _lookup_role(self) -> Role | None:
        token = auth.bearer_token(self.authorization)
        if not token:
            return None
        async with self.session() as session:
            return await auth.role_for(session, secret=token)

    async def require(self, role: Role) -> None:
        """Raise UNAUTHENTICATED without a valid key, FORBIDDEN when the role is too low."""
        current = await self.role()
        if current is None:
            raise Unauthenticated("a valid API key is required: send 'Authorization: Bearer <key>'")
        if role is Role.ADMIN and current is not Role.ADMIN:
            raise Forbidden("this operation needs an admin key")
