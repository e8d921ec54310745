"""Migrations down and up, readiness on an unmigrated schema, Redis outage under the API."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from sqlalchemy import text

from app import migrate
from app.config import Settings
from app.context import AppState
from app.main import build_state, close_state, create_app, readiness
from tests.conftest import fresh_database, make_settings
from tests.services.test_cache import private_redis  # noqa: F401  (fixture)

TABLES = {
    "users",
    "content",
    "events",
    "event_keys",
    "event_types",
    "user_factors",
    "item_factors",
    "model_versions",
    "api_keys",
    "events_default",
}


async def table_names(state: AppState) -> set[str]:
    async with state.engine.connect() as conn:
        rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        return {r[0] for r in rows}


async def test_downgrade_to_base_and_back(pg_uri: str) -> None:
    url = fresh_database(pg_uri, "recengine_migrations")
    state = await build_state(make_settings(url))
    try:
        assert await table_names(state) >= TABLES
        migrate.downgrade(url, "base")
        assert await table_names(state) == {"alembic_version"}
        ok = await readiness(state)
        assert ok[0] is False and "run `recengine migrate`" in ok[1]["migrations"]["reason"]
        migrate.upgrade(url)
        assert await table_names(state) >= TABLES
        assert await migrate.current_revision(state.engine) == migrate.head_revision(url)
    finally:
        await close_state(state)


async def test_ready_reports_schema_behind_head(pg_uri: str) -> None:
    url = fresh_database(pg_uri, "recengine_unmigrated")
    migrate.downgrade(url, "base")
    state = await build_state(make_settings(url))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(state.settings, state=state)), base_url="http://t"
        ) as http:
            response = await http.get("/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["checks"]["database"] == {"ok": True}
        assert body["checks"]["migrations"]["ok"] is False
        assert "run `recengine migrate`" in body["checks"]["migrations"]["reason"]
    finally:
        await close_state(state)


async def test_redis_stopped_mid_test_requests_still_succeed(
    state: AppState,
    database_url: str,
    private_redis: tuple[int, subprocess.Popen[bytes]],  # noqa: F811
) -> None:
    port, proc = private_redis
    redis_state = await build_state(
        make_settings(database_url, redis_url=f"redis://127.0.0.1:{port}/0", auth="disabled")
    )
    query = {"query": '{ recommendations(userId: "someone", count: 3) { cached items { contentId } } }'}
    async with state.sessions() as session:
        await session.execute(text("INSERT INTO content (content_id, title, content_type) VALUES ('r1', 'R', 'post')"))
        await session.commit()
    try:
        app = create_app(redis_state.settings, state=redis_state)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            first = (await http.post("/graphql", json=query)).json()["data"]["recommendations"]
            second = (await http.post("/graphql", json=query)).json()["data"]["recommendations"]
            proc.kill()
            proc.wait()
            during = (await http.post("/graphql", json=query)).json()
        assert first["cached"] is False and second["cached"] is True
        assert during["data"]["recommendations"] == {"cached": False, "items": [{"contentId": "r1"}]}
    finally:
        await close_state(redis_state)


async def test_admin_key_from_settings_is_registered_at_start(state: AppState, database_url: str) -> None:
    from app.main import prepare
    from app.services import auth

    secret = "rk_bootstrap_secret_for_tests_0123456789"
    own = await build_state(make_settings(database_url, admin_api_key=secret))
    try:
        await prepare(own)
        await prepare(own)  # idempotent: a second pod start registers nothing new
        async with own.sessions() as session:
            assert await auth.role_for(session, secret=secret) == auth.Role.ADMIN
            rows = (await session.execute(text("SELECT name, key_hash FROM api_keys"))).all()
        assert rows == [("bootstrap-admin", auth.hash_key(secret))]
    finally:
        await close_state(own)


async def test_ready_waits_for_the_warm_up(state: AppState) -> None:
    """Traffic is not routed to a process still loading its model and popular lists: /ready answers 503 with the
    warmUp check until the start-up warm-up has finished (failed or not)."""
    import asyncio

    pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    state.warming = pending
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(state.settings, state=state)), base_url="http://t"
        ) as http:
            waiting = await http.get("/ready")
            pending.set_result(None)
            warmed = await http.get("/ready")
    finally:
        state.warming = None
    assert waiting.status_code == 503 and waiting.json()["checks"]["warmUp"]["ok"] is False
    assert "loading" in waiting.json()["checks"]["warmUp"]["reason"]
    assert warmed.status_code == 200 and warmed.json()["checks"]["warmUp"] == {"ok": True}


@pytest.mark.parametrize("freeze", [True, False])
async def test_warm_up_freezes_the_start_up_objects(state: AppState, freeze: bool) -> None:
    """With `gc_freeze` (the default) the warm-up leaves what start-up built out of later collections."""
    import gc

    from app.main import _warm_up

    gc.unfreeze()
    original = state.settings
    state.settings = original.model_copy(update={"gc_freeze": freeze})
    try:
        await _warm_up(state)
        frozen = gc.get_freeze_count()
    finally:
        state.settings = original
        gc.unfreeze()
    assert (frozen > 100_000) is freeze, frozen
    assert Settings.model_fields["gc_freeze"].default is True
