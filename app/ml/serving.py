"""The serving configuration as data: blend weights, anchors, decay, ALS and link settings.

`app/ml/serving.json` is the one place of defaults. `recengine evaluate` writes the values it
chose on validation to a file of this shape; `recengine train --config FILE` stores the file in
the model version's `params`; the service reads the blend from the *active* version, so
activating an older model rolls its weights back together with its factors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.ml.sources import SPECS, Family, Source

DEFAULT_PATH = Path(__file__).with_name("serving.json")
RECENCY = "recency"  # the freshness boost of `hybrid.blend`; weighted like a source, not a source
FALLBACK = "fallback"  # the blend of users with no history or personalization off
STRATEGIES = ("hybrid", "collaborative", "content_based", "popular", "trending", FALLBACK)


class _Frozen(BaseModel):
    """Immutable, and unknown keys are an error (a typo in a config file must not pass)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class HistoryAdaptation(_Frozen):
    """Short histories trust collaborative sources less and content more."""

    short_history: int = Field(ge=0, description="Distinct items at which weights are used unchanged.")
    content_boost: float = Field(ge=0, description="Share of the total weight moved to content at 0 items.")


class ALSParams(_Frozen):
    """Hyper-parameters of the ALS model behind collaborative and factor neighbours."""

    factors: int = Field(ge=2)
    regularization: float = Field(ge=0)
    alpha: float = Field(gt=0)
    iterations: int = Field(ge=1)


class LinkParams(_Frozen):
    """The item-to-item tables written at training (`item_links`, one `source` per table)."""

    kind: Literal["ease", "cosine"]
    neighbors: int = Field(ge=1, description="Links kept per item for co_occurrence (EASE).")
    regularization: float = Field(gt=0, description="EASE lambda.")
    cosine_neighbors: int = Field(ge=1, description="Links kept per item for co_occurrence (cosine).")
    sequential_neighbors: int = Field(ge=1)
    embedding_neighbors: int = Field(ge=1)
    factor_neighbors: int = Field(ge=1)


class ServingConfig(_Frozen):
    """Everything tuned on validation that the served blend depends on."""

    weights: dict[str, dict[str, float]]
    candidates: int = Field(ge=1, description="Candidates per source, in serving and evaluation alike.")
    history_events: int = Field(ge=1, description="A user's latest events the sources start from.")
    anchor_items: int = Field(ge=1, description="Latest items whose neighbours are candidates.")
    link_items: int = Field(ge=1, description="Strongest history items summed over by co_occurrence.")
    history: HistoryAdaptation
    half_life_days: float | None = Field(gt=0, description="Decay of event weights; null = no decay.")
    trending_window_days: float = Field(gt=0)
    als: ALSParams
    links: LinkParams

    @field_validator("weights")
    @classmethod
    def _known(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        missing = [s for s in STRATEGIES if s not in value]
        if missing:
            raise ValueError(f"weights must give every strategy; missing {missing}")
        for strategy, blend in value.items():
            for name, weight in blend.items():
                if name != RECENCY:
                    Source(name)  # ValueError names the unknown source
                if weight < 0:
                    raise ValueError(f"weights.{strategy}.{name} must be >= 0")
        return value

    def blend(self, strategy: str) -> dict[str, float]:
        """Weights of a strategy's sources."""
        return dict(self.weights[strategy])

    def adapt(self, weights: Mapping[str, float], history_length: int) -> dict[str, float]:
        """Trust collaborative sources in proportion to history length; content carries short histories.

        Factors or co-engagements learnt from a handful of events mostly point at the popular
        mainstream, while the content sources already see what those few items have in common.
        At `short_history` distinct items or more the weights are returned unchanged.
        """
        short = self.history.short_history
        trust = 1.0 if short == 0 else min(1.0, max(history_length, 0) / short)
        total = sum(max(float(w), 0.0) for name, w in weights.items() if name != RECENCY) or 1.0
        out = dict(weights)
        for name, weight in weights.items():
            family = SPECS[Source(name)].family if name != RECENCY else Family.NON_PERSONAL
            if family is Family.COLLABORATIVE:
                out[name] = float(weight) * trust
            elif family is Family.CONTENT:  # a strategy only ever blends the sources it names
                out[name] = float(weight) + (1.0 - trust) * self.history.content_boost * total
        return out

    def used_sources(self) -> set[Source]:
        """Every source some strategy weighs above zero."""
        return {Source(n) for blend in self.weights.values() for n, w in blend.items() if w > 0 and n != RECENCY}

    def to_params(self) -> dict[str, Any]:
        """As stored in `model_versions.params` (JSON)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> ServingConfig:
        """The configuration a model version was trained with (the defaults for versions without one)."""
        if not params or "weights" not in params:
            return default_config()
        return cls.model_validate({k: v for k, v in params.items() if k in cls.model_fields})

    @classmethod
    def load(cls, path: Path | None = None) -> ServingConfig:
        """Read a configuration file (the committed default when no path is given)."""
        if path is None:
            return default_config()
        return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))

    def save(self, path: Path) -> None:
        """Write as JSON (the file `recengine train --config` reads)."""
        Path(path).write_text(json.dumps(self.to_params(), indent=2) + "\n", encoding="utf-8")


@lru_cache(maxsize=1)
def default_config() -> ServingConfig:
    """The committed `app/ml/serving.json`."""
    return ServingConfig.model_validate(json.loads(DEFAULT_PATH.read_text(encoding="utf-8")))
