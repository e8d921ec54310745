"""The `model_versions` registry and the factor tables it owns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import DateTime, Float, ForeignKey, Integer, PrimaryKeyConstraint, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ModelVersion(Base):
    """A trained model: parameters, training stats, offline metrics and status."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(Text, default="als")
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    training_stats: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    trained_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    status: Mapped[str] = mapped_column(Text, default="candidate")


class UserFactor(Base):
    """A user's ALS vector under one model version."""

    __tablename__ = "user_factors"

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True)
    factors: Mapped[Any] = mapped_column(Vector())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ItemLink(Base):
    """One item-to-item link (neighbour and weight) of one source (`app.ml.sources.Source`) under one model version."""

    __tablename__ = "item_links"
    # `weight` rides in the key's leaf pages: the serving aggregate's join reads the index alone
    __table_args__ = (
        PrimaryKeyConstraint("model_version_id", "content_id", "source", "neighbor_id", postgresql_include=["weight"]),
    )

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    content_id: Mapped[str] = mapped_column(
        Text, ForeignKey("content.content_id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    neighbor_id: Mapped[str] = mapped_column(
        Text, ForeignKey("content.content_id", ondelete="CASCADE"), primary_key=True
    )
    weight: Mapped[float] = mapped_column(Float)


class ItemFactor(Base):
    """An item's ALS vector under one model version."""

    __tablename__ = "item_factors"

    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    content_id: Mapped[str] = mapped_column(
        Text, ForeignKey("content.content_id", ondelete="CASCADE"), primary_key=True
    )
    factors: Mapped[Any] = mapped_column(Vector())
