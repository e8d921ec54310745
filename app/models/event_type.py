"""The `event_types` table: event name -> training weight."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class EventType(Base):
    """A kind of behavior event and its weight."""

    __tablename__ = "event_types"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    weight: Mapped[float] = mapped_column(Float)
    conversion: Mapped[bool] = mapped_column(Boolean, default=False)
