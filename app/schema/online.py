"""GraphQL types of the online loop: stats, experiments, session merges, experiment assignments."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from app.schema.recommendations import Strategy
from app.services import experiments as exp
from app.services import stats


@strawberry.enum(description="What `recommendationStats` groups by.")
class StatsDimension(Enum):
    STRATEGY = strawberry.enum_value("strategy", description="The strategy that served the list.")
    MODEL_VERSION = strawberry.enum_value("model_version", description="The model version that served the list.")
    PLACEMENT = strawberry.enum_value("placement", description="Where the list was shown.")
    EXPERIMENT_ARM = strawberry.enum_value("experiment_arm", description="The experiment and arm it was served under.")


@strawberry.type(description="Online figures of the lists served in a time window, for one group.")
class RecommendationStats:
    strategy: Strategy | None = strawberry.field(description="Strategy, when grouped by STRATEGY.")
    model_version: int | None = strawberry.field(description="Model version, when grouped by MODEL_VERSION.")
    placement: str | None = strawberry.field(description="Placement, when grouped by PLACEMENT.")
    experiment: str | None = strawberry.field(description="Experiment, when grouped by EXPERIMENT_ARM.")
    arm: str | None = strawberry.field(description="Arm, when grouped by EXPERIMENT_ARM.")
    impressions: int = strawberry.field(description="Items shown (a list of 20 is 20 impressions).")
    users: int = strawberry.field(description="Distinct users and anonymous sessions served.")
    clicks: int = strawberry.field(
        description="Shown items with an attributed event (one carrying the list's requestId) of positive weight."
    )
    ctr: float = strawberry.field(description="clicks / impressions.")
    conversions: int = strawberry.field(description="Shown items with an attributed event of a conversion type.")
    conversion_rate: float = strawberry.field(description="conversions / impressions.")

    @classmethod
    def from_domain(cls, row: stats.RecommendationStats) -> RecommendationStats:
        """Build from a service row."""
        return cls(
            strategy=Strategy(row.strategy) if row.strategy else None,
            model_version=row.model_version,
            placement=row.placement,
            experiment=row.experiment,
            arm=row.arm,
            impressions=row.impressions,
            users=row.users,
            clicks=row.clicks,
            ctr=row.ctr,
            conversions=row.conversions,
            conversion_rate=row.conversion_rate,
        )


@strawberry.type(description="One arm of an experiment.")
class ExperimentArm:
    name: str = strawberry.field(description="Arm name, unique in its experiment.")
    strategy: Strategy = strawberry.field(description="The strategy this arm serves.")
    model_version: int | None = strawberry.field(
        description="The model version this arm serves; null serves the active one."
    )
    traffic: float = strawberry.field(description="Share of the placement's users and sessions, in (0, 1].")


@strawberry.type(description="An A/B experiment on one placement.")
class Experiment:
    name: str = strawberry.field(description="Unique name.")
    placement: str | None = strawberry.field(description="The placement it runs on; null: requests without one.")
    active: bool = strawberry.field(description="Whether it is running.")
    arms: list[ExperimentArm] = strawberry.field(description="Its arms, in order; the first is the baseline.")
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it was last changed (UTC).")
    stopped_at: datetime | None = strawberry.field(description="When it was stopped, if it was.")

    @classmethod
    def from_domain(cls, spec: exp.ExperimentSpec) -> Experiment:
        """Build from a service experiment."""
        arms = [
            ExperimentArm(
                name=a.name, strategy=Strategy(a.strategy.value), model_version=a.model_version, traffic=a.traffic
            )
            for a in spec.arms
        ]
        return cls(
            name=spec.name,
            placement=spec.placement,
            active=spec.active,
            arms=arms,
            created_at=spec.created_at,
            updated_at=spec.updated_at,
            stopped_at=spec.stopped_at,
        )


@strawberry.input(description="One arm of an experiment to create or replace.")
class ExperimentArmInput:
    name: str = strawberry.field(description="Arm name (1-64 of a-z, A-Z, 0-9, _ and -).")
    traffic: float = strawberry.field(description="Share of traffic in (0, 1]; the arms' shares add up to at most 1.")
    strategy: Strategy = strawberry.field(default=Strategy.HYBRID, description="The strategy this arm serves.")
    model_version: int | None = strawberry.field(
        default=None, description="A model version with stored factors (active or not); null: the active one."
    )


@strawberry.input(description="An experiment to create or replace (by name).")
class ExperimentInput:
    name: str = strawberry.field(description="Unique name (1-100 of a-z, A-Z, 0-9, _ and -).")
    arms: list[ExperimentArmInput] = strawberry.field(description="1-10 arms; the first is the baseline.")
    placement: str | None = strawberry.field(
        default=None, description="The placement it runs on; null: requests without a placement."
    )
    active: bool = strawberry.field(default=True, description="Run it now (one running experiment per placement).")

    def to_dict(self) -> dict[str, object]:
        """Plain values for the service layer."""
        arms = [
            {"name": a.name, "traffic": a.traffic, "strategy": str(a.strategy.value), "model_version": a.model_version}
            for a in self.arms
        ]
        return {"name": self.name, "placement": self.placement, "active": self.active, "arms": arms}


@strawberry.type(description="The experiment and arm a recommendation list was served under.")
class ExperimentAssignment:
    name: str = strawberry.field(description="The experiment.")
    arm: str = strawberry.field(description="The arm, chosen by a stable hash of (experiment, user or session).")


@strawberry.type(description="Result of `mergeSession`.")
class MergeResult:
    session_id: str = strawberry.field(description="The anonymous session merged.")
    user_id: strawberry.ID = strawberry.field(description="The user it now belongs to.")
    events_moved: int = strawberry.field(description="Events moved by this call (0 when already merged).")
