"""A newcomer's first commands: --version, a clear error when the database is down, migrate, the demo key."""

from __future__ import annotations

import ast
import re
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from app import __version__, migrate
from app.context import AppState
from app.demo import admin_key
from app.services import auth
from tests.cli.test_cli import recengine
from tests.conftest import fresh_database
from tests.redis_support import free_port

ROOT = Path(__file__).resolve().parents[2]
CLI_MODULES = {"app.cli", "app.cli_data", "app.cli_support", "app.demo", "app.bench.cli"}


def test_version() -> None:
    result = recengine(["--version"], "postgresql://unused@127.0.0.1:1/x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"recengine {__version__}"


DOWN_COMMANDS = [
    ["migrate"],
    ["serve"],
    ["demo"],
    ["train"],
    ["keys", "list"],
    ["keys", "create", "--name", "x"],
    ["keys", "revoke", "x"],
    ["evaluate", "--from-db", "--output", "{tmp}"],
    ["import", "content", "{tmp}/content.csv", "--no-embed"],
    ["import", "events", "{tmp}/events.csv"],
    ["bench", "generate", "--items", "10"],
]


@pytest.mark.parametrize("command", DOWN_COMMANDS, ids=" ".join)
def test_database_down_is_one_line_and_exit_2(command: list[str], tmp_path: Path) -> None:
    (tmp_path / "content.csv").write_text("id,title,contentType\na1,First,video\n", encoding="utf-8")
    (tmp_path / "events.csv").write_text("userId,contentId,eventType\nu1,a1,view\n", encoding="utf-8")
    port = free_port()  # nothing listens there
    url = f"postgresql://recengine:hunter2@127.0.0.1:{port}/recengine"
    args = [part.replace("{tmp}", str(tmp_path)) for part in command]
    result = recengine(args, url, RECENGINE_DB_CONNECT_TIMEOUT_SECONDS="3", RECENGINE_DATA_DIR=str(tmp_path))
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip() and "━" not in line]
    assert result.returncode == 2, result.stdout + result.stderr
    assert lines == [lines[0]] and lines[0].startswith("error: cannot reach the database at "), lines
    assert f"postgresql://recengine:***@127.0.0.1:{port}/recengine" in lines[0]
    assert "hunter2" not in result.stdout + result.stderr


def _unmigrated(pg_uri: str, name: str) -> str:
    url = fresh_database(pg_uri, name)
    migrate.downgrade(url, "base")
    return url


def _revision(url: str) -> str | None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def read() -> str | None:
        engine = create_async_engine(url)
        try:
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_migrate_applies_each_pending_revision_once(pg_uri: str) -> None:
    url = _unmigrated(pg_uri, "recengine_cli_migrate")
    pending = migrate.pending_revisions(url)
    assert pending and pending[-1] == migrate.head_revision(url)
    first = recengine(["migrate"], url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{len(pending)} migration(s) applied" in first.stdout
    assert _revision(url) == migrate.head_revision(url)
    assert migrate.pending_revisions(url) == []
    again = recengine(["migrate"], url)
    assert again.returncode == 0 and "0 migration(s) applied" in again.stdout


def test_serve_says_schema_behind_not_database_down(pg_uri: str, tmp_path: Path) -> None:
    from tests.hardening.servers import serve_process, server_env

    url = _unmigrated(pg_uri, "recengine_cli_behind")
    log = tmp_path / "serve.log"
    with serve_process(server_env(url), log) as (base, _):
        import httpx

        assert httpx.get(f"{base}/ready", timeout=10).status_code == 503
    output = log.read_text(encoding="utf-8")
    assert re.search(r"schema is behind \(at nothing, head is \S+\): run `recengine migrate`", output), output
    assert "cannot reach" not in output and "unreachable" not in output


async def test_demo_reuses_its_admin_key(state: AppState, tmp_path: Path) -> None:
    path = tmp_path / "data" / "demo-admin-key"
    first = await admin_key(state, path)
    assert await admin_key(state, path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    async with state.sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM api_keys"))).scalar_one() == 1
        name = (await session.execute(text("SELECT name FROM api_keys"))).scalar_one()
        await auth.revoke_key(session, name=name)
    replaced = await admin_key(state, path)  # a revoked (or foreign) key is replaced, not reused
    assert replaced != first and path.read_text(encoding="utf-8").strip() == replaced
    async with state.sessions() as session:
        assert await auth.role_for(session, secret=replaced) is auth.Role.ADMIN


def _imports(path: Path) -> set[str]:
    """Every app.* module a file imports, at any depth (lazy imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("app"))
    return found


def test_cli_modules_have_no_import_cycle() -> None:
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts): path
        for path in (ROOT / "app").rglob("*.py")
        if path.name != "__init__.py"
    }
    graph = {name: _imports(path) & modules.keys() for name, path in modules.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph[start])
        while todo:
            current = todo.pop()
            if current == goal:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(graph.get(current, ()))
        return False

    assert [name for name in sorted(CLI_MODULES) if reaches(name, name)] == []


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("error", "is_database_down"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (TimeoutError(), True),
        (OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432)"), True),
        (_chained(RuntimeError("wrapped"), ConnectionRefusedError(111, "refused")), True),
        (PermissionError(13, "Permission denied", "/out/report.json"), False),
        (FileNotFoundError(2, "No such file", "events.csv"), False),
        (ValueError("bad row"), False),
    ],
    ids=repr,
)
def test_only_connection_failures_read_as_database_down(error: BaseException, is_database_down: bool) -> None:
    from app.cli_support import connection_failure

    assert (connection_failure(error) is not None) is is_database_down


def test_masked_url_hides_only_the_password() -> None:
    from app.cli_support import masked

    assert masked("postgresql+asyncpg://rec:s%40cret@db:5432/rec?ssl=require") == (
        "postgresql+asyncpg://rec:***@db:5432/rec?ssl=require"
    )
    assert masked("postgresql://db/rec") == "postgresql://db/rec"
