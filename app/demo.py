"""`recengine demo`: a running service with MovieLens data on the embedded database."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.panel import Panel

from app.cli_data import import_movielens, movielens_path, train
from app.cli_support import console, database_errors, run, serve_api
from app.config import Settings, get_settings

app = typer.Typer()  # its command is added to the root `recengine` command by app.cli
KEY_FILE = "demo-admin-key"
DEMO_USER = "1"  # a MovieLens user with a long history
DEMO_TOKEN_SECONDS = 24 * 3600  # in RECENGINE_DATA_DIR, so every `make demo` run prints the same key

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ml-latest-small"

EXAMPLES = """\
query {{ recommendations(userId: "1", count: 5) {{ items {{ rank score explanation content {{ title }} }} }} }}

query {{ similarContent(contentId: "1", count: 5) {{ score content {{ title }} }} }}

mutation {{ logEvent(input: {{userId: "1", contentId: "2571", eventType: "like"}}) {{ event {{ id }} duplicate }} }}

curl -s http://{host}:{port}/graphql -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
  -d '{{"query": "{{ recommendations(userId: \\"1\\", count: 3) {{ items {{ explanation content {{ title }} }} }} }}"}}'
"""


def demo_data(given: Path | None) -> Path | None:
    """The MovieLens folder to import: given, RECENGINE_DEMO_DATA, the shared copy, else None (download)."""
    for candidate in (given, get_settings().demo_data, SHARED):
        if candidate is not None and (candidate / "ratings.csv").exists():
            return candidate
    return None


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    data: Annotated[Path | None, typer.Option(help="MovieLens folder (default RECENGINE_DEMO_DATA).")] = None,
) -> None:
    """Embedded database, migrate, import MovieLens, train, reuse (or create) an admin key, print examples, serve."""
    run_demo(host=host, port=port, data=data)


def run_demo(*, host: str | None, port: int | None, data: Path | None) -> None:
    """Prepare everything, then serve."""
    from app import migrate
    from app.db import resolve_database_url

    settings = get_settings()
    with database_errors(settings):
        migrate.upgrade(resolve_database_url(settings))
    counts = run(_counts)
    if counts["content"] == 0:
        import_movielens(movielens_path(demo_data(data)))
    if counts["active"] == 0:
        train(force=False, seed=None, factors=None, iterations=None)
    key = run(lambda state: admin_key(state, settings.data_dir / KEY_FILE))
    shown_host, shown_port = host or settings.host, port or settings.port
    console.print(Panel(EXAMPLES.format(host=shown_host, port=shown_port, key=key), title="Try these in GraphiQL"))
    console.print(
        f"Explorer as user {DEMO_USER} (a user token in the link's fragment; it stays in the browser tab and "
        "may only read published content and act for that user):"
    )
    print(explorer_link(shown_host, shown_port, demo_user_token(settings)), flush=True)
    console.print(f"GraphiQL: http://{shown_host}:{shown_port}/graphql — admin key (Authorization: Bearer …):")
    print(key, flush=True)
    serve_api(host=host, port=port, workers=1)


def demo_user_token(settings: Settings) -> str:
    """A user token for the demo user, valid for a day."""
    from app.services import tokens

    return tokens.issue(settings, subject=DEMO_USER, ttl_seconds=DEMO_TOKEN_SECONDS).token


def explorer_link(host: str, port: int, credential: str) -> str:
    """The /explorer URL with a key or user token in its fragment (never sent to the server, kept in the tab)."""
    return f"http://{host}:{port}/explorer#token={quote(credential, safe='')}"


async def _counts(state: Any) -> dict[str, int]:
    from sqlalchemy import text

    async with state.sessions() as session:
        content = (await session.execute(text("SELECT count(*) FROM content"))).scalar_one()
        active = (
            await session.execute(text("SELECT count(*) FROM model_versions WHERE status = 'active'"))
        ).scalar_one()
    return {"content": int(content), "active": int(active)}


async def admin_key(state: Any, path: Path) -> str:
    """The admin key saved in `path` while the database still accepts it; otherwise a new one, saved there."""
    from app.services import auth

    saved = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    async with state.sessions() as session:
        if saved and await auth.role_for(session, secret=saved) is auth.Role.ADMIN:
            return saved
        key = await auth.create_key(session, name=f"demo-admin-{secrets.token_hex(4)}", role="admin")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_text(key.secret + "\n", encoding="utf-8")
    return key.secret
