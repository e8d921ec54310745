"""The Starlette application: /graphql, /health, /ready, /metrics, /explorer."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app import migrate
from app.config import AuthMode, Settings, get_settings
from app.context import AppState, Context
from app.db import create_engine, resolve_database_url, session_factory
from app.db_routing import ReadRouter
from app.explorer.routes import explorer_routes
from app.loaders import create_loaders
from app.logging import request_id_var
from app.metrics import READY, exposition, process_exited
from app.schema.schema import build_schema
from app.security import authn
from app.security.http import BodySizeLimit, HttpCompliantGraphQL
from app.security.limits import graphiql_enabled
from app.security.middleware import frontend_middleware
from app.security.ratelimit import RateLimiter
from app.services import auth
from app.services.cache import create_cache
from app.services.engine import Recommender
from app.services.experiments import ExperimentDirectory
from app.services.impressions import ImpressionWriter
from app.watcher import ChangeWatcher

logger = logging.getLogger(__name__)


class GraphQLApp(HttpCompliantGraphQL):
    """Strawberry's ASGI app with our typed context (and the HTTP rules of app.security.http)."""

    async def authenticate(self, request: Request) -> Response | None:
        """Credentials are checked before parsing (app.security.authn)."""
        return await authn.authenticate(request)

    async def get_context(self, request: Any, response: Any) -> Context:
        state: AppState = request.app.state.recengine
        return Context(
            state=state,
            loaders=create_loaders(state.sessions, reads=state.read_sessions()),
            request=request,
            response=response,
            request_id=request_id_var.get() or uuid.uuid4().hex,
            authorization=request.headers.get("authorization"),
        )


class RequestIdMiddleware:
    """Gives each request an id (or keeps the caller's X-Request-ID) for logs and responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if given and len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
        token = request_id_var.set(request_id)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


async def build_state(settings: Settings) -> AppState:
    """Connect to the database (starting the embedded one if needed) and the cache."""
    url = resolve_database_url(settings)
    if settings.database_url is None:  # the embedded database migrates itself; production runs `migrate`
        await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url, settings)
    sessions = session_factory(engine)
    cache = create_cache(
        settings.redis_url, settings.cache_max_entries, settings.cache_ttl_seconds, cluster=settings.redis_cluster
    )
    reads = ReadRouter.create(settings, sessions, engine, cache)
    reads.start()
    recommender = Recommender(settings, sessions, cache, reads)
    limiter = RateLimiter(settings) if settings.rate_limit_enabled else None
    impressions = ImpressionWriter(
        sessions,
        batch_size=settings.impression_batch_size,
        flush_seconds=settings.impression_flush_seconds,
        queue_size=settings.impression_queue_size,
    )
    impressions.start()
    return AppState(
        settings,
        engine,
        sessions,
        cache,
        recommender,
        impressions=impressions,
        experiments=ExperimentDirectory(sessions),
        database_url=url,
        limiter=limiter,
        reads=reads,
    )


async def close_state(state: AppState) -> None:
    """Release connections and threads."""
    for task in list(state.background):
        task.cancel()
    await state.impressions.close()  # served lists still queued are written before the pool closes
    state.recommender.close()
    if state.reads is not None:
        await state.reads.close()
    await state.cache.close()
    if state.limiter is not None:
        await state.limiter.close()
    await state.engine.dispose()


async def prepare(state: AppState) -> None:
    """Start-up chores when the schema is at head: upcoming partitions, the bootstrap admin key."""
    ready, checks = await readiness(state)
    if not ready:
        failed = checks["migrations"] if checks["database"]["ok"] else checks["database"]
        what = "database schema is behind" if checks["database"]["ok"] else "database is unreachable"
        logger.warning("%s (%s); /ready answers 503 until it is fixed", what, failed.get("reason"))
        return
    await migrate.create_partitions(state.engine, state.settings.partition_months_ahead)
    await migrate.drop_old_impressions(state.engine, state.settings.impression_retention_months)
    if state.settings.admin_api_key is not None:
        async with state.sessions() as session:
            await auth.ensure_key(
                session, name="bootstrap-admin", secret=state.settings.admin_api_key.get_secret_value()
            )
    if state.settings.auth is AuthMode.DISABLED:
        logger.warning("authentication is DISABLED (RECENGINE_AUTH=disabled): for local work only")
    state.warming = asyncio.ensure_future(_warm_up(state))
    for task in (state.warming, asyncio.ensure_future(watcher(state).run())):
        state.background.add(task)
        task.add_done_callback(state.background.discard)


def watcher(state: AppState) -> ChangeWatcher:
    """The process's change watcher: activations reload the model, key changes drop memoised roles."""
    return ChangeWatcher(
        state.engine,
        state.settings.model_poll_seconds,
        on_model=state.recommender.forget_model,
        on_keys=auth.forget_roles,
    )


