"""The `recengine` command line."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from app.config import Settings, get_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

app = typer.Typer(help="recengine: a content recommendation engine with a GraphQL API.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
import_app = typer.Typer(help="Import content, events or the MovieLens data set.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(import_app, name="import")
console = Console()
T = TypeVar("T")


def run(main: Callable[[Any], Coroutine[Any, Any, T]], settings: Settings | None = None) -> T:
    """Run `main(state)` with a connected application state, then close it."""
    from app.main import build_state, close_state

    async def wrapper() -> T:
        state = await build_state(settings or get_settings())
        try:
            return await main(state)
        finally:
            await close_state(state)

    return asyncio.run(wrapper())


def fail(message: str) -> typer.Exit:
    """Print an error and return the exit to raise."""
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default RECENGINE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default RECENGINE_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default RECENGINE_WORKERS).")] = None,
) -> None:
    """Serve the GraphQL API (GraphiQL at /graphql in development)."""
    import uvicorn

    from app.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        log_config=None,
        access_log=False,
    )


@app.command()
def migrate() -> None:
    """Upgrade the database schema to head and create the coming months' event and impression partitions."""
    from app import migrate as migrations
    from app.db import resolve_database_url

    settings = get_settings()
    url = resolve_database_url(settings)
    migrations.upgrade(url)

    async def partitions(state: Any) -> int:
        return await migrations.create_partitions(state.engine, settings.partition_months_ahead)

    created = run(partitions, settings)
    console.print(f"schema at head ({migrations.head_revision(url)}); {created} new partition(s)")


@app.command("export-schema")
def export_schema(
    output: Annotated[Path, typer.Argument(help="Where to write the SDL.")] = Path("schema.graphql"),
) -> None:
    """Write the GraphQL schema (SDL) to a file."""
    from app.schema.schema import schema

    output.write_text(schema.as_str() + "\n", encoding="utf-8")
    console.print(f"wrote {output}")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A unique name for the key.")],
    role: Annotated[str, typer.Option(help="client or admin.")] = "client",
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from app.errors import AppError
    from app.services import auth

    async def main(state: Any) -> auth.NewKey:
        async with state.sessions() as session:
            return await auth.create_key(session, name=name, role=role)

    try:
        key = run(main)
    except AppError as exc:
        raise fail(exc.message) from None
    console.print(f"created {key.role.value} key [bold]{key.name}[/bold] (shown once):")
    print(key.secret)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (names, roles, prefixes; never the secrets)."""
    from app.services import auth

    async def main(state: Any) -> list[Any]:
        async with state.sessions() as session:
            return await auth.list_keys(session)

    table = Table("name", "role", "prefix", "created", "revoked")
    for key in run(main):
        table.add_row(key.name, key.role, key.prefix + "…", str(key.created_at), str(key.revoked_at or ""))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="Name of the key to revoke.")]) -> None:
    """Revoke a key; it stops working at once."""
    from app.errors import AppError
    from app.services import auth

    async def main(state: Any) -> None:
        async with state.sessions() as session:
            await auth.revoke_key(session, name=name)

    try:
        run(main)
    except AppError as exc:
        raise fail(exc.message) from None
    console.print(f"revoked {name}")


# registers import/train/evaluate/demo, then experiment/export, then the bench commands
from app import cli_data, cli_online  # noqa: E402
from app.bench import cli as bench_cli  # noqa: E402

__all__ = ["app", "bench_cli", "cli_data", "cli_online"]
