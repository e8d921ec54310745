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

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    """An Alembic config for `url`, independent of the working directory."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.set_main_option("version_locations", str(ROOT / "migrations"))
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


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when unmigrated)."""
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def create_partitions(engine: AsyncEngine, months_ahead: int) -> int:
    """Create the coming months' event and impression partitions; returns how many were new."""
    async with engine.begin() as conn:
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