async def _warm_up(state: AppState) -> None:
    """Fill the shared lists and load the embedding model now rather than in the first requests."""
    try:
        await state.recommender.warm()
    except Exception:  # the requests that need them compute them (and report their own errors)
        logger.exception("popularity warm-up failed")
    try:
        await state.recommender.embed(["warm up"])
    except Exception:  # a broken model shows up in the requests that need it, with its own error
        logger.exception("embedding model warm-up failed")
    if state.settings.gc_freeze:
        freeze_start_up_objects()


def freeze_start_up_objects() -> None:
    """Collect once, then exclude what survives (the schema, the model, the embedding model, the loaded
    modules: millions of objects) from every later collection. A full collection scans all tracked objects;
    with them frozen it scans only what requests left behind (py-spy and gc.callbacks: 70-260 ms pauses
    during a bench's event ingest before, see SCALING.md)."""
    gc.collect()
    gc.freeze()


async def readiness(state: AppState) -> tuple[bool, dict[str, Any]]:
    """Whether the database is reachable and migrated to head, with each check's detail."""
    checks: dict[str, Any] = {}
    try:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:  # any driver or network failure means not ready
        logger.warning("readiness: database unreachable: %s", type(exc).__name__)  # no host/user in responses
        checks["database"] = {"ok": False, "reason": "database unreachable"}
        return False, checks
    current = await migrate.current_revision(state.engine)
    head = migrate.head_revision(state.database_url)
    ok = current == head
    checks["migrations"] = {"ok": ok, "current": current, "head": head}
    if not ok:
        checks["migrations"]["reason"] = f"schema at {current or 'nothing'}, head is {head}: run `recengine migrate`"
    if state.warming is not None:  # traffic waits until the model and the shared lists are loaded
        warm = state.warming.done()
        checks["warmUp"] = {"ok": warm} | ({} if warm else {"reason": "loading the model and the popular lists"})
        ok = ok and warm
    return ok, checks


async def health(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    """Readiness: database reachable and schema at head."""
    ok, checks = await readiness(request.app.state.recengine)
    READY.set(1 if ok else 0)
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)


async def metrics(request: Request) -> Response:
    """Prometheus exposition (every worker's, summed, under `recengine serve --workers N`)."""
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings | None = None, state: AppState | None = None) -> Starlette:
    """The application; builds its own state at start-up unless one is given (tests)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = state is None
        app.state.recengine = state or await build_state(settings)
        started = time.perf_counter()
        await prepare(app.state.recengine)
        logger.info("recengine ready in %.2fs", time.perf_counter() - started)
        try:
            yield
        finally:
            if own:
                await close_state(app.state.recengine)
                process_exited()

    graphql = GraphQLApp(build_schema(settings), graphql_ide="graphiql" if graphiql_enabled(settings) else None)
    graphql.time_budget_seconds = settings.request_timeout_seconds
    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics),
        *explorer_routes(settings),
    ]
    middleware = [
        *frontend_middleware(settings),
        Middleware(RequestIdMiddleware),
        Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    if state is not None:
        app.state.recengine = state
    return app
