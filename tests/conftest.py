"""Shared fixtures: one embedded PostgreSQL per test run, migrated by Alembic; per-test isolation."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from app import embedded, migrate
from app.config import Settings
from app.context import AppState
from app.main import build_state, close_state, create_app
from app.services import auth
from tests.redis_support import RedisService, session_redis

TABLES = (
    "impressions, experiments, placements, api_keys, item_links, item_factors, user_factors, model_versions, "
    "event_keys, events, content, users, popularity_snapshot"
)
SEED_TYPES = """INSERT INTO event_types (name, weight, conversion) VALUES ('view', 1, false), ('click', 2, false),
    ('like', 4, false), ('share', 4, false), ('bookmark', 3, false), ('add_to_cart', 6, false),
    ('purchase', 10, true), ('rate', 1, false), ('dislike', -4, false)"""
DROP_VERSION_INDEXES = """DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix\\_item\\_factors\\_v%' LOOP
        EXECUTE format('DROP INDEX %I', r.indexname);
    END LOOP; END $$"""
EMPTY_SNAPSHOT = "UPDATE popularity_snapshot_state SET snap = '1:1:'"  # the migration's initial state
GQL = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture(scope="session")
def pg_uri() -> Iterator[str]:
    """The PostgreSQL server of this run: `RECENGINE_TEST_DATABASE_URL` when set, else an embedded one."""
    configured = os.environ.get("RECENGINE_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    base = Path(tempfile.mkdtemp(prefix="recengine-test-"))
    os.chmod(base, 0o755)
    yield embedded.ensure_server(base)


def _admin_connection(uri: str) -> Any:
    """A psycopg2 connection to the `postgres` database of the server behind `uri`."""
    import psycopg2

    if uri.startswith("postgresql+"):  # a configured server (SQLAlchemy URL)
        url = make_url(uri)
        return psycopg2.connect(
            dbname="postgres",
            user=url.username,
            password=url.password,
            host=url.host or url.query.get("host"),
            port=url.port or 5432,
        )
    return psycopg2.connect(dbname="postgres", user="postgres", host=embedded.socket_dir(uri))


def _database_url(uri: str, name: str) -> str:
    if uri.startswith("postgresql+"):
        return make_url(uri).set(database=name).render_as_string(hide_password=False)
    return embedded.async_url(uri, name)


def fresh_database(uri: str, name: str) -> str:
    """Drop and recreate `name` on the run's server, migrate it to head, return its async URL."""
    conn = _admin_connection(uri)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    url = _database_url(uri, name)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisService]:
    """The session's Redis: `RECENGINE_TEST_REDIS_URL` if set, else a private `redis-server` on a free port.

    Suites that need another kind of server (a cluster, say) follow the same shape: a session fixture
    that honours a `RECENGINE_TEST_*` URL and otherwise starts and stops its own processes.
    """
    with session_redis() as service:
        yield service


@pytest.fixture
def redis_url(redis_server: RedisService) -> str:
    """The session Redis URL, its test database emptied first."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def database_url(pg_uri: str) -> str:
    """The per-run test database, migrated with `alembic upgrade head`."""
    return fresh_database(pg_uri, "recengine_test")


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Test settings: the test database, auth on, in-process cache."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": None,
        "auth": "enabled",
        "data_dir": Path(tempfile.gettempdir()) / "recengine-test-data",
        "gc_freeze": False,  # a test process builds many states: what it froze would never be collected
    }
    return Settings(**(values | overrides))


@pytest.fixture(scope="session")
async def state(database_url: str) -> AsyncIterator[AppState]:
    """Application state shared by the tests of this run."""
    app_state = await build_state(make_settings(database_url))
    yield app_state
    await close_state(app_state)


@pytest.fixture(autouse=True)
async def clean(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test that uses the database starts from empty tables."""
    yield
    if "state" in request.fixturenames:
        app_state: AppState = request.getfixturevalue("state")
        async with app_state.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {TABLES}, event_types RESTART IDENTITY CASCADE"))
            await conn.execute(text(DROP_VERSION_INDEXES))  # ids restart at 1: no stale per-version index may stay
            await conn.execute(text(SEED_TYPES))
            await conn.execute(text(EMPTY_SNAPSHOT))
        app_state.recommender.forget_model()


@pytest.fixture
async def client(state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the ASGI app in process."""
    app = create_app(state.settings, state=state)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def new_key(state: AppState, role: str, name: str) -> str:
    """Create a key directly through the service."""
    async with state.sessions() as session:
        return (await auth.create_key(session, name=name, role=role)).secret


@pytest.fixture
async def admin_key(state: AppState) -> str:
    """An admin key."""
    return await new_key(state, "admin", "test-admin")


@pytest.fixture
async def client_key(state: AppState) -> str:
    """A client key."""
    return await new_key(state, "client", "test-client")


@pytest.fixture
def gql(client: httpx.AsyncClient, admin_key: str) -> GQL:
    """POST a GraphQL operation (admin key unless `key=` says otherwise) and return the JSON body."""

    async def run(query: str, variables: dict[str, Any] | None = None, *, key: str | None = "admin") -> dict[str, Any]:
        headers = {}
        token = admin_key if key == "admin" else key
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        body: dict[str, Any] = response.json()
        return body

    return run


def error_codes(body: dict[str, Any]) -> list[str]:
    """The `extensions.code` of each error in a response."""
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


@contextmanager
def recorded_sql(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements `engine` sends inside the block, in order; background writers share the engine, so
    the bare `SELECT 1` that opens their COPY transaction (`app.repositories.bulk`) is left out."""
    statements: list[str] = []

    def listener(*args: Any) -> None:
        if args[2] != "SELECT 1":
            statements.append(args[2])

    sa_event.listen(engine.sync_engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", listener)
