"""Schema migrations (Alembic) and monthly event partitions."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from app.db import sync_url

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent


def script_folders() -> tuple[Path, Path]:
    """(Alembic environment, revisions): the copies an installed wheel carries, else the checkout's folders."""
    if (PACKAGE / "_alembic" / "env.py").is_file():
        return PACKAGE / "_alembic", PACKAGE / "_migrations"
    return ROOT / "alembic", ROOT / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config for `url`, independent of the working directory and of how the package is installed."""
    ini = ROOT / "alembic.ini"
    config = Config(str(ini) if ini.is_file() and not (PACKAGE / "_alembic").is_dir() else None)
    environment, revisions = script_folders()
    config.set_main_option("script_location", str(environment))
    config.set_main_option("version_locations", str(revisions))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision`."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade the database at `url` to `revision`."""
    command.downgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    """The newest revision in the migrations folder."""
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def pending_revisions(url: str) -> list[str]:
    """The revisions `upgrade(url)` would apply, oldest first."""
    from sqlalchemy import create_engine

    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    script = ScriptDirectory.from_config(alembic_config(url))
    steps = script.iterate_revisions("heads", current or "base")
    return [step.revision for step in reversed(list(steps)) if step.revision not in current]


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when unmigrated)."""
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


PARTITION_LOCK_KEY = 727_270_001  # pg_advisory_xact_lock key: one partition creator at a time
MISSING_PARTITIONS = text(
    """SELECT count(*) FROM generate_series(0, :m) AS i
       CROSS JOIN unnest(ARRAY['events', 'impressions']) AS t(parent)
       WHERE to_regclass(t.parent || '_y' || to_char((now() + make_interval(months => i)) AT TIME ZONE 'UTC',
                                                     'YYYY"m"MM')) IS NULL"""
)


async def create_partitions(engine: AsyncEngine, months_ahead: int) -> int:
    """Create the coming months' event and impression partitions; returns how many were new.

    Nothing is locked when every partition exists already. Otherwise one caller at a time (an advisory
    lock: concurrent pods wait, then find the work done) runs without the statement timeout, since moving
    rows out of DEFAULT can take long; inserts into `events` wait meanwhile, so none lands in DEFAULT
    between the move and the attach.
    """
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL statement_timeout = 0"))
        if not int((await conn.execute(MISSING_PARTITIONS, {"m": months_ahead})).scalar_one()):
            return 0
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PARTITION_LOCK_KEY})
        await conn.execute(text("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE"))
        result = await conn.execute(text("SELECT create_event_partitions(:m)"), {"m": months_ahead})
        return int(result.scalar_one())


async def drop_old_impressions(engine: AsyncEngine, keep_months: int) -> int:
    """Apply the impressions retention (0 keeps everything); returns how many monthly partitions went."""
    if keep_months <= 0:
        return 0
    async with engine.begin() as conn:
        result = await conn.execute(
            text("SELECT drop_month_partitions('impressions', 'served_at', :k)"), {"k": keep_months}
        )
        return int(result.scalar_one())
