"""What every CLI command shares: the console, errors and exit codes, progress bars, running against the database."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import make_url, text
from sqlalchemy.exc import ArgumentError

from app.config import Settings, get_settings

console = Console()
T = TypeVar("T")
DATABASE_DOWN = 2  # exit code when the database cannot be reached


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error and return the exit to raise."""
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(code=code)


def masked(url: str) -> str:
    """The URL with its password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def shown_database(settings: Settings) -> str:
    """The database a command talks to, as printed in errors (password masked)."""
    if settings.database_url:
        return masked(settings.database_url)
    return f"the embedded PostgreSQL in {settings.data_dir}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def connection_failure(exc: BaseException) -> BaseException | None:
    """The underlying error when `exc` means "could not connect to the database", else None."""
    import asyncpg
    import psycopg2

    connect_errors = (
        ConnectionError,
        TimeoutError,
        socket.gaierror,
        asyncpg.exceptions.PostgresConnectionError,
        asyncpg.exceptions.InvalidAuthorizationSpecificationError,
        asyncpg.exceptions.InvalidPasswordError,
        asyncpg.exceptions.InvalidCatalogNameError,
        asyncpg.exceptions.CannotConnectNowError,
        psycopg2.OperationalError,
    )
    for cause in _causes(exc):
        if isinstance(cause, connect_errors) or _network_os_error(cause):
            return cause
    return None


def _network_os_error(exc: BaseException) -> bool:
    """A bare OSError of a failed connect: unreachable network or host, or asyncpg's "Multiple exceptions"."""
    if type(exc) is not OSError:  # subclasses such as PermissionError are about files, not the database
        return False
    return exc.errno in {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL} or str(exc).startswith(
        "Multiple exceptions"
    )


def unreachable_message(settings: Settings, cause: BaseException) -> str:
    """One line: which database, and why it could not be reached."""
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return f"cannot reach the database at {shown_database(settings)}: {reason[:200]}"


@contextlib.contextmanager
def database_errors(settings: Settings) -> Iterator[None]:
    """Turn "database unreachable" into one line on the console and exit code 2."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:
        cause = connection_failure(exc)
        if cause is None:
            raise
        raise fail(unreachable_message(settings, cause), code=DATABASE_DOWN) from None


def run(main: Callable[[Any], Coroutine[Any, Any, T]], settings: Settings | None = None) -> T:
    """Run `main(state)` with a connected application state, then close it."""
    from app.main import build_state, close_state

    settings = settings or get_settings()

    async def connect() -> Any:
        state = await build_state(settings)
        try:
            async with state.engine.connect() as conn:  # fail here, before any progress bar starts
                await conn.execute(text("SELECT 1"))
        except BaseException:
            await close_state(state)
            raise
        return state

    async def wrapper() -> T:
        with database_errors(settings):  # only connecting is classified; later failures keep their traceback
            state = await connect()
        try:
            return await main(state)
        finally:
            await close_state(state)

    return asyncio.run(wrapper())


def batch_settings() -> Settings:
    """Settings for batch jobs: no per-statement time budget (that is for requests)."""
    return get_settings().model_copy(update={"db_statement_timeout_seconds": 0.0})


def progress_bar() -> Progress:
    """The progress bar used by long jobs (counted steps or rows)."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def download_bar() -> Progress:
    """The progress bar of a download (bytes)."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(), console=console
    )


async def schema_revisions(state: Any) -> tuple[str | None, str | None]:
    """(current, head) revisions of the state's database; raises when the database cannot be reached."""
    from app import migrate

    return await migrate.current_revision(state.engine), migrate.head_revision(state.database_url)


def preflight(settings: Settings) -> None:
    """Before serving: exit 2 when the database is down; warn (and serve) when its schema is behind."""
    current, head = run(schema_revisions, settings)
    if current != head:
        console.print(
            f"[yellow]warning:[/yellow] the database schema is behind (at {current or 'nothing'}, head is {head}): "
            "run `recengine migrate`; /ready answers 503 until then",
            soft_wrap=True,
        )


def serve_api(*, host: str | None, port: int | None, workers: int | None) -> None:
    """Check the database, then serve the app with uvicorn."""
    from app.logging import configure_logging
    from app.serving import serve

    settings = get_settings()
    configure_logging(settings.log_level)
    preflight(settings)
    serve(settings, host=host, port=port, workers=workers)
