"""The `placements` table: named recommendation defaults per page or slot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Float, Integer, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class Placement(Base):
    """A placement: default strategy, count, filter, boosts and diversity; `version` grows on every change."""

    __tablename__ = "placements"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    strategy: Mapped[str | None] = mapped_column(Text)
    count: Mapped[int | None] = mapped_column(Integer)
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    boosts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    diversity: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("nextval('placement_versions')"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
