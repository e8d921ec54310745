"""Candidate retrieval in SQL: a request's user state in one statement, all its candidates in another.

`user_state` reads the user's privacy choice, stored ALS vector and latest events at once;
`candidates` reads, in one statement, every link source's neighbours of the user's items (one
aggregate over `item_links`), the collaborative and content-profile HNSW scans, and the titles
of the items that can be named as anchors. Every filter is inside each branch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.ml.hybrid import Candidate
from app.models import Content
from app.repositories.arrays import among
from app.repositories.filters import ContentRules, eligible_sql
from app.repositories.popularity import POPULAR_SQL, WINDOW_SQL

TITLES = "title"
MATCHING = "matching"
COLUMNS = "branch, content_id, score, anchor, title, ctype, ids"
# Narrow rules ship the ids of every matching item (for ranking by the in-memory item factors) up to this many;
# past it the collaborative branch ranks in SQL instead (`collaborative_exact`).
MATCH_CAP = 50_000

USER_STATE = """
SELECT coalesce((u.privacy_settings->>'personalization')::boolean, true) AS personalized,
       CAST(uf.factors AS real[]) AS factors,
       extract(epoch FROM uf.updated_at)::float8 AS factor_at,
       h.items, h.types, h.vals, h.stamps
FROM users u
LEFT JOIN user_factors uf ON uf.model_version_id = :version AND uf.user_id = u.user_id
LEFT JOIN LATERAL (
    SELECT array_agg(e.content_id ORDER BY e."timestamp" DESC, e.content_id DESC) AS items,
           array_agg(e.event_type ORDER BY e."timestamp" DESC, e.content_id DESC) AS types,
           array_agg(e.value ORDER BY e."timestamp" DESC, e.content_id DESC) AS vals,
           array_agg(extract(epoch FROM e."timestamp")::float8 ORDER BY e."timestamp" DESC, e.content_id DESC) AS stamps
    FROM (
        SELECT content_id, event_type, value, "timestamp" FROM events
        WHERE user_id = u.user_id ORDER BY "timestamp" DESC, content_id DESC LIMIT :limit
    ) e
) h ON true
WHERE u.user_id = :user"""

# One aggregate over item_links for every link source: sum (or max) of link weight x seed weight per
# (source, neighbour), anchored on the seed contributing most; then the top :k per source that pass the filters.
# The anchor is an arg-max without sorting: max(ARRAY[contribution, -seed position]) picks the largest
# contribution, then the earliest seed (seeds are shipped in id order, so ties go to the smallest id). An
# ordered array_agg sorted every seed-neighbour pair by its text keys instead (a third of the statement for a
# long history); with `weight` in the primary key's INCLUDE the join reads the index alone.
LINKED = """linked AS MATERIALIZED (
    SELECT l.source, l.neighbor_id,
           CASE WHEN l.source = ANY(CAST(:max_sources AS text[])) THEN max(l.weight * s.w)
                ELSE sum(l.weight * s.w) END AS score,
           (CAST(:seed_items AS text[]))[-(max(ARRAY[l.weight * s.w, -s.n]))[2]::int] AS anchor
    FROM unnest(CAST(:seed_sources AS text[]), CAST(:seed_items AS text[]), CAST(:seed_weights AS float8[]))
         WITH ORDINALITY AS s(source, item, w, n)
    JOIN item_links l ON l.model_version_id = {version} AND l.content_id = s.item AND l.source = s.source
    GROUP BY l.source, l.neighbor_id
)"""
LINKS = """
(SELECT t.source, t.neighbor_id, t.score, t.anchor, NULL::text, NULL::text, NULL::text[] FROM ({top}) t)"""
# Broad rules: each source's neighbours are read best first and their content rows probed only until :k pass
# (ranking every neighbour after probing all of them was a fifth of the statement on MovieLens). Narrow rules
# (Filters.exact): a hash join with the rows the statement matched already, then the ranking.
TOP_PROBED = """
SELECT a.source, a.neighbor_id, a.score, a.anchor FROM unnest(CAST(:link_sources AS text[])) AS src(source)
CROSS JOIN LATERAL (
    SELECT a.source, a.neighbor_id, a.score, a.anchor
    FROM (SELECT * FROM linked x WHERE x.source = src.source ORDER BY x.score DESC, x.neighbor_id) a
    JOIN content c ON c.content_id = a.neighbor_id WHERE {filter}
    ORDER BY a.score DESC, a.neighbor_id LIMIT :k
) a"""
TOP_AMONG_MATCHED = """
SELECT r.source, r.neighbor_id, r.score, r.anchor FROM (
    SELECT a.source, a.neighbor_id, a.score, a.anchor,
           row_number() OVER (PARTITION BY a.source ORDER BY a.score DESC, a.neighbor_id) AS rn
    FROM linked a JOIN matching c ON c.content_id = a.neighbor_id
) r WHERE r.rn <= :k"""

# {version} and {dim} are integers from our own registry, inlined so the per-version partial index applies.
# Narrow rules never walk this index (its filtered walk misses far-away matches): they rank the matching rows
# exactly (MATCHED below, or COLLABORATIVE_EXACT past MATCH_CAP).
COLLABORATIVE = """
(SELECT 'collaborative', f.content_id,
        -((f.factors::vector({dim})) <#> CAST(:user_vector AS vector({dim})))::float8, NULL, NULL, NULL, NULL::text[]
 FROM item_factors f JOIN content c ON c.content_id = f.content_id
 WHERE f.model_version_id = {version} AND {filter}
 ORDER BY ((f.factors::vector({dim})) <#> CAST(:user_vector AS vector({dim})))
 LIMIT :k)"""

# Exact ranking for narrow filters matching more than MATCH_CAP rows: the matching content rows first (bitmap
# scans; OFFSET 0 keeps the planner from sorting every item's factors and probing content afterwards), then
# their factors.
COLLABORATIVE_EXACT = """
(SELECT 'collaborative', f.content_id,
        -((f.factors::vector({dim})) <#> CAST(:user_vector AS vector({dim})))::float8, NULL, NULL, NULL, NULL::text[]
 FROM (SELECT c.content_id FROM content c WHERE {filter} OFFSET 0) c
 JOIN item_factors f ON f.model_version_id = {version} AND f.content_id = c.content_id
 ORDER BY ((f.factors::vector({dim})) <#> CAST(:user_vector AS vector({dim}))) + 0
 LIMIT :k)"""

PROFILE = "(SELECT avg(p.embedding) FROM content p WHERE p.content_id = ANY(CAST(:profile_items AS text[])))"
CONTENT = f"""
(SELECT 'content', c.content_id, (1 - (c.embedding <=> {PROFILE}))::float8, NULL, NULL, NULL, NULL::text[]
 FROM content c
 WHERE c.embedding IS NOT NULL AND {{filter}}
 ORDER BY (c.embedding <=> {PROFILE}){{exact}}
 LIMIT :k)"""

# Narrow rules (Filters.exact): the matching rows are read once, with their distance to the profile when there
# is one. The content branch takes the nearest; the ids of all of them (up to MATCH_CAP) come back in one array
# for the collaborative ranking, done with the model's item factors held in memory (no item_factors scan).
MATCHED = """matching AS MATERIALIZED (
    SELECT c.content_id, {distance} AS d FROM content c WHERE {filter}
)"""
CONTENT_MATCHED = """
(SELECT 'content', m.content_id, (1 - m.d)::float8, NULL, NULL, NULL, NULL::text[]
 FROM matching m WHERE m.d IS NOT NULL ORDER BY m.d LIMIT :k)"""
MATCHED_IDS = f"""
(SELECT '{MATCHING}', NULL::text, count(*)::float8, NULL, NULL, NULL,
        CASE WHEN count(*) <= :match_cap THEN array_agg(m.content_id) END
 FROM matching m)"""

# A process-wide top list (popular, trending) shipped in, filtered here: for long histories, whose consumed
# items only the anti-join in {filter} can remove.
LISTED = """
(SELECT r.source, r.content_id, r.score, NULL, NULL::text, NULL::text, NULL::text[] FROM (
    SELECT s.source, s.content_id, s.score,
           row_number() OVER (PARTITION BY s.source ORDER BY s.score DESC, s.content_id) AS rn
    FROM unnest(CAST(:listed_sources AS text[]), CAST(:listed_items AS text[]), CAST(:listed_scores AS float8[]))
         AS s(source, content_id, score)
    JOIN content c ON c.content_id = s.content_id
    WHERE {filter}
) r WHERE r.rn <= :k)"""

ANCHOR_TITLES = f"""
(SELECT '{TITLES}', c.content_id, NULL::float8, NULL, c.title, c.content_type, NULL::text[]
 FROM content c WHERE c.content_id = ANY(CAST(:title_items AS text[])))"""

EMBEDDING_NEIGHBORS = """
SELECT n.content_id, n.score
FROM content src
CROSS JOIN LATERAL (
    SELECT c.content_id, 1 - (c.embedding <=> src.embedding) AS score
    FROM content c
    WHERE c.embedding IS NOT NULL AND {filter}
    ORDER BY (c.embedding <=> src.embedding){exact}
    LIMIT :k
) n
WHERE src.content_id = :item AND src.embedding IS NOT NULL
ORDER BY n.score DESC"""

# One item's precomputed neighbours of one link source (the active version's table), filters inside.
LINK_NEIGHBORS = """
SELECT l.neighbor_id, l.weight
FROM item_links l JOIN content c ON c.content_id = l.neighbor_id
WHERE l.model_version_id = :version AND l.content_id = :item AND l.source = :source AND {filter}
ORDER BY l.weight DESC, l.neighbor_id
LIMIT :k"""

NEWEST = """
SELECT c.content_id, extract(epoch FROM coalesce(c.published_at, c.created_at))::float8 AS score
FROM content c WHERE {filter}
ORDER BY score DESC, c.content_id
LIMIT :k"""


@dataclass(frozen=True)
class Filters:
    """What every source must respect: published and available now, a content type, exclusions, the
    request's content rules and (re-ranking) the only ids allowed.

    `exclude` ids are shipped with the statement; `exclude_user` excludes everything that user
    has an event with by an anti-join on `events` instead (long histories). Status, availability
    window, content rules and `only` come from `app.repositories.filters.eligible` (the one
    definition of a content filter), rendered into `sql()` so that every branch applies it.
    """

    content_type: str | None = None
    exclude: tuple[str, ...] = ()
    exclude_user: str | None = None
    rules: ContentRules | None = None
    only: tuple[str, ...] | None = None

    def excluding(self, more: Iterable[str]) -> Filters:
        """The same filters with more ids excluded."""
        return replace(self, exclude=tuple(sorted(set(self.exclude) | set(more))))

    @property
    def exact(self) -> bool:
        """Whether nearest-neighbour branches rank the matching rows exactly (narrow rules, or an id list)."""
        return self.only is not None or (self.rules is not None and self.rules.narrow)

    @property
    def order_suffix(self) -> str:
        """Appended to a distance in ORDER BY: `+ 0` hides it from the HNSW index when ranking is exact."""
        return " + 0" if self.exact else ""

    @property
    def shared(self) -> bool:
        """Whether results may come from a list shared by requests (no per-request id restriction)."""
        return self.only is None

    def sql(self) -> str:
        """The WHERE fragment over alias `c` (content)."""
        parts = [
            eligible_sql(self.rules, self.only).sql,
            "(CAST(:ctype AS text) IS NULL OR c.content_type = CAST(:ctype AS text))",
            "c.content_id <> ALL(CAST(:excl AS text[]))",
        ]
        if self.exclude_user is not None:
            parts.append("NOT EXISTS (SELECT 1 FROM events x WHERE x.user_id = :xuser AND x.content_id = c.content_id)")
        return " AND ".join(parts)

    def params(self) -> dict[str, Any]:
        """The fragment's parameters."""
        out: dict[str, Any] = {"ctype": self.content_type, "excl": list(self.exclude)}
        out |= eligible_sql(self.rules, self.only).params
        if self.exclude_user is not None:
            out["xuser"] = self.exclude_user
        return out


@dataclass(frozen=True)
class UserState:
    """What the first statement of a request reads: privacy, stored vector, latest events (newest first)."""

    known: bool
    personalized: bool = True
    factor: np.ndarray | None = None
    factor_at: float | None = None
    rows: list[tuple[str, str, float | None, float]] = field(default_factory=list)


@dataclass
class CandidateQuery:
    """What the candidate statement is asked for; each source fills its part (`app.services.candidates`)."""

    version: int | None
    dim: int
    k: int
    seeds: list[tuple[str, str, float]] = field(default_factory=list)  # (source, item, weight)
    max_sources: set[str] = field(default_factory=set)
    user_vector: np.ndarray | None = None
    profile_items: list[str] = field(default_factory=list)
    title_items: set[str] = field(default_factory=set)
    listed: dict[str, list[Candidate]] = field(default_factory=dict)  # shared lists to filter (long histories)

    def empty(self) -> bool:
        """Nothing to read."""
        return not (self.seeds or self.user_vector is not None or self.profile_items or self.title_items or self.listed)


@dataclass
class CandidateRows:
    """The statement's answer: candidates per source, and (title, content type) of anchor items."""

    sources: dict[str, list[Candidate]] = field(default_factory=dict)
    titles: dict[str, tuple[str, str]] = field(default_factory=dict)
    matching: list[str] | None = None  # narrow rules: every matching id (None when not asked or past MATCH_CAP)


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{float(x):.8g}" for x in np.asarray(vector).ravel()) + "]"


class RetrievalRepository:
    """The statements of the recommendation pipeline."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def user_state(self, user_id: str, *, version: int | None, limit: int) -> UserState:
        """The user's personalization choice, stored vector under `version` and latest `limit` events."""
        params = {"user": user_id, "version": -1 if version is None else int(version), "limit": limit}
        row = (await self.session.execute(text(USER_STATE), params)).first()
        if row is None:
            return UserState(known=False)
        items, types, vals, stamps = row.items or [], row.types or [], row.vals or [], row.stamps or []
        factor = np.asarray(row.factors, dtype=np.float32) if row.factors is not None else None
        rows = list(zip(items, types, vals, stamps, strict=True))
        return UserState(True, bool(row.personalized), factor, row.factor_at, rows)

    async def candidates(self, query: CandidateQuery, f: Filters) -> CandidateRows:
        """Every branch the query asks for, in one statement."""
        out = CandidateRows()
        if query.empty():
            return out
        prefix, branches, params = self._branches(query, f)
        sql = prefix + f"SELECT {COLUMNS} FROM (" + "\nUNION ALL\n".join(branches) + f") AS b({COLUMNS})"
        for branch, cid, score, anchor, title, ctype, ids in await self.session.execute(text(sql), params):
            if branch == TITLES:
                out.titles[cid] = (title, ctype)
            elif branch == MATCHING:
                out.matching = list(ids) if ids is not None else None
            else:
                out.sources.setdefault(branch, []).append(Candidate(cid, float(score), anchor))
        return out

    @staticmethod
    def _matched(query: CandidateQuery, f: Filters) -> bool:
        """Whether the statement reads the matching rows once (narrow rules with a vector branch to feed)."""
        collaborative = query.user_vector is not None and query.version is not None
        return f.exact and (collaborative or bool(query.profile_items))

    async def collaborative_exact(self, query: CandidateQuery, f: Filters) -> list[Candidate]:
        """The collaborative branch alone, ranked in SQL over the matching rows (more than MATCH_CAP of them)."""
        assert query.user_vector is not None and query.version is not None
        sql = COLLABORATIVE_EXACT.format(version=int(query.version), dim=int(query.dim), filter=f.sql())
        params = {"k": query.k, "user_vector": _vector_literal(query.user_vector), **f.params()}
        return [Candidate(r[1], float(r[2])) for r in await self.session.execute(text(sql), params)]

    def _branches(self, query: CandidateQuery, f: Filters) -> tuple[str, list[str], dict[str, Any]]:
        """The statement's WITH prefix (the matched rows, under narrow rules), its branches and parameters."""
        where = f.sql()
        params: dict[str, Any] = {"k": query.k, **f.params()}
        branches: list[str] = []
        version = int(query.version) if query.version is not None else None
        matched = self._matched(query, f)
        ctes: list[str] = []
        if matched:
            distance = f"(c.embedding <=> {PROFILE})" if query.profile_items else "NULL::float8"
            ctes.append(MATCHED.format(distance=distance, filter=where))
        if query.seeds and version is not None:
            top = TOP_AMONG_MATCHED if matched else TOP_PROBED.format(filter=where)
            ctes.append(LINKED.format(version=version))
            branches.append(LINKS.format(top=top))
            if not matched:
                params["link_sources"] = sorted({source for source, _, _ in query.seeds})
            sources, items, weights = zip(*sorted(query.seeds, key=lambda s: (s[1], s[0])), strict=True)
            params |= {
                "seed_sources": list(sources),
                "seed_items": list(items),
                "seed_weights": [float(w) for w in weights],
                "max_sources": sorted(query.max_sources),
            }
        if matched:  # narrow rules: one read of the matching rows feeds both vector branches (and LINKS)
            if query.profile_items:
                branches.append(CONTENT_MATCHED)
                params["profile_items"] = list(query.profile_items)
            if query.user_vector is not None and version is not None:
                branches.append(MATCHED_IDS)
                params["match_cap"] = MATCH_CAP
        else:
            if query.user_vector is not None and version is not None:
                branches.append(COLLABORATIVE.format(version=version, dim=int(query.dim), filter=where))
                params["user_vector"] = _vector_literal(query.user_vector)
            if query.profile_items:
                branches.append(CONTENT.format(filter=where, exact=f.order_suffix))
                params["profile_items"] = list(query.profile_items)
        if query.listed:
            branches.append(LISTED.format(filter=where))
            listed = [(source, c.item_id, c.score) for source, found in query.listed.items() for c in found]
            params |= {
                "listed_sources": [r[0] for r in listed],
                "listed_items": [r[1] for r in listed],
                "listed_scores": [float(r[2]) for r in listed],
            }
        if query.title_items:
            branches.append(ANCHOR_TITLES)
            params["title_items"] = sorted(query.title_items)
        prefix = "WITH " + ",\n".join(ctes) + "\n" if ctes else ""
        return prefix, branches, params

    async def embedding_neighbors(self, content_id: str, *, f: Filters, k: int) -> list[Candidate]:
        """Nearest published items of one item by content embedding (HNSW)."""
        params = {"item": content_id, "k": k, **f.params()}
        rows = await self.session.execute(
            text(EMBEDDING_NEIGHBORS.format(filter=f.sql(), exact=f.order_suffix)), params
        )
        return [Candidate(r[0], float(r[1]), content_id) for r in rows]

    async def link_neighbors(
        self, content_id: str, *, version: int, source: str, f: Filters, k: int
    ) -> list[Candidate]:
        """One item's precomputed neighbours of one link source in a model version's `item_links`."""
        params = {"item": content_id, "version": version, "source": source, "k": k, **f.params()}
        rows = await self.session.execute(text(LINK_NEIGHBORS.format(filter=f.sql())), params)
        return [Candidate(str(r[0]), float(r[1]), content_id) for r in rows]

    async def popular(self, *, f: Filters, k: int, since: datetime | None = None) -> list[Candidate]:
        """Items by distinct users with a positive event (users who share data only), optionally since a time
        (`app.repositories.popularity`: all time from the stored snapshot and the events it did not see)."""
        params: dict[str, Any] = {"k": k, **f.params()}
        if since is not None:
            params["since"] = since
        rows = await self.session.execute(
            text((POPULAR_SQL if since is None else WINDOW_SQL).format(filter=f.sql())), params
        )
        return [Candidate(r[0], float(r[1])) for r in rows]

    async def trending(self, *, f: Filters, k: int, window_hours: int, now: datetime) -> list[Candidate]:
        """Items by distinct engaged users within the last `window_hours`."""
        return await self.popular(f=f, k=k, since=now - timedelta(hours=window_hours))

    async def newest(self, *, f: Filters, k: int) -> list[Candidate]:
        """Most recently published items (the last-resort fill when there are no events)."""
        rows = await self.session.execute(text(NEWEST.format(filter=f.sql())), {"k": k, **f.params()})
        return [Candidate(str(r[0]), float(r[1])) for r in rows]

    async def embeddings(self, content_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored embeddings of these items (MMR diversity)."""
        stmt = select(Content.content_id, Content.embedding).where(
            among(Content.content_id, content_ids), Content.embedding.is_not(None)
        )
        return {r[0]: np.asarray(r[1], dtype=np.float32) for r in await self.session.execute(stmt)}

    async def next_window_change(self) -> datetime | None:
        """The next moment an item enters or leaves its availability window (results cached until then)."""
        now = func.now()
        starts = select(func.min(Content.available_from)).where(Content.available_from > now).scalar_subquery()
        ends = select(func.min(Content.expires_at)).where(Content.expires_at > now).scalar_subquery()
        found: datetime | None = await self.session.scalar(select(func.least(starts, ends)))
        return found

    async def titles(self, content_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(title, content type) of these items, for explanations."""
        stmt = select(Content.content_id, Content.title, Content.content_type).where(
            among(Content.content_id, content_ids)
        )
        return {r[0]: (r[1], r[2]) for r in await self.session.execute(stmt)}
