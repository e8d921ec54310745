"""Cache keys and the cached form of recommendation results.

A key names the user, the user's and the global cache generations, the active model version
and a digest of the request's arguments: logging an event bumps the user's generation, a
model activation or catalog change bumps the global one, so stale entries are never read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from datetime import datetime

import orjson

from app.services.explain import Reason, ReasonKind
from app.services.request import RecItem, RecRequest, RecResult, Strategy
from app.services.users import result_prefix

# request fields that do not change the answer's content (the user id is in the key's prefix)
NOT_IN_DIGEST = frozenset({"user_id"})


def request_digest(request: RecRequest) -> str:
    """A short, stable digest of every argument that shapes the answer."""
    args = {f.name: getattr(request, f.name) for f in fields(request) if f.name not in NOT_IN_DIGEST}
    args["exclude_ids"] = sorted(request.exclude_ids)
    args["strategy"] = request.strategy.value
    args["controls"] = request.controls.key()  # filter, boosts, diversity, placement and its version
    blob = json.dumps(args, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def result_key(request: RecRequest, *, user_gen: bytes | None, global_gen: bytes | None, version: int) -> str:
    """The cache key of a request under the current generations and model version."""
    return f"{result_prefix(request.user_id)}{_int(user_gen)}:{_int(global_gen)}:{version}:{request_digest(request)}"


def _int(raw: bytes | None) -> int:
    return int(raw) if raw else 0


def encode(result: RecResult) -> bytes:
    """The cached bytes of a result: its dataclasses as JSON objects, enums by value, the timestamp in ISO 8601.

    orjson writes the dataclasses itself: `dataclasses.asdict` first (a deep copy) took 0.34 ms of an uncached
    request, orjson alone 6 us, for the same bytes. (A cached hit's decode was 7.5% of its CPU with json.)
    """
    return orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)


def decode(raw: bytes, *, request_id: str) -> RecResult:
    """A cached result, marked cached and carrying this request's id."""
    data = orjson.loads(raw)
    items = [
        RecItem(
            content_id=item["content_id"],
            score=item["score"],
            rank=item["rank"],
            explanation=item["explanation"],
            reasons=[
                Reason(ReasonKind(r["kind"]), r["anchor_content_id"], r["weight"], r.get("factor"))
                for r in item["reasons"]
            ],
        )
        for item in data["items"]
    ]
    return RecResult(
        user_id=data["user_id"],
        items=items,
        request_id=request_id,
        model_version=data["model_version"],
        response_time_ms=0.0,
        timestamp=datetime.fromisoformat(data["timestamp"]),
        cached=True,
        strategy=Strategy(data["strategy"]),
    )
