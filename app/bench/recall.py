"""HNSW recall@10 on content.embedding against exact search (index scans off), filtered and not."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import numpy as np

from app.bench import synth
from app.bench.load import connect
from app.repositories.filters import ContentRules
from app.repositories.retrieval import Filters

QUERY = """SELECT content_id FROM content
           WHERE embedding IS NOT NULL AND status = 'published' {filter}
           ORDER BY (embedding <=> $1){order} LIMIT 10"""
NARROW = "AND category = ANY($2::text[]) AND metadata @> $3::jsonb"
# none; the sampled item's content type; the bench's ~5% category + metadata filter (synth.FILTER), ranked
# as the service ranks it (Filters.order_suffix: exactly, for narrow rules) and, for reference, by the
# HNSW graph walk the service no longer uses for such filters
FILTERS = {
    "none": "",
    "content_type": "AND content_type = $2",
    "category+metadata": NARROW,
    "category+metadata (hnsw walk)": NARROW,
}


def _order(name: str) -> str:
    """How the service orders this filter's nearest neighbours (the same Filters rule)."""
    if name == "category+metadata":
        rules = ContentRules(
            categories=tuple(synth.FILTER["categories"]), metadata=json.dumps(synth.FILTER["metadata"], sort_keys=True)
        )
        return Filters(rules=rules).order_suffix
    return ""


@dataclass
class Recall:
    """Mean recall@10 of the HNSW index over sampled queries."""

    size: int
    filtered: bool
    filter: str
    ef_search: int
    recall_at_10: float
    queries: int
    hnsw_ms_p50: float
    exact_ms_p50: float

    def row(self) -> dict[str, Any]:
        """The bench.json form."""
        return asdict(self)


async def _queries(conn: asyncpg.Connection, n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    """Perturbed embeddings of sampled published items (not exact copies), with each item's type."""
    rows = await conn.fetch(
        "SELECT embedding, content_type FROM content WHERE status = 'published' "
        "ORDER BY md5(content_id || $1) "
        "LIMIT $2",
        str(seed),
        n,
    )
    rng = np.random.default_rng(seed)
    out = []
    for r in rows:
        raw = r[0].to_numpy() if hasattr(r[0], "to_numpy") else r[0]
        v = np.asarray(raw, dtype=np.float32) + 0.03 * rng.standard_normal(384).astype(np.float32)
        out.append((v / np.linalg.norm(v), str(r[1])))
    return out


def _args(name: str, ctype: str) -> list[Any]:
    if name == "content_type":
        return [ctype]
    if name.startswith("category+metadata"):
        return [synth.FILTER["categories"], json.dumps(synth.FILTER["metadata"])]
    return []


async def _top(
    conn: asyncpg.Connection, vector: np.ndarray, name: str, ctype: str, exact: bool
) -> tuple[set[str], float]:
    import time

    sql = QUERY.format(filter=FILTERS[name], order="" if exact else _order(name))
    args: list[Any] = [vector, *_args(name, ctype)]
    async with conn.transaction():
        if exact:
            await conn.execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off")
        started = time.perf_counter()
        rows = await conn.fetch(sql, *args)
        return {r[0] for r in rows}, (time.perf_counter() - started) * 1000


async def measure_recall(
    url: str, size: int, *, ef_values: tuple[int, ...], queries: int = 50, seed: int = 7
) -> list[Recall]:
    """Recall@10 per (filtered, ef_search); iterative scans on (relaxed_order)."""
    conn = await connect(url)
    try:
        await conn.execute("SET hnsw.iterative_scan = relaxed_order")
        sample = await _queries(conn, queries, seed)
        truth = {f: [await _top(conn, v, f, t, True) for v, t in sample] for f in FILTERS}
        out = []
        for name in FILTERS:
            for ef in ef_values:
                await conn.execute(f"SET hnsw.ef_search = {int(ef)}")
                got = [await _top(conn, v, name, t, False) for v, t in sample]
                hits = [len(g[0] & e[0]) / max(1, min(10, len(e[0]))) for g, e in zip(got, truth[name], strict=True)]
                out.append(
                    Recall(
                        size,
                        name != "none",
                        name,
                        ef,
                        round(float(np.mean(hits)), 4),
                        len(sample),
                        round(float(np.median([g[1] for g in got])), 3),
                        round(float(np.median([e[1] for e in truth[name]])), 3),
                    )
                )
        return out
    finally:
        await conn.close()
