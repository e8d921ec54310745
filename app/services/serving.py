"""Serving one recommendation list: the function the API resolvers and `recengine export` both call.

Around the engine's `recommend` it adds the online loop: the caller's identity (a user or an
anonymous session), the experiment arm that decides strategy and model version, a request id
of its own per served list, and the impression record (queued, written in the background).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace

from app.errors import InvalidInput
from app.services import controls as controls_service
from app.services import paging
from app.services import recommendations as rec
from app.services.controls import ControlArgs
from app.services.engine import Recommender
from app.services.experiments import Arm, ExperimentDirectory, ExperimentSpec, check_placement
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
    count: int | None = None  # None: the placement's, else 10
    content_type: str | None = None
    strategy: rec.Strategy | None = None  # None: the placement's, else HYBRID
    exclude_ids: tuple[str, ...] = ()
    context: object | None = None
    placement: str | None = None
    after: str | None = None  # the requestId of the page this one follows
    controls: ControlArgs = field(
        default_factory=ControlArgs
    )  # explicit filter, boosts and diversity (the placement fills the rest)


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
    check_placement(request.placement)
    explicit = replace(
        request.controls,
        placement=request.placement,
        count=request.count,
        strategy=request.strategy.value if request.strategy else None,
    )
    resolved = await controls_service.resolve(serving.recommender.sessions, explicit)
    assigned = await serving.experiments.assign(request.placement, request.subject.key)
    arm = assigned[1] if assigned else None
    engine_request = rec.RecRequest(
        user_id=request.subject.key,
        count=resolved.count,
        content_type=request.content_type,
        strategy=arm.strategy if arm else rec.Strategy(resolved.strategy),
        exclude_ids=request.exclude_ids,
        context=request.context,
        controls=resolved.controls,
        model_version=arm.model_version if arm else None,
    )
    if request.after is None:
        result = await rec.recommend(serving.recommender, engine_request, request_id=request_id)
    else:
        result = await _next_page(serving, engine_request, request, request_id=request_id)
    served = Served(result, request.subject, _assignment(assigned))
    serving.impressions.record(impression_of(served, request.placement, parent=request.after))
    if http_request_id:
        logger.debug("list %s served in request %s", request_id, http_request_id)
    return served


async def _next_page(
    serving: Serving, engine_request: rec.RecRequest, request: ServeRequest, *, request_id: str
) -> rec.RecResult:
    """The page after `request.after`: the same ranking continued, or recomputed without what was shown."""
    chain = await paging.load_chain(
        serving.recommender.sessions, serving.impressions.recent, after=str(request.after), subject=request.subject
    )
    if len(chain.shown) + len(request.exclude_ids) > paging.MAX_SHOWN:
        raise InvalidInput(f"after: a chain plus excludeIds may hide at most {paging.MAX_SHOWN} items", field="after")
    shown = len(chain.shown)
    deeper = replace(engine_request, offset=shown)
    result = await rec.recommend(serving.recommender, deeper, request_id=request_id)
    if [i.content_id for i in result.items[:shown]] == list(chain.shown):
        result.items = result.items[shown:]  # ranks go on from shown + 1
        return result
    fresh = replace(engine_request, exclude_ids=(*engine_request.exclude_ids, *chain.shown))
    result = await rec.recommend(serving.recommender, fresh, request_id=request_id)
    for item in result.items:
        item.rank += shown
    return result


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
