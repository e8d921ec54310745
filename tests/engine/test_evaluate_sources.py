"""`recengine evaluate --from-db` and `--path` agree on the same data."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from app.context import AppState
from app.ml.datasets import load_movielens
from app.ml.evaluation import EvalData, eval_data_from_movielens, run_evaluation
from app.services.evaluation_data import eval_data_from_db
from app.services.importer import import_movielens
from tests.engine.conftest import ML_PATH

USERS = {str(u) for u in range(1, 31)}


def write_subset(dest: Path) -> None:
    """The first 30 users' ratings and the movies (tags, links) they rated, in MovieLens layout."""
    with (
        (ML_PATH / "ratings.csv").open(encoding="utf-8") as src,
        (dest / "ratings.csv").open("w", encoding="utf-8") as out,
    ):
        reader, writer = csv.reader(src), csv.writer(out)
        writer.writerow(next(reader))
        rows = [r for r in reader if r[0] in USERS]
        writer.writerows(rows)
    movies = {r[1] for r in rows}
    for name in ("movies.csv", "links.csv", "tags.csv"):
        column = 1 if name == "tags.csv" else 0
        with (ML_PATH / name).open(encoding="utf-8") as src, (dest / name).open("w", encoding="utf-8") as out:
            reader, writer = csv.reader(src), csv.writer(out)
            writer.writerow(next(reader))
            writer.writerows(r for r in reader if r[column] in movies)


def vectors_for(texts: dict[str, str]) -> dict[str, np.ndarray]:
    """Deterministic stand-in vectors per text (this test is about the data, not the embedder)."""
    out = {}
    for item, text in texts.items():
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vec = np.random.default_rng(seed).normal(size=16)
        out[item] = (vec / np.linalg.norm(vec)).astype(np.float32)
    return out


def interactions(data: EvalData) -> list[tuple[str, str, int, float]]:
    """The interactions as a sorted list, whatever order they came in."""
    columns = (map(str, data.user_ids), map(str, data.item_ids), map(int, data.timestamps), map(float, data.values))
    rows = zip(*columns, strict=True)
    return sorted(rows)


def metrics_only(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Metrics of every deterministic model (implicit's BPR trains with lock-free parallel SGD)."""
    return {
        model: {k: round(v, 9) for k, v in values.items() if not k.endswith("_seconds")}
        for model, values in report["results"].items()
        if model != "BPR"
    }


async def test_from_db_and_path_agree(state: AppState, tmp_path: Path) -> None:
    write_subset(tmp_path)
    from_file = eval_data_from_movielens(load_movielens(tmp_path))
    await import_movielens(state.sessions, load_movielens(tmp_path))
    from_db = await eval_data_from_db(state.sessions)
    assert interactions(from_db) == interactions(from_file)
    assert from_db.item_texts == from_file.item_texts
    vectors = vectors_for(from_file.item_texts)
    a = run_evaluation(from_file, tmp_path / "a", quick=True, progress=False, item_vectors=vectors)
    b = run_evaluation(from_db, tmp_path / "b", quick=True, progress=False, item_vectors=vectors, dataset="database")
    assert metrics_only(a) == metrics_only(b)
    assert {"HYBRID", "EASE", "ALS", "BPR", "ItemKNN", "COLLABORATIVE", "CONTENT_BASED", "POPULAR"} <= set(a["results"])
