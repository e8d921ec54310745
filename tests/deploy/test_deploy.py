"""Docker image, compose stack, monitoring files and YAML hygiene, checked against the app's real names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from deploy_support import CHART_DIR, DOCKER_DIR, FULL_VALUES, REPO_ROOT, Manifest
from yamllint import linter
from yamllint.config import YamlLintConfig

DOCKERFILE = DOCKER_DIR / "Dockerfile"
COMPOSE = DOCKER_DIR / "docker-compose.yml"
DASHBOARD = CHART_DIR / "files" / "grafana-dashboard.json"
ALERTS = CHART_DIR / "files" / "prometheus-alerts.yml"
SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
RECENGINE_NAME = re.compile(r"\bRECENGINE_([A-Z0-9_]+)\b")
# PromQL words that are not metric names.
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring"}


def _yaml_files() -> Iterator[Path]:
    templates = CHART_DIR / "templates"
    for path in sorted(REPO_ROOT.rglob("*")):
        relative = path.relative_to(REPO_ROOT)
        if SKIPPED_DIRS & set(relative.parts) or path.is_relative_to(templates):
            continue
        if path.suffix in {".yml", ".yaml"} and path.is_file():
            yield path


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_yaml_files_parse_and_pass_yamllint() -> None:
    config = YamlLintConfig(file=str(REPO_ROOT / ".yamllint.yaml"))
    files = list(_yaml_files())
    assert COMPOSE in files and CHART_DIR / "values.yaml" in files
    problems = []
    for path in files:
        text = path.read_text()
        list(yaml.safe_load_all(text))
        relative = path.relative_to(REPO_ROOT)
        if config.is_file_ignored(str(relative)):
            continue
        problems += [f"{relative}:{p.line}:{p.column} {p.level} {p.desc} ({p.rule})" for p in linter.run(text, config)]
    assert not problems, "yamllint:\n" + "\n".join(problems)


def test_compose_validates_against_the_compose_spec() -> None:
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_compose())]
    assert not errors, "compose file breaks the compose spec:\n" + "\n".join(errors)


def test_compose_services_wait_for_their_dependencies() -> None:
    services = _compose()["services"]
    assert {"api", "postgres", "redis", "migrate", "train"} <= set(services)
    assert services["postgres"]["image"].startswith("pgvector/pgvector:pg17")
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("api", "migrate", "train"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", f"{name} must wait for a healthy postgres"
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["train"]["profiles"] == ["train"], "train runs on demand only"
    assert services["migrate"]["command"] == ["recengine", "migrate"]
    assert services["train"]["command"] == ["recengine", "train"]
    assert services["api"]["command"] == ["recengine", "serve"]


def test_compose_healthchecks_and_volumes() -> None:
    compose = _compose()
    services = compose["services"]
    for name in ("api", "postgres", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} needs a healthcheck"
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"
    assert any(v.startswith("postgres-data:") for v in services["postgres"]["volumes"])
    assert any(v.startswith("redis-data:") for v in services["redis"]["volumes"])
    env = services["api"]["environment"]
    assert env["RECENGINE_DATABASE_URL"].startswith("postgresql+asyncpg://"), "containers never use the embedded DB"
    assert env["RECENGINE_HOST"] == "0.0.0.0"


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    instructions = _dockerfile_instructions()
    stages = [args for word, args in instructions if word == "FROM"]
    assert len(stages) >= 2, "the Dockerfile must be multi-stage"
    text = DOCKERFILE.read_text()
    assert "python:3.11-slim" in text, "base image must be slim Python 3.11"
    users = [args for word, args in instructions if word == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, f"last USER must be non-root, got {users}"


def test_dockerfile_installs_cpu_torch_and_bakes_the_model() -> None:
    runs = " ".join(args for word, args in _dockerfile_instructions() if word == "RUN")
    assert re.search(r"torch==2\.13\.0\s+--index-url\s+https://download\.pytorch\.org/whl/cpu", runs)
    assert re.search(r"pip install (--editable |-e )?\.(\s|$)", runs), "the image must install the project"
    text = DOCKERFILE.read_text()
    for forbidden in ("huggingface-cli download", "snapshot_download", "huggingface.co", "hf download"):
        assert forbidden not in text, f"no model download in the image or at start: found {forbidden!r}"
    envs = " ".join(args for word, args in _dockerfile_instructions() if word == "ENV")
    assert "HF_HUB_OFFLINE=1" in envs and "TRANSFORMERS_OFFLINE=1" in envs


def test_dockerfile_healthcheck_and_command() -> None:
    instructions = _dockerfile_instructions()
    checks = [args for word, args in instructions if word == "HEALTHCHECK"]
    assert checks, "the image needs a HEALTHCHECK"
    assert "/health" in checks[-1] and "urllib" in checks[-1] and "curl" not in checks[-1]
    commands = [args for word, args in instructions if word == "CMD"]
    assert commands, "the image needs a CMD"
    assert json.loads(commands[-1]) == ["recengine", "serve"]
    assert (REPO_ROOT / ".dockerignore").is_file(), ".dockerignore is missing at the repo root"
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and ".venv" in ignored


def _metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (Grafana variables allowed)."""
    expr = re.sub(r"\$\{?\w+\}?", "5m", expr)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\boffset\s+\w+", " ", expr)
    tokens = re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr)
    return {t for t in tokens if t.lower() not in PROMQL_WORDS}


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def _alert_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [(r["alert"], r["expr"]) for group in rules["groups"] for r in group["rules"]]


