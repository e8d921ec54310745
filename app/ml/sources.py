"""The source registry: every candidate source declared once, with what it is and what it needs.

Serving (`app.services.candidates`), batch evaluation (`app.ml.strategies`), explanations
(`app.services.explain`), strategies and tuning are all keyed by `Source`; a test asserts
that each of their maps covers every source. The enum's values are the names used in the
blend weights (`app/ml/serving.json`), so a plain string key and a `Source` are the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal


class ReasonKind(str, Enum):
    """Why an item is in a list: the kind of the source that put it there (or a fallback label)."""

    COLLABORATIVE = "collaborative"
    CO_ENGAGEMENT = "co_engagement"
    SEQUENTIAL = "sequential"
    CONTENT_SIMILARITY = "content_similarity"
    POPULARITY = "popularity"
    TRENDING = "trending"
    RECENCY = "recency"
    COLD_START = "cold_start"
    PERSONALIZATION_OFF = "personalization_off"


class Source(str, Enum):
    """A candidate source of the blend."""

    COLLABORATIVE = "collaborative"
    CO_OCCURRENCE = "co_occurrence"
    SEQUENTIAL = "sequential"
    CONTENT = "content"
    ITEM_NEIGHBORS = "item_neighbors"
    FACTOR_NEIGHBORS = "factor_neighbors"
    POPULAR = "popular"
    TRENDING = "trending"


class Need(str, Enum):
    """What a source reads besides the request."""

    HISTORY = "history"  # the user's events
    FACTORS = "factors"  # the active model's ALS factors
    LINKS = "links"  # the active model's precomputed item_links rows
    EMBEDDINGS = "embeddings"  # content embeddings
    EVENTS = "events"  # everyone's events (popularity)


class Family(str, Enum):
    """How a source reacts to history length (see `ServingConfig.adapt`)."""

    COLLABORATIVE = "collaborative"  # learnt from co-engagement: trusted in proportion to history
    CONTENT = "content"  # from item text: carries short histories
    NON_PERSONAL = "non_personal"


@dataclass(frozen=True)
class SourceSpec:
    """What one source is: its reason kind, whether each candidate names an anchor item, its needs."""

    kind: ReasonKind
    anchored: bool
    needs: frozenset[Need]
    family: Family
    link: bool = False  # read from item_links (one aggregate query for all link sources)
    combine: Literal["sum", "max"] = "sum"  # how a neighbour's links from several user items add up
    summary: str = ""


def _needs(*needs: Need) -> frozenset[Need]:
    return frozenset(needs)


SPECS: dict[Source, SourceSpec] = {
    Source.COLLABORATIVE: SourceSpec(
        ReasonKind.COLLABORATIVE,
        False,
        _needs(Need.HISTORY, Need.FACTORS),
        Family.COLLABORATIVE,
        summary="items by inner product with the user's ALS vector (HNSW)",
    ),
    Source.CO_OCCURRENCE: SourceSpec(
        ReasonKind.CO_ENGAGEMENT,
        True,
        _needs(Need.HISTORY, Need.LINKS),
        Family.COLLABORATIVE,
        link=True,
        summary="sum over the user's strongest items of weight x EASE/cosine link weight",
    ),
    Source.SEQUENTIAL: SourceSpec(
        ReasonKind.SEQUENTIAL,
        True,
        _needs(Need.HISTORY, Need.LINKS),
        Family.COLLABORATIVE,
        link=True,
        summary="items that came next after the user's latest items in other users' ordered histories",
    ),
    Source.CONTENT: SourceSpec(
        ReasonKind.CONTENT_SIMILARITY,
        False,
        _needs(Need.HISTORY, Need.EMBEDDINGS),
        Family.CONTENT,
        summary="items by cosine to the mean embedding of the user's strongest items (HNSW)",
    ),
    Source.ITEM_NEIGHBORS: SourceSpec(
        ReasonKind.CONTENT_SIMILARITY,
        True,
        _needs(Need.HISTORY, Need.EMBEDDINGS, Need.LINKS),
        Family.CONTENT,
        link=True,
        combine="max",
        summary="embedding neighbours of the user's latest items (best anchor kept)",
    ),
    Source.FACTOR_NEIGHBORS: SourceSpec(
        ReasonKind.COLLABORATIVE,
        True,
        _needs(Need.HISTORY, Need.FACTORS, Need.LINKS),
        Family.COLLABORATIVE,
        link=True,
        combine="max",
        summary="ALS item-factor (cosine) neighbours of the user's latest items (best anchor kept)",
    ),
    Source.POPULAR: SourceSpec(
        ReasonKind.POPULARITY,
        False,
        _needs(Need.EVENTS),
        Family.NON_PERSONAL,
        summary="distinct sharing users per item, all time",
    ),
    Source.TRENDING: SourceSpec(
        ReasonKind.TRENDING,
        False,
        _needs(Need.EVENTS),
        Family.NON_PERSONAL,
        summary="distinct sharing users per item in the window before now",
    ),
}

LINK_SOURCES: tuple[Source, ...] = tuple(s for s, spec in SPECS.items() if spec.link)
ANCHORED: frozenset[Source] = frozenset(s for s, spec in SPECS.items() if spec.anchored)


def spec(source: str) -> SourceSpec:
    """The spec of a source given by name or enum (ValueError for an unknown name)."""
    return SPECS[Source(source)]
