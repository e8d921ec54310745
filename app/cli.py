"""The `recengine` command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app import __version__, cli_data, cli_online, demo
from app.bench import cli as bench_cli
from app.cli_support import console, database_errors, fail, progress_bar, run
from app.config import get_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

app = typer.Typer(help="recengine: a content recommendation engine with a GraphQL API.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _print_version(value: bool) -> None:
    if value:
        print(f"recengine {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """recengine: a content recommendation engine with a GraphQL API."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default RECENGINE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default RECENGINE_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=0, help="Worker processes; 0 = one per CPU core (default RECENGINE_WORKERS).")
    ] = None,
) -> None:
    """Serve the GraphQL API (GraphiQL at /graphql in development)."""
    from app.cli_support import serve_api

    serve_api(host=host, port=port, workers=workers)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to head and create the coming months' event and impression partitions."""
    from app import migrate as migrations
    from app.db import resolve_database_url

    settings = get_settings()
    with database_errors(settings):
        url = resolve_database_url(settings)
        pending = migrations.pending_revisions(url)
        with progress_bar() as bar:
            task = bar.add_task("migrate", total=len(pending))
            for revision in pending:
                bar.update(task, description=f"migrate {revision}")
                migrations.upgrade(url, revision)
                bar.advance(task)

    async def partitions(state: Any) -> int:
        return await migrations.create_partitions(state.engine, settings.partition_months_ahead)

    created = run(partitions, settings)
    console.print(
        f"schema at head ({migrations.head_revision(url)}); {len(pending)} migration(s) applied; "
        f"{created} new partition(s)"
    )


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


@keys_app.command("user-token")
def keys_user_token(
    user_id: Annotated[str, typer.Argument(help="The user the token acts for.")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
) -> None:
    """Mint a user token (for a browser or app) signed with RECENGINE_TOKEN_SECRET; prints it last."""
    from app.errors import AppError
    from app.services import tokens

    try:
        issued = tokens.issue(get_settings(), subject=user_id, ttl_seconds=ttl)
    except AppError as exc:
        raise fail(exc.message) from None
    console.print(f"user token for [bold]{user_id}[/bold], expires {issued.principal.expires_at.isoformat()}:")
    print(issued.token)


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


app.add_typer(cli_data.import_app, name="import")
app.add_typer(bench_cli.bench_app, name="bench")
app.add_typer(cli_online.experiment_app, name="experiment")
app.add_typer(cli_online.export_app, name="export")
for commands in (cli_data.app, demo.app):  # import/train/evaluate and demo live in their own modules
    app.registered_commands.extend(commands.registered_commands)

__all__ = ["app"]
