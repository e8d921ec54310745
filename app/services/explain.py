"""Typed reasons and human sentences for recommended items."""

from __future__ import annotations

from dataclasses import dataclass

from app.ml.hybrid import Ranked
from app.ml.serving import RECENCY
from app.ml.sources import ReasonKind, spec

__all__ = ["Reason", "ReasonKind", "kind_of", "reasons_for", "sentence"]
NON_PERSONAL = (ReasonKind.POPULARITY, ReasonKind.TRENDING)


def kind_of(source: str) -> ReasonKind:
    """The registry's reason kind of a source (RECENCY for the freshness boost); never a fallback label."""
    return ReasonKind.RECENCY if source == RECENCY else spec(source).kind


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
        kind = kind_of(source)
        if fallback is not None and kind in NON_PERSONAL:
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
        ReasonKind.CO_ENGAGEMENT: "People who engaged with what you did also engaged with this",
        ReasonKind.SEQUENTIAL: "Often next after what you engaged with",
        ReasonKind.CONTENT_SIMILARITY: "Similar to what you engage with",
        ReasonKind.POPULARITY: "Popular with everyone right now",
        ReasonKind.TRENDING: f"Trending in the last {window_hours} hours",
        ReasonKind.RECENCY: "Newly published",
        ReasonKind.COLD_START: "Popular pick while we learn your taste",
        ReasonKind.PERSONALIZATION_OFF: "Popular pick (personalization is off)",
    }[top.kind]
