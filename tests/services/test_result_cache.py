"""The cached form of recommendation results: a round trip, and the same bytes as the earlier encoder."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services import result_cache
from app.services.explain import Reason, ReasonKind
from app.services.request import RecItem, RecResult, Strategy

ids = st.text(min_size=1, max_size=12)
scores = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
reasons = st.builds(
    Reason,
    kind=st.sampled_from(list(ReasonKind)),
    anchor_content_id=st.none() | ids,
    weight=scores,
    factor=st.none() | scores,
)
items = st.builds(
    RecItem,
    content_id=ids,
    score=scores | scores.map(np.float64),  # the blend hands numpy floats through
    rank=st.integers(min_value=1, max_value=1000),
    explanation=st.text(max_size=60),
    reasons=st.lists(reasons, max_size=4),
)
results = st.builds(
    RecResult,
    user_id=ids,
    items=st.lists(items, max_size=8),
    request_id=ids,
    model_version=st.none() | st.integers(min_value=1, max_value=10_000),
    response_time_ms=st.floats(min_value=0, max_value=1e5),
    timestamp=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    cached=st.booleans(),
    strategy=st.sampled_from(list(Strategy)),
)


def _asdict_encoding(result: RecResult) -> bytes:
    """The encoder before orjson wrote the dataclasses itself (entries already in a shared Redis)."""
    data = asdict(result)
    data["timestamp"] = result.timestamp.isoformat()
    data["strategy"] = result.strategy.value
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)


@given(results)
@settings(max_examples=150, deadline=None)
def test_decode_gives_back_the_result_marked_cached(result: RecResult) -> None:
    back = result_cache.decode(result_cache.encode(result), request_id="this-request")
    assert back.request_id == "this-request" and back.cached is True and back.response_time_ms == 0.0
    assert (back.user_id, back.model_version, back.timestamp, back.strategy) == (
        result.user_id,
        result.model_version,
        result.timestamp,
        result.strategy,
    )
    assert back.items == [
        RecItem(i.content_id, float(i.score), i.rank, i.explanation, list(i.reasons)) for i in result.items
    ]


@given(results)
@settings(max_examples=150, deadline=None)
def test_the_bytes_are_the_earlier_encoders(result: RecResult) -> None:
    """A rolling deploy reads entries the previous version wrote to Redis, and the other way round."""
    assert orjson.loads(result_cache.encode(result)) == orjson.loads(_asdict_encoding(result))
