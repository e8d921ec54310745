"""Paths and value sets shared by the deployment checks (imported by conftest and the tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "recengine"
DOCKER_DIR = REPO_ROOT / "docker"

# Values the chart cannot render without: where the database and Redis are.
REQUIRED_VALUES: dict[str, Any] = {
    "secrets": {
        "databaseUrl": "postgresql+asyncpg://recengine:secret@db.example:5432/recengine",
        "redisUrl": "redis://redis.example:6379/0",
    }
}

# Every optional feature switched on.
FULL_VALUES: dict[str, Any] = {
    **REQUIRED_VALUES,
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "networkPolicy": {
        "enabled": True,
        "ingressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
    },
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        "hosts": [{"host": "rec.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
        "tls": [{"hosts": ["rec.example.com"], "secretName": "rec-tls"}],
    },
    "imagePullSecrets": [{"name": "regcred"}],
    "serviceAccount": {"create": True, "name": "recengine", "annotations": {"example.com/role": "recs"}},
    "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
    "grafanaDashboard": {"enabled": True, "folder": "recengine"},
    "podAnnotations": {"example.com/team": "recs"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "recs", "effect": "NoSchedule"}],
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "recengine"}},
        }
    ],
    "extraEnv": [{"name": "RECENGINE_HNSW_EF_SEARCH", "value": "200"}],
    "training": {"timeZone": "Etc/UTC"},
}

Manifest = dict[str, Any]
Renderer = Callable[[dict[str, Any]], list[Manifest]]


def merge_values(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `extra` into a copy of `base` (Helm's values semantics)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged
