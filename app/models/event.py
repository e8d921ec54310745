"""The `events` table (range-partitioned by month) and its idempotency keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class Event(Base):
    """A behavior event (the LLD's user_behaviors)."""

    __tablename__ = "events"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    timestamp: Mapped[datetime] = mapped_column("timestamp", DateTime(timezone=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, ForeignKey("users.user_id", ondelete="CASCADE"))
    content_id: Mapped[str] = mapped_column(Text, ForeignKey("content.content_id"))
    event_type: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    session_id: Mapped[str | None] = mapped_column(Text)
    device_type: Mapped[str | None] = mapped_column(Text)
    platform: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    processed: Mapped[bool] = mapped_column(Boolean, default=False)
    recommendation_id: Mapped[str | None] = mapped_column(Text)


class EventKey(Base):
    """One row per stored event id: makes client-supplied ids idempotent across partitions."""

    __tablename__ = "event_keys"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, ForeignKey("users.user_id", ondelete="CASCADE"))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
