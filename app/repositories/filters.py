"""The one place a content filter becomes SQL: every candidate, search and listing query uses `eligible`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_, true

from app.models import Content


@dataclass(frozen=True)
class ContentRules:
    """A validated content filter (ContentFilterInput): every given part must hold."""

    content_types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    metadata: str | None = None  # canonical JSON text (sorted keys), so the rules stay hashable
    published_after: datetime | None = None
    published_before: datetime | None = None

    def key(self) -> list[Any]:
        """A canonical, JSON-serialisable form for cache keys."""
        return [
            sorted(self.content_types),
            sorted(self.categories),
            sorted(self.tags_any),
            sorted(self.tags_all),
            sorted(self.exclude_tags),
            self.metadata,
            self.published_after.isoformat() if self.published_after else None,
            self.published_before.isoformat() if self.published_before else None,
        ]

    def to_json(self) -> dict[str, Any]:
        """The GraphQL-shaped dict (camelCase, only given parts), as placements store it."""
        data: dict[str, Any] = {
            "contentTypes": list(self.content_types),
            "categories": list(self.categories),
            "tagsAny": list(self.tags_any),
            "tagsAll": list(self.tags_all),
            "excludeTags": list(self.exclude_tags),
            "metadata": json.loads(self.metadata) if self.metadata else None,
            "publishedAfter": self.published_after.isoformat() if self.published_after else None,
            "publishedBefore": self.published_before.isoformat() if self.published_before else None,
        }
        return {k: v for k, v in data.items() if v}


def available_now(table: Any = Content) -> ColumnElement[bool]:
    """Inside the availability window at statement time (NULL bounds are open)."""
    now = func.now()
    return and_(
        or_(table.available_from.is_(None), table.available_from <= now),
        or_(table.expires_at.is_(None), table.expires_at > now),
    )


def rules_clause(rules: ContentRules, table: Any = Content) -> list[ColumnElement[bool]]:
    """The predicates of the rules alone (no status, window or exclusions)."""
    out: list[ColumnElement[bool]] = []
    if rules.content_types:
        out.append(table.content_type.in_(rules.content_types))
    if rules.categories:
        out.append(table.category.in_(rules.categories))
    if rules.tags_any:
        out.append(table.tags.overlap(list(rules.tags_any)))
    if rules.tags_all:
        out.append(table.tags.contains(list(rules.tags_all)))
    if rules.exclude_tags:
        out.append(not_(table.tags.overlap(list(rules.exclude_tags))))
    if rules.metadata:
        out.append(table.metadata_.contains(json.loads(rules.metadata)))
    if rules.published_after:
        out.append(table.published_at >= rules.published_after)
    if rules.published_before:
        out.append(table.published_at < rules.published_before)
    return out


def eligible(
    rules: ContentRules | None = None,
    *,
    table: Any = Content,
    content_type: str | None = None,
    exclude: Sequence[str] = (),
    only: Sequence[str] | None = None,
    published: bool = True,
    available: bool | None = True,
) -> list[ColumnElement[bool]]:
    """WHERE clauses for `table` (Content or an alias): published, available now, the rules, exclusions.

    `available=None` ignores the window and `False` keeps only items outside it (catalog listings);
    `only` restricts to the given ids (re-ranking)."""
    out: list[ColumnElement[bool]] = []
    if published:
        out.append(table.status == "published")
    if available is not None:
        window = available_now(table)
        out.append(window if available else not_(window))
    if content_type:
        out.append(table.content_type == content_type)
    if rules is not None:
        out += rules_clause(rules, table)
    if exclude:
        out.append(table.content_id.not_in(list(exclude)))
    if only is not None:
        out.append(table.content_id.in_(list(only)))
    return out


def matches(rules: ContentRules, table: Any = Content) -> ColumnElement[bool]:
    """One boolean expression: does the row satisfy the rules (for boosts)."""
    clauses = rules_clause(rules, table)
    return and_(*clauses) if clauses else true()
