"""Business controls' inputs: content filters, boosts and diversity, validated; a broken rule names its field."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from app.errors import InvalidInput
from app.repositories.filters import ContentRules
from app.services.validation import MAX_TAGS, ContentTypeName, _check_json, _Strict, validate

MAX_BOOSTS = 20
MAX_FACTOR = 10.0


def _aware_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class FilterWrite(_Strict):
    """ContentFilterInput as received (camelCase keys)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    content_types: list[ContentTypeName] | None = Field(None, max_length=6)
    categories: list[str] | None = Field(None, max_length=MAX_TAGS)
    tags_any: list[str] | None = Field(None, max_length=MAX_TAGS)
    tags_all: list[str] | None = Field(None, max_length=MAX_TAGS)
    exclude_tags: list[str] | None = Field(None, max_length=MAX_TAGS)
    metadata: dict[str, Any] | None = None
    published_after: datetime | None = None
    published_before: datetime | None = None

    _json = field_validator("metadata")(_check_json)

    @field_validator("categories", "tags_any", "tags_all", "exclude_tags")
    @classmethod
    def _words(cls, value: list[str] | None) -> list[str] | None:
        for word in value or []:
            if not 1 <= len(word) <= 255 or "\x00" in word:
                raise ValueError("each value must be 1-255 characters without NUL")
        return value

    @field_validator("published_after", "published_before")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _aware_utc(value)

    @field_validator("published_before")
    @classmethod
    def _ordered(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("published_after")
        if value is not None and start is not None and _aware_utc(value) <= _aware_utc(start):
            raise ValueError("must be after publishedAfter")
        return value

    def rules(self) -> ContentRules:
        """The hashable, canonical rules."""
        return ContentRules(
            content_types=tuple(sorted(set(self.content_types or ()))),
            categories=tuple(sorted(set(self.categories or ()))),
            tags_any=tuple(sorted(set(self.tags_any or ()))),
            tags_all=tuple(sorted(set(self.tags_all or ()))),
            exclude_tags=tuple(sorted(set(self.exclude_tags or ()))),
            metadata=json.dumps(self.metadata, sort_keys=True, separators=(",", ":")) if self.metadata else None,
            published_after=self.published_after,
            published_before=self.published_before,
        )


@dataclass(frozen=True)
class Boost:
    """Multiply the blended score of items matching `rules` by `factor` (0 < factor <= 10)."""

    rules: ContentRules
    factor: float

    def key(self) -> list[Any]:
        """Canonical form for cache keys."""
        return [self.rules.key(), self.factor]

    def to_json(self) -> dict[str, Any]:
        """The GraphQL-shaped dict placements store."""
        return {"filter": self.rules.to_json(), "factor": self.factor}


def parse_filter(data: dict[str, Any] | None, *, field: str = "filter") -> ContentRules | None:
    """Validated rules from a ContentFilterInput dict (None when absent); InvalidInput names the field."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise InvalidInput(f"{field} must be an object", field=field)
    return validate(FilterWrite, data, prefix=field).rules()


def parse_boosts(data: list[dict[str, Any]] | None, *, field: str = "boosts") -> tuple[Boost, ...]:
    """Validated boosts: at most MAX_BOOSTS, each factor in (0, 10], each filter valid."""
    if not data:
        return ()
    if len(data) > MAX_BOOSTS:
        raise InvalidInput(f"{field} may list at most {MAX_BOOSTS} boosts", field=field)
    boosts = []
    for i, item in enumerate(data):
        factor = item.get("factor")
        if not isinstance(factor, int | float) or not math.isfinite(factor) or not 0 < factor <= MAX_FACTOR:
            name = f"{field}[{i}].factor"
            raise InvalidInput(f"{name} must be greater than 0 and at most {MAX_FACTOR:g}", field=name)
        rules = parse_filter(item.get("filter"), field=f"{field}[{i}].filter")
        if rules is None:
            raise InvalidInput(f"{field}[{i}].filter is required", field=f"{field}[{i}].filter")
        boosts.append(Boost(rules, float(factor)))
    return tuple(boosts)


def check_diversity(value: float | None, *, field: str = "diversity") -> float | None:
    """The MMR trade-off in [0, 1] (0 = off), or None."""
    if value is None:
        return None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"{field} must be between 0 and 1, got {value}", field=field)
    return float(value)
