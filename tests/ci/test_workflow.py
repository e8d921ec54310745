"""The GitHub workflow validates against its JSON schema (vendored) and agrees with the Makefile."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
SCHEMA = Path(__file__).parent / "github-workflow.schema.json"  # SchemaStore's, via check-jsonschema (Apache-2.0)


def load_workflow(text: str | None = None) -> dict[str, Any]:
    """The workflow as data; YAML 1.1 reads the key `on` as True, so it is put back."""
    data: dict[Any, Any] = yaml.safe_load(text if text is not None else WORKFLOW.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


def make_targets() -> dict[str, list[str]]:
    """Each Makefile target's recipe lines (tabs stripped, `$(BIN)/` dropped)."""
    targets: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith("\t") and current is not None:
            current.append(line.strip().replace("$(BIN)/", ""))
        elif match := re.match(r"^([A-Za-z0-9_.$()/-]+):(?!=)", line):
            current = targets.setdefault(match.group(1), [])
        else:
            current = None if line and not line.startswith("#") else current
    return targets


def make_variable(name: str) -> str:
    match = re.search(rf"^{name}\s*\??:?=\s*(.*)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    assert match, name
    return match.group(1).strip()


def runs(job: dict[str, Any]) -> list[str]:
    return [step["run"].strip() for step in job["steps"] if "run" in step]


def validate(data: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]


def test_workflow_validates_against_the_github_workflow_schema() -> None:
    assert validate(load_workflow()) == []


@pytest.mark.parametrize(
    "broken",
    [
        {"jobs": {"test": {"runs-on": "ubuntu-latest", "steps": [{"run": "x", "uses": "a@b", "with": 3}]}}},
        {"on": "push", "jobs": {"test": {"steps": [{"run": "make test"}]}}},  # no runs-on
        {"on": "push", "jobs": {"test": {"runs-on": "ubuntu-latest", "steps": [], "timeout": "soon"}}},
    ],
)
def test_the_schema_rejects_broken_workflows(broken: dict[str, Any]) -> None:
    assert validate(broken) != []


def test_tests_run_through_make_in_the_venv_make_builds() -> None:
    job = load_workflow()["jobs"]["test"]
    commands = runs(job)
    assert "make test" in commands
    assert not [c for c in commands if re.search(r"\bpip install\b", c)], "the suite runs in .venv, built by make"
    targets = make_targets()
    for command in commands:
        for target in re.findall(r"^make (\S+)", command, re.M):
            assert target in targets, f"`make {target}` is not a Makefile target"


def test_cpu_torch_goes_into_the_make_venv() -> None:
    job = load_workflow()["jobs"]["test"]
    assert job["env"]["TORCH_INDEX_URL"].endswith("/whl/cpu")
    install = make_targets()["$(STAMP)"]
    torch = [line for line in install if "install" in line and "torch==" in line]
    assert len(torch) == 1 and "$(TORCH_INDEX_URL)" in torch[0]
    pin = re.search(r"torch==[\w.]+", torch[0])
    assert pin is not None
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pin.group(0) in project["project"]["dependencies"]
    assert pin.group(0) in (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")


def test_python_version_matches_makefile_and_project() -> None:
    version = load_workflow()["env"]["PYTHON_VERSION"]
    assert make_variable("PYTHON").endswith(version)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert f">={version}" in project["project"]["requires-python"]


def test_movielens_is_fetched_and_cached_where_the_tests_read_it() -> None:
    job = load_workflow()["jobs"]["test"]
    path = job["env"]["RECENGINE_TEST_MOVIELENS"]
    steps = job["steps"]
    cache = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache@"))
    assert cache["with"]["path"] == path
    fetch = next(i for i, s in enumerate(steps) if "ml-latest-small.zip" in s.get("run", ""))
    assert "$RECENGINE_TEST_MOVIELENS" in steps[fetch]["run"]
    assert fetch < next(i for i, s in enumerate(steps) if s.get("run") == "make test")
    assert "RECENGINE_TEST_MOVIELENS" in (ROOT / "tests" / "engine" / "conftest.py").read_text(encoding="utf-8")


def test_the_database_service_is_what_the_suite_uses() -> None:
    job = load_workflow()["jobs"]["test"]
    url = job["env"]["RECENGINE_TEST_DATABASE_URL"]
    service = job["services"]["postgres"]
    assert "pgvector" in service["image"]
    env = service["env"]
    assert f"{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@localhost:5432/{env['POSTGRES_DB']}" in url
    assert "RECENGINE_TEST_DATABASE_URL" in (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8")
    assert "RECENGINE_TEST_REDIS_URL" not in job["env"], "the suite starts its own Redis"


def test_coverage_is_collected_by_make_test_and_reported() -> None:
    job = load_workflow()["jobs"]["test"]
    assert "--cov=app" in job["env"]["PYTEST_ARGS"]
    assert any("$(PYTEST_ARGS)" in line for line in make_targets()["test"])
    assert any(str(s.get("uses", "")).startswith("actions/upload-artifact@") for s in job["steps"])
    assert any("GITHUB_STEP_SUMMARY" in c and "coverage report" in c for c in runs(job))


def test_lint_and_typecheck_run_the_makefile_commands() -> None:
    jobs = load_workflow()["jobs"]
    lint_runs = [c for c in runs(jobs["lint"]) if c.startswith("ruff ")]
    assert lint_runs == make_targets()["lint"]
    assert "make typecheck" in runs(jobs["test"])


def test_image_is_pushed_on_main_to_the_registry_the_chart_names() -> None:
    workflow = load_workflow()
    job = workflow["jobs"]["image"]
    values = yaml.safe_load((ROOT / "charts" / "recengine" / "values.yaml").read_text(encoding="utf-8"))
    assert job["env"]["IMAGE"] == values["image"]["repository"]
    assert workflow["on"]["push"]["branches"] == ["main"]
    meta = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/metadata-action@"))
    assert meta["with"]["images"] == "${{ env.IMAGE }}"
    assert "type=sha" in meta["with"]["tags"] and "value=latest" in meta["with"]["tags"]
    push = next(s for s in job["steps"] if s.get("with", {}).get("push") is True)
    assert push["if"] == "github.event_name == 'push'" and push["with"]["tags"] == "${{ steps.meta.outputs.tags }}"
    assert job["permissions"]["packages"] == "write"
    registry = values["image"]["repository"].split("/")[0]
    login = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/login-action@"))
    assert login["with"]["registry"] == registry


def test_ci_run_is_make_test_plus_what_a_fresh_machine_lacks() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert script.rstrip().endswith("make test")
    assert "redis-server --daemonize" not in script, "the suite starts its own Redis"
