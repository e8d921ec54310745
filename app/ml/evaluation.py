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

from app.ml import tuning
from app.ml.batch import cached_embeddings
from app.ml.protocol import EvalData, Indexed, Split, index_data, make_split, temporal_split, validation_split
from app.ml.serving import ServingConfig

if TYPE_CHECKING:
    from app.ml.datasets import MovieLens

__all__ = [
    "EvalData",
    "Split",
    "eval_data_from_movielens",
    "index_data",
    "make_split",
    "run_evaluation",
    "temporal_split",
]
DEFAULT_CACHE = Path(".recengine/cache")


@dataclass(frozen=True)
class ServedInput:
    """What the served evaluation gives the real service: the catalog, the training events, who to ask for."""

    item_ids: np.ndarray  # catalog content ids
    item_texts: dict[str, str]
    vectors: np.ndarray  # catalog embeddings, the ones the batch evaluation uses
    user_ids: np.ndarray  # per training event
    event_items: np.ndarray
    event_types: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray
    users: list[str]  # evaluated users
    n: int
    config: ServingConfig
    now: float


Served = Callable[[ServedInput], list[list[str]]]


def served_input(
    data: EvalData,
    indexed: Indexed,
    train: np.ndarray,
    split: Split,
    vectors: np.ndarray,
    config: ServingConfig,
    n: int,
) -> ServedInput:
    """The training part of the data, as the service would have received it."""
    rows = indexed.rows[train]
    types = data.event_types if data.event_types is not None else np.full(len(data.values), "rate", dtype=object)
    return ServedInput(
        item_ids=indexed.item_ids,
        item_texts=data.item_texts,
        vectors=vectors,
        user_ids=np.asarray(data.user_ids)[rows].astype(str),
        event_items=np.asarray(data.item_ids)[rows].astype(str),
        event_types=np.asarray(types)[rows].astype(str),
        values=np.asarray(data.values, dtype=np.float64)[rows],
        timestamps=np.asarray(data.timestamps, dtype=np.float64)[rows],
        users=[str(indexed.user_names[u]) for u in split.users],
        n=n,
        config=config,
        now=float(indexed.timestamps[train].max()),
    )


def served_row(served: Served, inp: ServedInput, split: Split, setup: tuning.EvalSetup) -> dict[str, float]:
    """The SERVED metrics: the real service's lists, scored like every other row."""
    started = time.perf_counter()
    lists = served(inp)
    pos = {str(item): i for i, item in enumerate(inp.item_ids)}
    top = np.full((len(lists), inp.n), -1, dtype=np.int64)
    for u, items in enumerate(lists):
        for j, item in enumerate(items[: inp.n]):
            top[u, j] = pos[item]
    return {**tuning.evaluate(top, split, setup), "fit_seconds": 0.0, "score_seconds": time.perf_counter() - started}


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
    served: Served | None = None,
) -> dict[str, Any]:
    """Run the whole protocol, write report.json, report.md, the chosen serving.json and plots.

    `item_vectors` (item id -> embedding) skips the embedder; `quick` uses one-point grids (tests);
    `served` computes the SERVED row with the real service (`app.services.served_evaluation`).
    """
    from app.ml.report import write_report

    indexed = index_data(data)
    train, test = temporal_split(indexed.users, indexed.timestamps)
    test_split = make_split(indexed, train, test)
    val_split = validation_split(indexed, train)
    vectors = item_vector_matrix(data, indexed.item_ids, cache_dir or DEFAULT_CACHE, item_vectors, progress)
    setup = tuning.EvalSetup(indexed.item_ids, vectors, tuple(sorted(ks)), quick)
    with _progress(progress, tuning.step_count(setup) + 1) as step:
        outcome = tuning.compare(setup, val_split, test_split, step)
        assert outcome.config is not None
        if served is not None:
            step("SERVED: import the training split, train, recommend() for every test user")
            inp = served_input(data, indexed, train, test_split, vectors, outcome.config, setup.n)
            outcome.results["SERVED"] = served_row(served, inp, test_split, setup)
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
    outcome.config.save(Path(output) / "serving.json")
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
