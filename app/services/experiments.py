"""A/B experiments: arms with their own strategy and model version, deterministic assignment."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SessionFactory
from app.errors import Conflict, InvalidInput, NotFound
from app.models import Experiment as ExperimentRow
from app.repositories.experiments import ExperimentRepository
from app.services.request import Strategy
from app.services.validation import _Strict, validate

NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,100}$"
PLACEMENT_PATTERN = r"^[a-zA-Z0-9_:.-]{1,100}$"
MAX_ARMS = 10
MEMO_SECONDS = 2.0  # other replicas see a new or stopped experiment within this
TRAFFIC_SLACK = 1e-9


class ArmWrite(_Strict):
    """One arm of an experiment upsert."""

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    strategy: Strategy = Strategy.HYBRID
    model_version: int | None = Field(None, ge=1)
    traffic: float = Field(gt=0, le=1)


class ExperimentWrite(_Strict):
    """An experiment upsert."""

    name: str = Field(pattern=NAME_PATTERN)
    placement: str | None = Field(None, pattern=PLACEMENT_PATTERN)
    active: bool = True
    arms: list[ArmWrite] = Field(min_length=1, max_length=MAX_ARMS)

    @field_validator("arms")
    @classmethod
    def _arms(cls, arms: list[ArmWrite]) -> list[ArmWrite]:
        if len({a.name for a in arms}) != len(arms):
            raise ValueError("arm names must be distinct")
        if sum(a.traffic for a in arms) > 1 + TRAFFIC_SLACK:
            raise ValueError("the arms' traffic must add up to at most 1")
        return arms


@dataclass(frozen=True)
class Arm:
    """An arm: what its share of the traffic is served."""

    name: str
    strategy: Strategy
    model_version: int | None
    traffic: float


@dataclass(frozen=True)
class ExperimentSpec:
    """An experiment as the service uses it."""

    name: str
    placement: str | None
    active: bool
    arms: tuple[Arm, ...]
    created_at: datetime
    updated_at: datetime
    stopped_at: datetime | None

    @classmethod
    def from_row(cls, row: ExperimentRow) -> ExperimentSpec:
        """Build from an ORM row."""
        arms = tuple(
            Arm(a["name"], Strategy(a["strategy"]), a.get("model_version"), float(a["traffic"])) for a in row.arms
        )
        return cls(row.name, row.placement, row.active, arms, row.created_at, row.updated_at, row.stopped_at)

    def assign(self, subject: str) -> Arm | None:
        """The arm of `subject` (a user id or guest id): hash position against cumulative traffic."""
        position = bucket(self.name, subject)
        edge = 0.0
        for arm in self.arms:
            edge += arm.traffic
            if position < edge:
                return arm
        return None  # outside the experiment's traffic: served as usual


def bucket(experiment: str, subject: str) -> float:
    """A uniform, stable position in [0, 1) for (experiment, subject)."""
    digest = hashlib.sha256(f"{experiment}\x1f{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


async def upsert_experiment(session: AsyncSession, *, data: dict[str, Any]) -> ExperimentSpec:
    """Create or replace an experiment; a second running experiment on one placement is a CONFLICT."""
    write = validate(ExperimentWrite, data)
    repo = ExperimentRepository(session)
    await _check_versions(repo, write)
    if write.active and (other := await repo.active_on(write.placement, other_than=write.name)) is not None:
        where = f"placement {write.placement!r}" if write.placement else "requests without a placement"
        raise Conflict(f"experiment {other.name!r} already runs on {where}; stop it first", field="input.placement")
    arms = [a.model_dump(mode="json") for a in write.arms]
    values: dict[str, Any] = {"placement": write.placement, "active": write.active, "arms": arms}
    values["stopped_at"] = None if write.active else datetime.now().astimezone()
    row = await repo.upsert(write.name, values)
    await session.commit()
    return ExperimentSpec.from_row(row)


async def _check_versions(repo: ExperimentRepository, write: ExperimentWrite) -> None:
    wanted = [a.model_version for a in write.arms if a.model_version is not None]
    usable = await repo.versions_with_factors(wanted) if wanted else set()
    for index, arm in enumerate(write.arms):
        if arm.model_version is not None and arm.model_version not in usable:
            field = f"input.arms[{index}].modelVersion"
            raise InvalidInput(f"{field}: model version {arm.model_version} has no stored factors", field=field)


def check_name(name: str) -> str:
    """An experiment name, else BAD_USER_INPUT."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise InvalidInput(f"name: must match {NAME_PATTERN}", field="name")
    return name


def check_placement(placement: str | None) -> str | None:
    """A placement name (or None), else BAD_USER_INPUT."""
    if placement is not None and not re.fullmatch(PLACEMENT_PATTERN, placement):
        raise InvalidInput(f"placement: must match {PLACEMENT_PATTERN}", field="placement")
    return placement


async def stop_experiment(session: AsyncSession, *, name: str) -> ExperimentSpec:
    """Stop an experiment: its arms stop being served; its stats stay."""
    check_name(name)
    repo = ExperimentRepository(session)
    if await repo.get_by_name(name) is None:
        raise NotFound(f"experiment {name!r} not found", field="name")
    await repo.stop(name)
    await session.commit()
    row = await repo.get_by_name(name)
    assert row is not None
    return ExperimentSpec.from_row(row)


async def list_experiments(session: AsyncSession) -> list[ExperimentSpec]:
    """Every experiment, running ones first."""
    return [ExperimentSpec.from_row(r) for r in await ExperimentRepository(session).list_all()]


async def get_experiment(session: AsyncSession, *, name: str) -> ExperimentSpec:
    """One experiment, or NotFound."""
    check_name(name)
    row = await ExperimentRepository(session).get_by_name(name)
    if row is None:
        raise NotFound(f"experiment {name!r} not found", field="name")
    return ExperimentSpec.from_row(row)


class ExperimentDirectory:
    """The running experiments by placement, re-read from the database every couple of seconds."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self._running: dict[str, ExperimentSpec] = {}
        self._read_at = -MEMO_SECONDS
        self._lock = asyncio.Lock()

    async def running(self, placement: str | None) -> ExperimentSpec | None:
        """The experiment running on `placement` (None: requests without a placement), or None."""
        if time.monotonic() - self._read_at >= MEMO_SECONDS:
            async with self._lock:
                if time.monotonic() - self._read_at >= MEMO_SECONDS:
                    await self._refresh()
        return self._running.get(placement or "")

    async def _refresh(self) -> None:
        async with self.sessions() as session:
            rows = await ExperimentRepository(session).list_active()
        self._running = {r.placement or "": ExperimentSpec.from_row(r) for r in rows}
        self._read_at = time.monotonic()

    def forget(self) -> None:
        """Re-read on next use (this process changed an experiment)."""
        self._read_at = -MEMO_SECONDS

    async def assign(self, placement: str | None, subject: str) -> tuple[ExperimentSpec, Arm] | None:
        """The running experiment on `placement` and the subject's arm in it, or None."""
        experiment = await self.running(placement)
        arm = experiment.assign(subject) if experiment else None
        return (experiment, arm) if experiment and arm else None
