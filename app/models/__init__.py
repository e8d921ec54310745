"""SQLAlchemy ORM models, one module per table family."""

from app.models.api_key import ApiKey
from app.models.base import Base
from app.models.content import Content
from app.models.event import Event, EventKey
from app.models.event_type import EventType
from app.models.model_version import ItemFactor, ItemLink, ModelVersion, UserFactor
from app.models.online import Experiment, Impression
from app.models.placement import Placement
from app.models.user import User

__all__ = [
    "ApiKey",
    "Base",
    "Content",
    "Event",
    "EventKey",
    "EventType",
    "Experiment",
    "Impression",
    "ItemFactor",
    "ItemLink",
    "ModelVersion",
    "Placement",
    "User",
    "UserFactor",
]
