"""Offline evaluation: a fixed temporal protocol, our strategies against baselines, one report.

Protocol (also written into report.json): every interaction is a positive; per user the
last 20% of interactions by time (at least one) are the test set, and users with a single
interaction keep it in training and are not evaluated; models see only the training part;
a user's training items are excluded from the ranking; ranking is over the full catalog;
metrics are averaged over users with a held-out item they had not already seen in
training. Every model's hyper-parameters are chosen on a validation split cut from the
training part by the same rule, then the model is refit on the whole training part.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from app.ml import metrics, tuning
from app.ml.batch import History, cached_embeddings

if TYPE_CHECKING:
    from app.ml.datasets import MovieLens

MIN_INTERACTIONS_FOR_TEST = 2
DEFAULT_CACHE = Path(".recengine/cache")


@dataclass(frozen=True)
class EvalData:
    """Interactions to evaluate on and the text of every catalog item."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    event_types: np.ndarray | None
    item_texts: dict[str, str]


@dataclass(frozen=True)
class Split:
    """Training history and, for the evaluated users, their held-out relevant items."""

    history: History
    users: np.ndarray
    relevant: list[np.ndarray]

    def matrix(self) -> sp.csr_matrix:
        """Binary users x items training matrix."""
        return self.history.seen()


def eval_data_from_movielens(ml: MovieLens) -> EvalData:
    """Ratings as "rate" events, movie texts as the service would embed them."""
    from app.ml.datasets import movie_content
    from app.ml.embeddings import content_text

    texts: dict[str, str] = {}
    for movie in ml.movies:
        record = movie_content(movie)
        tags = record["tags"]
        texts[movie.movie_id] = content_text(
            str(record["title"]), str(record["description"]), list(tags) if isinstance(tags, list) else []
        )
    r = ml.ratings
    return EvalData(r.user_ids, r.item_ids, r.timestamps, r.values, None, texts)


def temporal_split(
    user_ids: np.ndarray, timestamps: np.ndarray, fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks: each user's latest max(1, ⌊fraction·n⌋) interactions are test.

    Ties in time are broken by input order. Users with fewer than two interactions keep
    everything in training: with nothing left to learn from they would measure cold start,
    not the model.
    """
    n = len(user_ids)
    _, users = np.unique(np.asarray(user_ids).astype(str), return_inverse=True)
    order = np.lexsort((np.arange(n), np.asarray(timestamps), users))
    sorted_users = users[order]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    ends = np.searchsorted(sorted_users, sorted_users, side="right")
    size = ends - starts
    position = np.arange(n) - starts
    n_test = np.maximum(1, np.floor(fraction * size).astype(np.int64))
    is_test = (size >= MIN_INTERACTIONS_FOR_TEST) & (position >= size - n_test)
    test = np.zeros(n, dtype=bool)
    test[order] = is_test
    return ~test, test


@dataclass(frozen=True)
class Indexed:
    """The data in index space: catalog, users and per-interaction weights."""

    item_ids: np.ndarray
    n_users: int
    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray

    def history(self, mask: np.ndarray) -> History:
        """History of the selected interactions."""
        return History(
            self.n_users,
            self.item_ids.size,
            self.users[mask],
            self.items[mask],
            self.weights[mask],
            self.timestamps[mask],
        )


def index_data(data: EvalData) -> Indexed:
    """Map ids to indices; catalog = item texts | interacted items, sorted.

    Interactions are put in a canonical order (user, time, item), so ties in time split the
    same way whatever order the source delivered them in (a file or the database).
    """
    catalog = np.array(sorted(set(data.item_texts) | {str(i) for i in data.item_ids}), dtype=object)
    pos = {item: i for i, item in enumerate(catalog)}
    _, users = np.unique(np.asarray(data.user_ids).astype(str), return_inverse=True)
    items = np.array([pos[str(i)] for i in data.item_ids], dtype=np.int64)
    stamps = np.asarray(data.timestamps, dtype=np.int64)
    order = np.lexsort((items, stamps, users))
    return Indexed(
        catalog,
        int(users.max()) + 1 if users.size else 0,
        users.astype(np.int64)[order],
        items[order],
        event_weights(data)[order],
        stamps[order],
    )


def event_weights(data: EvalData) -> np.ndarray:
    """Training weight of every interaction from the service's event-type table."""
    from app.ml.als import DEFAULT_EVENT_WEIGHTS, event_weight

    types = data.event_types if data.event_types is not None else np.full(len(data.values), "rate", dtype=object)
    values = np.asarray(data.values, dtype=np.float64)
    out = np.empty(values.size, dtype=np.float64)
    cache: dict[tuple[str, float], float] = {}
    for i, (kind, value) in enumerate(zip(types, values, strict=True)):
        key = (str(kind), float(value))
        if key not in cache:
            cache[key] = float(event_weight(key[0], key[1], DEFAULT_EVENT_WEIGHTS))
        out[i] = cache[key]
    return out


def make_split(indexed: Indexed, train: np.ndarray, test: np.ndarray) -> Split:
    """Training history plus each evaluated user's new (unseen in training) test items."""
    history = indexed.history(train)
    seen = history.seen().tolil().rows
    per_user: dict[int, set[int]] = {}
    for u, i in zip(indexed.users[test], indexed.items[test], strict=True):
        if i not in seen[u]:
            per_user.setdefault(int(u), set()).add(int(i))
    users = np.array(sorted(per_user), dtype=np.int64)
    return Split(history, users, [np.array(sorted(per_user[u]), dtype=np.int64) for u in users])


def validation_split(indexed: Indexed, train: np.ndarray) -> Split:
    """The training part cut again by the same rule: its last 20% per user validate."""
    rows = np.flatnonzero(train)
    inner_train, inner_val = temporal_split(indexed.users[rows], indexed.timestamps[rows])
    fit_mask = np.zeros(train.size, dtype=bool)
    val_mask = np.zeros(train.size, dtype=bool)
    fit_mask[rows[inner_train]] = True
    val_mask[rows[inner_val]] = True
    return make_split(indexed, fit_mask, val_mask)


def score_top(top: np.ndarray, split: Split, ks: Sequence[int], popularity: np.ndarray) -> dict[str, float]:
    """Metrics of a top-n matrix over the evaluated users of a split."""
    hits = metrics.hit_matrix(top, split.relevant)
    n_rel = np.array([r.size for r in split.relevant])
    out: dict[str, float] = {}
    for k in ks:
        for name, value in metrics.metrics_at_k(hits, n_rel, k).items():
            out[f"{name}@{k}"] = value
    cut = 10 if 10 in ks else max(ks)
    out["coverage"] = metrics.coverage_of(top[:, :cut], popularity.size)
    out["novelty"] = metrics.novelty_of(top[:, :cut], popularity)
    return out


def item_popularity(split: Split) -> np.ndarray:
    """Share of users who interacted with each item in training (at least 1/n_users)."""
    counts = np.asarray(split.matrix().sum(axis=0)).ravel()
    n = max(split.history.n_users, 1)
    return np.asarray(np.maximum(counts, 1) / n, dtype=np.float64)


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[str], None]]:
    """Yield a step(description) callback driving a rich progress bar when enabled."""
    if not enabled:
        yield lambda _desc: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("Evaluating", total=total)

        def step(desc: str) -> None:
            bar.update(task, description=desc, advance=1)

        yield step


