"""Paging with `after: requestId`: a page continues the chain of lists it follows.

Nothing is stored for paging beyond the impressions themselves: the chain (which items each
earlier page showed, and to whom) is read from the impression writer's recent lists or from
the `impressions` table. The next page ranks the same request `offset` deeper (the engine's
`RecRequest.offset`); when the first `offset` items of that ranking are exactly what the chain
showed, the page is their continuation — same order. When they are not (the stored list has
expired and the user's events, the model or popularity moved on), the page is recomputed
without everything the chain showed. Either way no item repeats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.db import SessionFactory
from app.errors import InvalidInput
from app.repositories.impressions import ImpressionRepository
from app.services.impressions import Impression
from app.services.sessions import Subject, guest_id

REQUEST_ID = r"^[\x21-\x7e]{1,64}$"
MAX_SHOWN = 1000  # items a chain may have shown (they are all excluded from a recomputed page)


@dataclass(frozen=True)
class Chain:
    """What the pages up to `after` showed, and to whom."""

    after: str
    owner: str
    shown: tuple[str, ...]


async def load_chain(
    sessions: SessionFactory, recent: Mapping[str, Impression], *, after: str, subject: Subject
) -> Chain:
    """The chain ending at `after`; BAD_USER_INPUT when unknown, another's, or too long."""
    if not re.fullmatch(REQUEST_ID, after):
        raise InvalidInput("after: not a requestId", field="after")
    pages = await _pages(sessions, recent, after)
    if not pages:
        raise InvalidInput(f"after: unknown requestId {after!r}", field="after")
    owners = {owner for owner, _ in pages}
    if owners != {subject.key}:
        raise InvalidInput("after: that requestId was served to another user or session", field="after")
    shown = tuple(item for _, items in pages for item in items)
    if len(shown) > MAX_SHOWN:
        raise InvalidInput(f"after: a chain of pages shows at most {MAX_SHOWN} items", field="after")
    return Chain(after, subject.key, shown)


def _owner(user_id: str | None, session_id: str | None) -> str:
    return user_id if user_id is not None else guest_id(session_id or "")


async def _pages(
    sessions: SessionFactory, recent: Mapping[str, Impression], after: str
) -> list[tuple[str, tuple[str, ...]]]:
    """(owner, items) of each page of the chain, oldest first: this process's recent lists, then the
    table for the links it no longer (or never) had; empty when a link is unknown."""
    newest_first: list[tuple[str, tuple[str, ...]]] = []
    current: str | None = after
    while current is not None and current in recent:
        page = recent[current]
        newest_first.append((_owner(page.user_id, page.session_id), page.item_ids))
        current = page.parent_request_id
    older = await _from_table(sessions, current) if current is not None else []
    if current is not None and not older:
        return []
    return older + newest_first[::-1]


async def _from_table(sessions: SessionFactory, after: str) -> list[tuple[str, tuple[str, ...]]]:
    async with sessions() as session:
        rows = await ImpressionRepository(session).chain(after)
    return [(_owner(user, sess), tuple(items)) for _, _, user, sess, items in rows]
