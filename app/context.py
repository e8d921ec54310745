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
from app.services import auth, tokens
from app.services.auth import Caller, Role
from app.services.cache import Cache

if TYPE_CHECKING:
    from app.db_routing import ReadRouter, ReadSessions
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
    warming: asyncio.Future[None] | None = None  # the start-up warm-up; /ready waits for it
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
    _caller_lookup: asyncio.Future[Caller | None] | None = None
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

    async def caller(self) -> Caller | None:
        """The verified caller (looked up once per request; the HTTP layer may have done it already)."""
        if self.settings.auth is AuthMode.DISABLED:
            return Caller(Role.ADMIN)
        if self._caller_lookup is None:  # sibling resolvers share one lookup
            known = getattr(self.request.state, "caller", None) if self.request is not None else None
            lookup = resolve_caller(self.state, self.authorization) if known is None else _known(known)
            self._caller_lookup = asyncio.ensure_future(lookup)
        return await asyncio.shield(self._caller_lookup)

    async def role(self) -> Role | None:
        """The caller's role, or None without a valid credential."""
        caller = await self.caller()
        return caller.role if caller is not None else None

    async def published_only(self) -> bool:
        """Whether the caller may see published content only (user tokens)."""
        caller = await self.caller()
        return caller is not None and caller.role is Role.USER

    async def require(self, role: Role) -> Caller:
        """Raise UNAUTHENTICATED without a valid credential, FORBIDDEN when the role is too low."""
        current = await self.caller()
        if current is None:
            raise Unauthenticated("a valid API key or user token is required: send 'Authorization: Bearer <key>'")
        if role is Role.ADMIN and current.role is not Role.ADMIN:
            raise Forbidden("this operation needs an admin key")
        if role is Role.CLIENT and current.role is Role.USER:
            raise Forbidden("this operation needs an API key; user tokens may not use it")
        return current


async def _known(caller: Caller) -> Caller:
    return caller


async def resolve_caller(state: AppState, authorization: str | None) -> Caller | None:
    """The caller of a bearer credential: a user token (verified by signature) or an API key (looked up).

    None without a credential or with an unknown key; an expired or tampered user token raises UNAUTHENTICATED.
    """
    token = auth.bearer_token(authorization)
    if not token:
        return None
    if tokens.looks_like_token(token):
        principal = tokens.verify(state.settings, token)
        return Caller(Role.USER, principal.subject)
    known, role = auth.remembered_role(token)  # most requests: no session to open and close
    if not known:
        async with state.sessions() as session:
            role = await auth.role_for(session, secret=token)
    return Caller(role) if role is not None else None
