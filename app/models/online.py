"""Tables of the online loop: served lists (`impressions`) and A/B `experiments`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class Impression(Base):
    """One served recommendation list (monthly-partitioned by `served_at`)."""

    __tablename__ = "impressions"

    request_id: Mapped[str] = mapped_column(Text, primary_key=True)
    served_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    parent_request_id: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)
    session_id: Mapped[str | None] = mapped_column(Text)
    strategy: Mapped[str] = mapped_column(Text)
    placement: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[int | None] = mapped_column(Integer)
    experiment: Mapped[str | None] = mapped_column(Text)
    arm: Mapped[str | None] = mapped_column(Text)
    item_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    cached: Mapped[bool] = mapped_column(Boolean, default=False)


class Experiment(Base):
    """An A/B experiment: arms with their strategy, model version and share of traffic."""

    __tablename__ = "experiments"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    placement: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    arms: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
