"""Typed reasons and human sentences for recommended items."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from app.ml.hybrid import RECENCY, Ranked


class ReasonKind(str, Enum):
    """Which source put an item in the list."""

    COLLABORATIVE = "collaborative"
    CONTENT_SIMILARITY = "content_similarity"
    POPULARITY = "popularity"
    TRENDING = "trending"
    RECENCY = "recency"
    COLD_START = "cold_start"
    PERSONALIZATION_OFF = "personalization_off"


SOURCE_KINDS = {
    "collaborative": ReasonKind.COLLABORATIVE,
    "factor_neighbors": ReasonKind.COLLABORATIVE,
    "content": ReasonKind.CONTENT_SIMILARITY,
    "item_neighbors": ReasonKind.CONTENT_SIMILARITY,
    "popular": ReasonKind.POPULARITY,
    "trending": ReasonKind.TRENDING,
    RECENCY: ReasonKind.RECENCY,
}

VERBS = {
    "video": "watched",
    "article": "read",
    "post": "read",
    "audio": "listened to",
    "image": "viewed",
    "product": "looked at",
}


@dataclass(frozen=True)
class Reason:
    """One source's share of an item's score."""

    kind: ReasonKind
    anchor_content_id: str | None
    weight: float


def reasons_for(item: Ranked, fallback: ReasonKind | None) -> list[Reason]:
    """Reasons of a blended item, strongest first; a fallback kind replaces popularity/trending."""
    out = []
    for source, weight in sorted(item.contributions.items(), key=lambda kv: -kv[1]):
        kind = SOURCE_KINDS.get(source, ReasonKind.POPULARITY)
        if fallback is not None and kind in (ReasonKind.POPULARITY, ReasonKind.TRENDING):
            kind = fallback
        out.append(Reason(kind=kind, anchor_content_id=item.anchors.get(source), weight=round(weight, 6)))
    if not out:
        out.append(Reason(kind=fallback or ReasonKind.POPULARITY, anchor_content_id=None, weight=item.score))
    return out


def sentence(reasons: list[Reason], titles: dict[str, tuple[str, str]], *, window_hours: int) -> str:
    """A human sentence for the strongest reason, e.g. "Because you watched Toy Story (1995)"."""
    anchored = [r for r in reasons if r.anchor_content_id in titles]
    if anchored:
        title, content_type = titles[anchored[0].anchor_content_id or ""]
        return f"Because you {VERBS.get(content_type, 'liked')} {title}"
    top = reasons[0]
    return {
        ReasonKind.COLLABORATIVE: "Enjoyed by people with tastes like yours",
        ReasonKind.CONTENT_SIMILARITY: "Similar to what you engage with",
        ReasonKind.POPULARITY: "Popular with everyone right now",
        ReasonKind.TRENDING: f"Trending in the last {window_hours} hours",
        ReasonKind.RECENCY: "Newly published",
        ReasonKind.COLD_START: "Popular pick while we learn your taste",
        ReasonKind.PERSONALIZATION_OFF: "Popular pick (personalization is off)",
    }[top.kind]
