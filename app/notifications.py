"""Cross-process notifications over PostgreSQL LISTEN/NOTIFY: what changed, sent inside the writing transaction."""

from __future__ import annotations

from enum import Enum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "recengine_changes"


class Topic(str, Enum):
    """What a notification says changed; every API process reacts to each."""

    MODEL = "model"  # a model version was activated
    KEYS = "keys"  # an API key was created or revoked


async def notify(session: AsyncSession, topic: Topic) -> None:
    """Queue a notification in the session's transaction (delivered to listeners when it commits)."""
    await session.execute(text("SELECT pg_notify(:channel, :topic)"), {"channel": CHANNEL, "topic": topic.value})
