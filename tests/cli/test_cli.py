"""The `recengine` command line, run as a user would (subprocesses against the test database)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from app.context import AppState

COMMANDS = [
    [],
    ["serve"],
    ["migrate"],
    ["keys"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "revoke"],
    ["export-schema"],
    ["import"],
    ["import", "content"],
    ["import", "events"],
    ["import", "movielens"],
    ["train"],
    ["evaluate"],
    ["demo"],
    ["experiment"],
    ["experiment", "report"],
    ["export"],
    ["export", "recommendations"],
]


def recengine(args: list[str], database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with the test database."""
    environment = {**os.environ, "RECENGINE_DATABASE_URL": database_url, "COLUMNS": "200", **env}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, env=environment, timeout=120, check=False
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command: list[str], database_url: str) -> None:
    result = recengine([*command, "--help"], database_url)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout and len(result.stdout.splitlines()) > 3


async def test_keys_lifecycle(state: AppState, database_url: str) -> None:
    created = recengine(["keys", "create", "--role", "admin", "--name", "ops"], database_url)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("rk_")
    listed = recengine(["keys", "list"], database_url)
    assert "ops" in listed.stdout and secret not in listed.stdout
    duplicate = recengine(["keys", "create", "--role", "admin", "--name", "ops"], database_url)
    assert duplicate.returncode == 1 and "exists already" in duplicate.stdout
    bad_role = recengine(["keys", "create", "--role", "root", "--name", "x"], database_url)
    assert bad_role.returncode == 1 and "role must be one of" in bad_role.stdout
    assert recengine(["keys", "revoke", "ops"], database_url).returncode == 0
    assert recengine(["keys", "revoke", "ops"], database_url).returncode == 1
    async with state.sessions() as session:
        rows = (await session.execute(text("SELECT name, revoked_at IS NOT NULL FROM api_keys"))).all()
    assert rows == [("ops", True)]


async def test_import_files_report_bad_lines(state: AppState, database_url: str, tmp_path: Path) -> None:
    content = tmp_path / "content.csv"
    content.write_text(
        "id,title,contentType,tags\na1,First,video,x|y\nbad id,Second,video,\na3,,video,\na4,Fourth,article,\n",
        encoding="utf-8",
    )
    result = recengine(["import", "content", str(content), "--no-embed"], database_url)
    assert result.returncode == 0, result.stderr
    assert "line 3:" in result.stdout and "id" in result.stdout and "line 4:" in result.stdout
    assert "stored 2 items, skipped 2 invalid rows" in result.stdout
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"userId": "u1", "contentId": "a1", "eventType": "view"}\n'
        "not json\n"
        '{"userId": "u1", "contentId": "zzz", "eventType": "view"}\n'
        '{"userId": "u2", "contentId": "a4", "eventType": "like", "timestamp": "2026-01-01T00:00:00Z"}\n',
        encoding="utf-8",
    )
    result = recengine(["import", "events", str(events)], database_url)
    assert result.returncode == 0, result.stderr
    assert "line 2: invalid JSON" in result.stdout and "line 3:" in result.stdout
    assert "stored 2 events, skipped 2 invalid rows" in result.stdout
    async with state.sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM content"))).scalar_one() == 2
        assert (await session.execute(text("SELECT count(*) FROM events"))).scalar_one() == 2


def test_import_movielens_missing_folder(database_url: str, tmp_path: Path) -> None:
    result = recengine(["import", "movielens", str(tmp_path)], database_url)
    assert result.returncode == 1
    assert "movies.csv" in result.stdout


def test_evaluate_rejects_bad_k(database_url: str, tmp_path: Path) -> None:
    result = recengine(["evaluate", "--output", str(tmp_path), "--k", "ten"], database_url)
    assert result.returncode == 1 and "--k" in result.stdout