def test_dashboard_uses_only_exported_metrics(exported_metric_names: set[str]) -> None:
    exprs = _dashboard_exprs()
    assert exprs, "the dashboard has no queries"
    for expr in exprs:
        names = _metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        unknown = names - exported_metric_names
        assert not unknown, f"dashboard query {expr!r} uses metrics the app does not export: {sorted(unknown)}"


def test_dashboard_covers_the_required_panels() -> None:
    joined = " ".join(_dashboard_exprs())
    for needle in (
        "sum by (operation) (rate(recengine_graphql_requests_total",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
        "recengine_cache_hits_total",
        "recengine_events_ingested_total",
        "sum by (code) (rate(recengine_graphql_errors_total",
        "recengine_active_model_version",
        "recengine_db_pool_connections_in_use",
    ):
        assert needle in joined, f"dashboard lacks a panel with {needle!r}"


def test_alert_rules_use_only_exported_metrics(exported_metric_names: set[str]) -> None:
    alerts = _alert_exprs()
    assert {
        "RecengineHighErrorRatio",
        "RecengineHighP99Latency",
        "RecengineNotReady",
        "RecengineIngestStalled",
    } <= {name for name, _ in alerts}
    for name, expr in alerts:
        names = _metric_names(expr)
        assert names, f"{name}: no metric found in {expr!r}"
        unknown = names - exported_metric_names
        assert not unknown, f"alert {name} uses metrics the app does not export: {sorted(unknown)}"


def test_metric_name_parser_finds_unknown_names() -> None:
    expr = 'sum by (le) (rate(foo_seconds_bucket{code!~"A|B"}[$__rate_interval])) / on() bar offset 1d'
    assert _metric_names(expr) == {"foo_seconds_bucket", "bar"}


def _chart_env_names(full_manifests: list[Manifest]) -> set[str]:
    names: set[str] = set()
    for manifest in full_manifests:
        names.update(RECENGINE_NAME.findall(yaml.safe_dump(manifest["doc"])))
    return names


def test_every_recengine_variable_is_a_setting(settings_fields: set[str], full_manifests: list[Manifest]) -> None:
    sources = {
        "docker/Dockerfile": set(RECENGINE_NAME.findall(DOCKERFILE.read_text())),
        "docker/docker-compose.yml": set(RECENGINE_NAME.findall(COMPOSE.read_text())),
        "charts/recengine (rendered)": _chart_env_names(full_manifests),
    }
    assert all(sources.values()), f"found no RECENGINE_* names in some files: {sources}"
    for source, names in sources.items():
        unknown = sorted(f"RECENGINE_{n}" for n in names if n.lower() not in settings_fields)
        assert not unknown, f"{source} sets variables that app.config.Settings does not have: {unknown}"
    assert FULL_VALUES["extraEnv"], "the full render exercises extraEnv"


@pytest.mark.parametrize("path", ["docs/DEPLOY.md", ".github/workflows/ci.yml", ".yamllint.yaml"])
def test_supporting_files_exist(path: str) -> None:
    assert (REPO_ROOT / path).is_file(), f"{path} is missing"
