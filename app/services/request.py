"""One recommendation request: its arguments, its answer, and the job object every stage takes.

`RecRequest` is what the caller asked; `RecJob` is everything computing it needs (the request,
the active model and its serving configuration, the user's history, the filters every source
respects, the blend weights, the repository), built once and passed to every source function
(`app.services.candidates`), the blend and the explanations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from app.ml.serving import FALLBACK, ServingConfig
from app.ml.signals import UserHistory
from app.ml.sources import ReasonKind, Source
from app.repositories.retrieval import Filters, RetrievalRepository
from app.services.controls import Controls

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.services.engine import ActiveModel, Recommender


class Strategy(str, Enum):
    """Which candidate sources a request blends (each strategy's weights are in the serving config)."""

    HYBRID = "hybrid"
    COLLABORATIVE = "collaborative"
    CONTENT_BASED = "content_based"
    POPULAR = "popular"
    TRENDING = "trending"


@dataclass(frozen=True)
class RecRequest:
    """Arguments of one recommendation request.

    The last group is where business controls and sessions plug in: a content filter applied
    inside every source's SQL, score boosts, MMR diversity, paging and a session id.
    """

    user_id: str
    count: int = 10
    content_type: str | None = None
    strategy: Strategy = Strategy.HYBRID
    exclude_ids: tuple[str, ...] = ()
    context: object | None = None
    controls: Controls = field(default_factory=Controls)  # content rules, boosts, MMR diversity, placement
    offset: int = 0  # paging: the result holds the `offset + count` best items (the first `offset` were shown)
    session_id: str | None = None
    model_version: int | None = None  # an experiment arm's version; None serves the active one


@dataclass
class RecItem:
    """One recommended item."""

    content_id: str
    score: float
    rank: int
    explanation: str
    reasons: list[Any]


@dataclass
class RecResult:
    """A full recommendation response."""

    user_id: str
    items: list[RecItem]
    request_id: str
    model_version: int | None
    response_time_ms: float
    timestamp: datetime
    cached: bool
    strategy: Strategy


@dataclass
class RecJob:
    """A request being computed: what every source function, the blend and the explanations read."""

    request: RecRequest
    recommender: Recommender
    model: ActiveModel | None
    config: ServingConfig
    session: AsyncSession
    repo: RetrievalRepository
    history: UserHistory
    personalized: bool
    event_weights: dict[str, float]
    stored_factor: np.ndarray | None = None
    factor_at: float | None = None
    filters: Filters = field(default_factory=Filters)
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def fallback(self) -> ReasonKind | None:
        """Why the request gets non-personal results, if it does."""
        if not self.personalized:
            return ReasonKind.PERSONALIZATION_OFF
        if not self.history:
            return ReasonKind.COLD_START
        return None

    def blend_weights(self) -> dict[str, float]:
        """The strategy's weights from the active configuration, adapted to the history length."""
        if self.fallback is not None:
            return self.config.blend(FALLBACK)
        return self.config.adapt(self.config.blend(self.request.strategy.value), self.history.distinct_items)

    def wants(self, source: Source) -> bool:
        """Whether the blend weighs this source."""
        return self.weights.get(source.value, 0.0) > 0

    @property
    def depth(self) -> int:
        """Candidates fetched per source: as many as the evaluation blends (rank normalisation depends on it)."""
        return max(self.config.candidates, self.request.count + self.request.offset)
