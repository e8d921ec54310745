"""Serving one recommendation list: the function the API resolvers and `recengine export` both call.

Around the engine's `recommend` it adds the online loop: the caller's identity (a user or an
anonymous session), the experiment arm that decides strategy and model version, a request id
of its own per served list, and the impression record (queued, written in the background).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from app.services import recommendations as rec
from app.services.engine import Recommender
from app.services.experiments import Arm, ExperimentDirectory, ExperimentSpec
from app.services.impressions import Impression, ImpressionWriter
from app.services.sessions import Subject

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Serving:
    """What serving needs from the process: the recommender, the impression writer, the experiments."""

    recommender: Recommender
    impressions: ImpressionWriter
    experiments: ExperimentDirectory


@dataclass(frozen=True)
class ServeRequest:
    """A recommendation request as the API states it."""

    subject: Subject
    count: int = 10
    content_type: str | None = None
    strategy: rec.Strategy = rec.Strategy.HYBRID
    exclude_ids: tuple[str, ...] = ()
    context: object | None = None
    placement: str | None = None


@dataclass(frozen=True)
class Assignment:
    """The experiment and arm a request was served under."""

    experiment: str
    arm: str


@dataclass
class Served:
    """A served list with the online loop's additions."""

    result: rec.RecResult
    subject: Subject
    assignment: Assignment | None = None


def new_request_id() -> str:
    """A fresh id per served list (one HTTP request may serve several lists)."""
    return uuid.uuid4().hex


async def serve(serving: Serving, request: ServeRequest, *, http_request_id: str | None = None) -> Served:
    """Recommendations for a user or session, under its experiment arm, recorded as an impression."""
    request_id = new_request_id()
    assigned = await serving.experiments.assign(request.placement, request.subject.key)
    strategy = assigned[1].strategy if assigned else request.strategy
    engine_request = rec.RecRequest(
        user_id=request.subject.key,
        count=request.count,
        content_type=request.content_type,
        strategy=strategy,
        exclude_ids=request.exclude_ids,
        context=request.context,
    )
    result = await rec.recommend(serving.recommender, engine_request, request_id=request_id)
    served = Served(result, request.subject, _assignment(assigned))
    serving.impressions.record(impression_of(served, request.placement))
    if http_request_id:
        logger.debug("list %s served in request %s", request_id, http_request_id)
    return served


def _assignment(assigned: tuple[ExperimentSpec, Arm] | None) -> Assignment | None:
    return Assignment(assigned[0].name, assigned[1].name) if assigned else None


def impression_of(served: Served, placement: str | None, parent: str | None = None) -> Impression:
    """The impression row of a served list."""
    result = served.result
    return Impression(
        request_id=result.request_id,
        user_id=served.subject.user_id,
        session_id=served.subject.session_id,
        strategy=result.strategy.value,
        item_ids=tuple(i.content_id for i in result.items),
        model_version=result.model_version,
        placement=placement,
        experiment=served.assignment.experiment if served.assignment else None,
        arm=served.assignment.arm if served.assignment else None,
        parent_request_id=parent,
        cached=result.cached,
    )
