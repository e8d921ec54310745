"""NDCG@10 cost and list similarity of MMR diversity on MovieLens (the committed serving blend, batch path).

Usage: python bench/diversity_cost.py PATH_TO_ml-latest-small [diversity ...]
Same protocol as `recengine evaluate` (per user the newest 20% held out, seen items excluded), the
committed serving configuration (no tuning), HYBRID through `app.ml.hybrid.blend` with `diversity`.
"""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

import numpy as np

from app.ml import tuning
from app.ml.datasets import load_movielens
from app.ml.evaluation import DEFAULT_CACHE, eval_data_from_movielens, item_vector_matrix
from app.ml.protocol import index_data, make_split, temporal_split
from app.ml.serving import default_config


def mean_pairwise_cosine(top: np.ndarray, vectors: np.ndarray, k: int = 10) -> float:
    """Mean over users of the mean cosine between the embeddings of each pair in the top-k."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    values = []
    for row in top[:, :k]:
        idx = row[row >= 0]
        if len(idx) > 1:
            values.append(np.mean([unit[a] @ unit[b] for a, b in combinations(idx, 2)]))
    return float(np.mean(values))


def main(path: Path, levels: list[float]) -> None:
    """Print NDCG@10 and mean pairwise cosine for each diversity level."""
    data = eval_data_from_movielens(load_movielens(path))
    indexed = index_data(data)
    train, test = temporal_split(indexed.users, indexed.timestamps)
    split = make_split(indexed, train, test)
    vectors = item_vector_matrix(data, indexed.item_ids, DEFAULT_CACHE, None, False)
    ctx = tuning.EvalSetup(indexed.item_ids, vectors, (10,))
    config = default_config()
    lists = tuning.sources_for(split, ctx, config)
    weights = config.blend("hybrid")
    for level in levels:
        top, seconds = tuning.blended(lists, weights, split, ctx, config, diversity=level)
        scores = tuning.evaluate(top, split, ctx)
        print(
            f"diversity {level:.2f}: ndcg@10 {scores['ndcg@10']:.4f}  "
            f"mean pairwise cosine@10 {mean_pairwise_cosine(top, vectors):.4f}  ({seconds:.1f} s)"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), [float(x) for x in sys.argv[2:]] or [0.0, 0.25, 0.5])
