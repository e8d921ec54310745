"""Shared fixtures of the deployment checks: the rendered chart, the app's settings and metrics."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

# Make deploy_support importable whatever pytest's import mode is.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_support import (
    CHART_DIR,
    FULL_VALUES,
    REPO_ROOT,
    REQUIRED_VALUES,
    Manifest,
    Renderer,
    merge_values,
)


@pytest.fixture(scope="session")
def helm() -> Any:
    """The Helm Go SDK (helm-python-sdk): renders exactly as `helm template` does."""
    return pytest.importorskip("helm_python", reason="pip install helm-python-sdk to render the chart")


@pytest.fixture(scope="session")
def render(helm: Any) -> Renderer:
    """Render the chart with extra values; returns the manifests, NOTES.txt left out."""

    def _render(values: dict[str, Any]) -> list[Manifest]:
        with helm.Chart.load(str(CHART_DIR)) as chart:
            files = chart.render(values, name="demo", namespace="recs", is_install=True)
        manifests: list[Manifest] = []
        for path, text in sorted(files.items()):
            if not path.endswith((".yaml", ".yml")):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    manifests.append({"source": path, "doc": doc})
        return manifests

    return _render


@pytest.fixture(scope="session")
def default_manifests(render: Renderer) -> list[Manifest]:
    """The chart with its default values (plus the two URLs it requires)."""
    return render(REQUIRED_VALUES)


@pytest.fixture(scope="session")
def full_manifests(render: Renderer) -> list[Manifest]:
    """The chart with every optional feature enabled."""
    return render(FULL_VALUES)


@pytest.fixture(scope="session")
def values() -> dict[str, Any]:
    """The chart's values.yaml."""
    loaded: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return loaded


@pytest.fixture(scope="session")
def merge() -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
    """Helm-style deep merge of two value trees."""
    return merge_values


@pytest.fixture(scope="session")
def settings_fields() -> set[str]:
    """Names of the fields of app.config.Settings."""
    sys.path.insert(0, str(REPO_ROOT))
    from app.config import Settings

    return set(Settings.model_fields)


@pytest.fixture(scope="session")
def exported_metric_names() -> set[str]:
    """Every sample name the app's registry can export, suffixes included."""
    sys.path.insert(0, str(REPO_ROOT))
    from prometheus_client import REGISTRY

    import app.metrics  # noqa: F401  (registers the metrics)

    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names
