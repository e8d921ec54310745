"""Alembic environment: runs migrations synchronously against the configured database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from app.config import get_settings
from app.db import resolve_database_url, sync_url
from app.models import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK = 7_302_611_001


def database_url() -> str:
    """The URL given by the caller, else the one the settings resolve to."""
    url = config.get_main_option("sqlalchemy.url")
    return sync_url(url or resolve_database_url(get_settings()))


def run_migrations_offline() -> None:
    """Emit SQL without a connection."""
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations over a live connection."""
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Two processes starting at once (serve and a CLI command) must not migrate concurrently.
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
