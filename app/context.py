"""Per-process application state and the typed per-request GraphQL context."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
    from app.loaders import Loaders
    from app.security.ratelimit import RateLimiter
    from app.services.engine import Recommender
    from app.services.experiments import ExperimentDirectory
    from app.services.impressions import ImpressionWriter

logger = logging.getLogger(__name__)


@dataclass
class AppState:
    """What lives for the whole process: settings, database, cache and the recommendation engine."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    cache: Cache
    recommender: Recommender
    impressions: ImpressionWriter  # records every served list, off the request path
    experiments: ExperimentDirectory  # the running A/B experiments, re-read every few seconds
    database_url: str = ""
    background: set[asyncio.Future[None]] = field(default_factory=set)
    limiter: RateLimiter | None = None


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
