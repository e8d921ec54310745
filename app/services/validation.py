"""Input rules (the LLD's limits) as pydantic models; a broken rule names its field."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, ValidationInfo, field_validator

from app.errors import InvalidInput

ContentTypeName = Literal["product", "video", "article", "post", "image", "audio"]
ContentStatusName = Literal["draft", "published", "archived", "deleted"]
UserStatusName = Literal["active", "inactive", "suspended"]

ID_PATTERN = r"^[a-zA-Z0-9_-]+$"
USER_ID_REGEX = r"^[a-zA-Z0-9_.@:-]+$"
USER_ID_PATTERN = re.compile(r"[a-zA-Z0-9_.@:-]{1,255}")
MAX_ID_LENGTH = 255
MAX_EVENT_FUTURE_SECONDS = 300  # the default of RECENGINE_MAX_EVENT_FUTURE_SECONDS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_JSON_BYTES = 16_384
MAX_TAGS = 100
MAX_TEXT = 10_000

M = TypeVar("M", bound=BaseModel)


def _check_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    if len(json.dumps(value, default=str).encode()) > MAX_JSON_BYTES:
        raise ValueError(f"must be at most {MAX_JSON_BYTES} bytes of JSON")
    if _depth(value) > 10:
        raise ValueError("must be nested at most 10 levels deep")
    return value


def _depth(value: Any, level: int = 1) -> int:
    if level > 11:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _check_text(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ContentWrite(_Strict):
    """A content upsert."""

    id: str = Field(min_length=1, max_length=255, pattern=ID_PATTERN)
    title: str = Field(min_length=1, max_length=500)
    description: str | None = Field(None, max_length=MAX_TEXT)
    content_type: ContentTypeName
    status: ContentStatusName = "published"
    category: str | None = Field(None, max_length=255)
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    metadata: dict[str, Any] = Field(default_factory=dict)
    available_from: datetime | None = None
    expires_at: datetime | None = None

    _json = field_validator("metadata")(_check_json)
    _text = field_validator("title", "description", "category")(_check_text)

    @field_validator("available_from", "expires_at")
    @classmethod
    def _aware_window(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @field_validator("expires_at")
    @classmethod
    def _window_order(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("available_from")
        if value is not None and start is not None and value <= start:
            raise ValueError("must be after availableFrom")
        return value

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not 1 <= len(tag) <= 100 or "\x00" in tag:
                raise ValueError("each tag must be 1-100 characters without NUL")
        return value


class UserWrite(_Strict):
    """A user upsert; fields left None keep their stored value."""

    id: str = Field(min_length=1, max_length=255, pattern=USER_ID_REGEX)
    email: EmailStr | None = None
    demographics: dict[str, Any] | None = None
    preferences: dict[str, Any] | None = None
    segments: list[str] | None = Field(None, max_length=MAX_TAGS)
    data_sharing: bool | None = None
    personalization: bool | None = None
    status: UserStatusName | None = None

    _json = field_validator("demographics", "preferences")(_check_json)


class EventWrite(_Strict):
    """A behavior event."""

    event_id: uuid.UUID | None = None
    user_id: str | None = Field(None, min_length=1, max_length=255, pattern=USER_ID_REGEX)
    content_id: str = Field(min_length=1, max_length=255, pattern=ID_PATTERN)
    event_type: str = Field(min_length=1, max_length=64)
    recommendation_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")
    value: float | None = Field(None, ge=-1e6, le=1e6)
    timestamp: datetime | None = None
    session_id: str | None = Field(None, max_length=255)
    device_type: str | None = Field(None, max_length=64)
    platform: str | None = Field(None, max_length=64)
    metadata: dict[str, Any] = Field(default_factory=dict)

    _json = field_validator("metadata")(_check_json)
    _text = field_validator("session_id", "device_type", "platform")(_check_text)

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


FIELD_NAMES = {
    "content_type": "contentType",
    "event_type": "eventType",
    "event_id": "eventId",
    "user_id": "userId",
    "content_id": "contentId",
    "session_id": "sessionId",
    "device_type": "deviceType",
    "data_sharing": "dataSharing",
    "available_from": "availableFrom",
    "expires_at": "expiresAt",
    "recommendation_id": "recommendationId",
}


def graphql_name(loc: tuple[int | str, ...]) -> str:
    """The dotted GraphQL name of a pydantic error location."""
    return ".".join(FIELD_NAMES.get(str(part), str(part)) for part in loc)


def validate(model: type[M], data: dict[str, Any], *, prefix: str = "input") -> M:
    """Build `model` from `data` or raise InvalidInput naming the first broken field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = f"{prefix}.{graphql_name(first['loc'])}"
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidInput(f"{field}: {message}", field=field) from None


def check_count(value: int, *, name: str, maximum: int, minimum: int = 1) -> int:
    """A list size argument within bounds, else InvalidInput naming it."""
    if not minimum <= value <= maximum:
        raise InvalidInput(f"{name} must be between {minimum} and {maximum}, got {value}", field=name)
    return value


def time_problem(timestamp: datetime | None, latest: datetime, field: str) -> str | None:
    """Why an event time is refused (before 1970, or later than `latest`), or None when it is fine."""
    if timestamp is None:
        return None
    if timestamp < EPOCH:
        return f"{field}: must not be before 1970-01-01T00:00:00Z"
    if timestamp > latest:
        return f"{field}: must not be later than {latest.isoformat()} (the server's clock plus the allowed skew)"
    return None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def check_id_arguments(kwargs: dict[str, Any]) -> None:
    """Every id argument (`id`, `*_id`, `*_ids`) is at most MAX_ID_LENGTH characters, else InvalidInput:
    checked before a resolver runs, so an oversized id never reaches a query or a cache key."""
    for name, value in kwargs.items():
        if not (name == "id" or name.endswith(("_id", "_ids"))):
            continue
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, str) and len(v) > MAX_ID_LENGTH for v in values):
            field = _camel(name)
            raise InvalidInput(f"{field}: ids are at most {MAX_ID_LENGTH} characters", field=field)