def item_vector_matrix(
    data: EvalData,
    item_ids: np.ndarray,
    cache_dir: Path,
    item_vectors: dict[str, np.ndarray] | None,
    progress: bool,
) -> np.ndarray:
    """Catalog embedding matrix: given vectors, or the service embedder cached on disk."""
    if item_vectors is not None:
        dim = len(next(iter(item_vectors.values())))
        return np.vstack([np.asarray(item_vectors.get(str(i), np.zeros(dim)), dtype=np.float32) for i in item_ids])
    texts = [data.item_texts.get(str(i), str(i)) for i in item_ids]
    return cached_embeddings(texts, cache_dir, progress=progress)


def dataset_stats(data: EvalData, indexed: Indexed, test_split: Split) -> dict[str, Any]:
    """Size and sparsity of the data set and of the evaluation."""
    n_inter = int(indexed.users.size)
    return {
        "users": indexed.n_users,
        "items": int(indexed.item_ids.size),
        "interactions": n_inter,
        "density": n_inter / max(indexed.n_users * indexed.item_ids.size, 1),
        "evaluated_users": int(test_split.users.size),
        "test_items": int(sum(r.size for r in test_split.relevant)),
        "event_types": sorted({str(t) for t in data.event_types}) if data.event_types is not None else ["rate"],
    }


def run_evaluation(
    data: EvalData,
    output: Path,
    *,
    ks: Sequence[int] = (5, 10, 20),
    dataset: str = "movielens",
    progress: bool = True,
    cache_dir: Path | None = None,
    item_vectors: dict[str, np.ndarray] | None = None,
    quick: bool = False,
) -> dict[str, Any]:
    """Run the whole protocol, write report.json, report.md and plots; return the report.

    `item_vectors` (item id -> embedding) skips the embedder; `quick` uses one-point grids (tests).
    """
    from app.ml.report import write_report

    indexed = index_data(data)
    train, test = temporal_split(indexed.users, indexed.timestamps)
    test_split = make_split(indexed, train, test)
    val_split = validation_split(indexed, train)
    vectors = item_vector_matrix(data, indexed.item_ids, cache_dir or DEFAULT_CACHE, item_vectors, progress)
    context = tuning.Context(indexed.item_ids, vectors, tuple(sorted(ks)), quick)
    with _progress(progress, tuning.step_count(context)) as step:
        outcome = tuning.compare(context, val_split, test_split, step)
    report = {
        "protocol": protocol(ks),
        "dataset": {"name": dataset, **dataset_stats(data, indexed, test_split)},
        "results": outcome.results,
        "tuning": outcome.tuning,
        "validation": outcome.validation,
        "ablation": outcome.ablation,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_report(report, Path(output))
    return report


def protocol(ks: Sequence[int]) -> dict[str, Any]:
    """The fixed protocol, as written into the report."""
    return {
        "positives": "every interaction",
        "split": "per user, last 20% of interactions by timestamp (at least 1) held out as test",
        "single_interaction_users": "kept in training, not evaluated",
        "validation": "same rule applied to the training part; all hyper-parameters chosen there",
        "exclusions": "each user's training items are excluded from the ranking",
        "ranking": "full catalog",
        "averaging": "users with at least one held-out item not seen in training",
        "relevance": "binary; NDCG ideal over min(k, |relevant|); MAP normalised by min(k, |relevant|)",
        "ks": list(ks),
        "selection_metric": f"ndcg@{10 if 10 in ks else max(ks)} on validation",
    }
