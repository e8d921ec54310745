"""The `users` table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base

DEFAULT_PRIVACY: dict[str, bool] = {"data_sharing": True, "personalization": True}


class User(Base):
    """A user profile."""

    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    email: Mapped[str | None] = mapped_column(Text, unique=True)
    demographics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    segments: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    privacy_settings: Mapped[dict[str, bool]] = mapped_column(JSONB, default=lambda: dict(DEFAULT_PRIVACY))
    status: Mapped[str] = mapped_column(Text, default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_active: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def personalization(self) -> bool:
        """Whether the user allows personalized results."""
        return bool(self.privacy_settings.get("personalization", True))

    @property
    def data_sharing(self) -> bool:
        """Whether the user's events may train models used for others."""
        return bool(self.privacy_settings.get("data_sharing", True))
