"""`recengine evaluate`'s SERVED row: the real service on a scratch database holding only the training split."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import numpy as np

from app.context import AppState
from app.ml.datasets import load_movielens
from app.ml.evaluation import ServedInput, eval_data_from_movielens, run_evaluation
from app.ml.serving import ServingConfig
from app.services.served_evaluation import served_top
from tests.engine.test_evaluate_sources import write_subset

DIM = 384  # the content embedding column's size


def vectors_for(texts: dict[str, str]) -> dict[str, np.ndarray]:
    """Deterministic unit vectors per text (this test is about the pipeline, not the embedder)."""
    out = {}
    for item, text in texts.items():
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vec = np.random.default_rng(seed).normal(size=DIM)
        out[item] = (vec / np.linalg.norm(vec)).astype(np.float32)
    return out


async def test_served_row_comes_from_the_service_and_agrees_with_batch(state: AppState, tmp_path: Path) -> None:
    write_subset(tmp_path)
    data = eval_data_from_movielens(load_movielens(tmp_path))
    asked: list[ServedInput] = []

    def serve(inp: ServedInput) -> list[list[str]]:
        asked.append(inp)
        return asyncio.run(served_top(state.settings, inp))

    report = await asyncio.to_thread(
        run_evaluation,
        data,
        tmp_path / "out",
        quick=True,
        progress=False,
        item_vectors=vectors_for(data.item_texts),
        served=serve,
    )
    results = report["results"]
    assert {"ndcg@10", "recall@10", "precision@10", "coverage"} <= set(results["SERVED"])
    inp = asked[0]
    assert len(inp.users) == len(set(inp.users)) > 0 and inp.n == 20
    train_rows = set(zip(inp.user_ids.tolist(), inp.event_items.tolist(), inp.timestamps.tolist(), strict=True))
    assert len(train_rows) < len(data.user_ids)  # only the training split went into the service's database
    assert abs(report["summary"]["served_vs_batch"]) <= 0.02, (results["SERVED"], results["HYBRID"])
    assert (tmp_path / "out" / "report.md").read_text().splitlines()[2].startswith("SERVED")
    chosen = ServingConfig.load(tmp_path / "out" / "serving.json")
    tuned = json.loads((tmp_path / "out" / "report.json").read_text())["tuning"]["HYBRID"]["weights"]
    assert chosen.weights["hybrid"] == {name: w for name, w in tuned.items() if w > 0}
