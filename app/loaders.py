"""Per-request DataLoaders: every list of related objects loads in one batched query.

The `*_node` loaders hand out GraphQL objects, so a type that points at another type (an event
at its user, a recommended item at its content) needs no import of that type's module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from app.db import SessionFactory
from app.db_routing import ReadSessions
from app.models import Content, Event, User
from app.repositories.content import ContentRepository
from app.repositories.events import EventRepository
from app.repositories.users import UserRepository
from app.schema.content import Content as ContentNode
from app.schema.users import User as UserNode


@dataclass
class Loaders:
    """The DataLoaders of one request."""

    content_by_id: DataLoader[str, Content | None]
    user_by_id: DataLoader[str, User | None]
    content_node: DataLoader[str, ContentNode | None]
    user_node: DataLoader[str, UserNode | None]
    latest_events: DataLoader[tuple[str, int], list[Event]]
    event_counts: DataLoader[str, int]


def create_loaders(sessions: SessionFactory, reads: ReadSessions | None = None) -> Loaders:
    """Fresh loaders for one request; each batch opens its own short-lived session (content on `reads`,
    a replica when configured)."""
    content_sessions: ReadSessions = reads or sessions

    async def load_content(ids: Sequence[str]) -> list[Content | None]:
        async with content_sessions() as session:
            rows = {c.content_id: c for c in await ContentRepository(session).list_by_ids(list(ids))}
        return [rows.get(i) for i in ids]

    async def load_users(ids: Sequence[str]) -> list[User | None]:
        async with sessions() as session:
            rows = {u.user_id: u for u in await UserRepository(session).list_by_ids(list(ids))}
        return [rows.get(i) for i in ids]

    async def load_events(keys: Sequence[tuple[str, int]]) -> list[list[Event]]:
        first = max(k[1] for k in keys)
        async with sessions() as session:
            rows = await EventRepository(session).list_latest_for_users(sorted({k[0] for k in keys}), first=first)
        by_user: dict[str, list[Event]] = {}
        for event in rows:
            by_user.setdefault(event.user_id, []).append(event)
        return [by_user.get(user_id, [])[: n + 1] for user_id, n in keys]

    async def count_events(ids: Sequence[str]) -> list[int]:
        async with sessions() as session:
            counts = await EventRepository(session).count_for_users(list(ids))
        return [counts.get(i, 0) for i in ids]

    content_by_id: DataLoader[str, Content | None] = DataLoader(load_fn=load_content)
    user_by_id: DataLoader[str, User | None] = DataLoader(load_fn=load_users)

    async def content_nodes(ids: Sequence[str]) -> list[ContentNode | None]:
        rows = await content_by_id.load_many(ids)
        return [ContentNode.from_model(r) if r else None for r in rows]

    async def user_nodes(ids: Sequence[str]) -> list[UserNode | None]:
        rows = await user_by_id.load_many(ids)
        return [UserNode.from_model(r) if r else None for r in rows]

    return Loaders(
        content_by_id=content_by_id,
        user_by_id=user_by_id,
        content_node=DataLoader(load_fn=content_nodes),
        user_node=DataLoader(load_fn=user_nodes),
        latest_events=DataLoader(load_fn=load_events),
        event_counts=DataLoader(load_fn=count_events),
    )
