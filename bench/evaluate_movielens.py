"""Run the offline evaluation on MovieLens ml-latest-small and print the headline numbers."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.ml.datasets import load_movielens
from app.ml.evaluation import eval_data_from_movielens, run_evaluation

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small"


def main() -> None:
    """Parse arguments, evaluate, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--output", type=Path, default=Path("/tmp/eval-out"))
    parser.add_argument("--cache-dir", type=Path, default=Path(".recengine/cache"))
    args = parser.parse_args()
    start = time.perf_counter()
    data = eval_data_from_movielens(load_movielens(args.data, progress=True))
    report = run_evaluation(data, args.output, dataset="ml-latest-small", cache_dir=args.cache_dir)
    print((args.output / "report.md").read_text())
    print(f"summary: {report['summary']}  ({time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
