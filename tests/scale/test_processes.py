"""Many API processes on one database and one Redis: activations and key revocations reach every process
(LISTEN/NOTIFY, polling as the fallback) and cached results are invalidated for all of them."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from app.context import AppState
from app.notifications import Topic, notify
from app.watcher import ChangeWatcher
from tests.conftest import new_key
from tests.hardening.servers import ROOT, RedisServer, serve_process, server_env

POLL_SECONDS = 5.0
SEED = """INSERT INTO content (content_id, title, content_type, published_at)
  VALUES ('c1', 'Space rocket', 'video', now()), ('c2', 'Moon landing', 'video', now());
  INSERT INTO users (user_id) VALUES ('u1')"""  # rows without embeddings: no model load in the servers
RECS = '{ recommendations(userId: "u1", count: 2) { modelVersion cached } }'


def post(url: str, key: str, query: str) -> dict[str, Any]:
    """POST one operation to a running server."""
    response = httpx.post(
        f"{url}/graphql", json={"query": query}, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    body: dict[str, Any] = response.json()
    return body


def eventually(check: Any, seconds: float) -> Any:
    """Poll `check()` until truthy; returns its value (None when it never was)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return None


async def _versions(state: AppState) -> tuple[int, int]:
    async with state.engine.begin() as conn:
        for statement in SEED.split(";"):
            await conn.execute(text(statement))
        ids = [
            (
                await conn.execute(
                    text(
                        "INSERT INTO model_versions (kind, params, training_stats, metrics, status) "
                        "VALUES ('als', '{}', '{}', '{}', :s) RETURNING id"
                    ),
                    {"s": s},
                )
            ).scalar_one()
            for s in ("active", "candidate")
        ]
        for version in ids:  # two-factor item vectors, enough for every model source
            await conn.execute(
                text(
                    "INSERT INTO item_factors (model_version_id, content_id, factors) "
                    "VALUES (:v, 'c1', '[1,0]'), (:v, 'c2', '[0,1]')"
                ),
                {"v": version},
            )
    return ids[0], ids[1]


async def test_two_serve_processes_share_activation_revocation_and_invalidation(
    state: AppState, redis_server: RedisServer, tmp_path: Path
) -> None:
    admin = "rk_" + secrets.token_urlsafe(24)
    env = server_env(
        state.settings.database_url or "",
        RECENGINE_REDIS_URL=redis_server.url,
        RECENGINE_ADMIN_API_KEY=admin,
        RECENGINE_MODEL_POLL_SECONDS=str(POLL_SECONDS),
    )
    first, second = await _versions(state)
    reader = await new_key(state, "client", "reader")
    with serve_process(env, tmp_path / "a.log") as (a, _), serve_process(env, tmp_path / "b.log") as (b, _):
        assert post(b, reader, RECS)["data"]["recommendations"]["modelVersion"] == first
        assert post(b, reader, RECS)["data"]["recommendations"]["cached"] is True
        # a user's event on A invalidates the result cached by B (the generation lives in the shared Redis)
        post(
            a, reader, 'mutation { logEvent(input: {userId: "u1", contentId: "c1", eventType: "like"}) { duplicate } }'
        )
        fresh = post(b, reader, RECS)
        assert fresh["data"]["recommendations"]["cached"] is False, fresh
        # activation on A: B serves the new version within the poll window (at once through NOTIFY)
        assert "errors" not in post(a, admin, f"mutation {{ activateModel(id: {second}) {{ id }} }}")
        seen = eventually(
            lambda: post(b, reader, RECS)["data"]["recommendations"]["modelVersion"] == second, POLL_SECONDS * 2
        )
        assert seen
        # a key revoked from a third process (the CLI) fails on both servers
        assert "errors" not in post(a, reader, "{ eventTypes { eventType } }")
        assert "errors" not in post(b, reader, "{ eventTypes { eventType } }")
        revoke = [sys.executable, "-m", "app", "keys", "revoke", "reader"]
        subprocess.run(revoke, env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)
        codes = eventually(
            lambda: (
                [
                    (post(url, reader, "{ eventTypes { eventType } }").get("errors") or [{}])[0]
                    .get("extensions", {})
                    .get("code")
                    for url in (a, b)
                ]
                == ["UNAUTHENTICATED", "UNAUTHENTICATED"]
            ),
            POLL_SECONDS * 2,
        )
        assert codes


async def test_watcher_reacts_to_notifications_and_polls(state: AppState) -> None:
    seen: list[str] = []
    model_seen, keys_seen = asyncio.Event(), asyncio.Event()

    def on_model() -> None:
        seen.append("model")
        model_seen.set()

    def on_keys() -> None:
        seen.append("keys")
        keys_seen.set()

    watcher = ChangeWatcher(state.engine, poll_seconds=3600, on_model=on_model, on_keys=on_keys)
    task = asyncio.ensure_future(watcher.run())
    try:
        await asyncio.wait_for(asyncio.gather(model_seen.wait(), keys_seen.wait()), 30)  # (re)connect: forget all
        model_seen.clear()
        keys_seen.clear()
        async with state.sessions() as session:
            await notify(session, Topic.KEYS)
            await session.commit()
        await asyncio.wait_for(keys_seen.wait(), 30)  # delivered although the poll is an hour away
        assert not model_seen.is_set()
        async with state.sessions() as session:
            await notify(session, Topic.MODEL)
            await session.rollback()  # never committed: never delivered
            await notify(session, Topic.MODEL)
            await session.commit()
        await asyncio.wait_for(model_seen.wait(), 30)
    finally:
        task.cancel()
    assert seen.count("model") == 2 and seen.count("keys") == 2
