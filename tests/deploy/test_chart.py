"""The Helm chart: values schema, lint, rendering with Helm's own engine, Kubernetes schemas, semantics."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from deploy_support import CHART_DIR, FULL_VALUES, REQUIRED_VALUES, Manifest, Renderer

KUBE_VERSION = "1.30"
# Custom resources the Kubernetes schemas do not know; checked structurally below.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
MIGRATION_HOOK = {"pre-install", "pre-upgrade"}


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text())
    return loaded


def _kinds(manifests: list[Manifest], kind: str) -> list[dict[str, Any]]:
    return [m["doc"] for m in manifests if m["doc"].get("kind") == kind]


def _one(manifests: list[Manifest], kind: str) -> dict[str, Any]:
    found = _kinds(manifests, kind)
    assert len(found) == 1, f"expected exactly one {kind}, rendered {len(found)}"
    return found[0]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_values_validate_against_schema(values: dict[str, Any]) -> None:
    jsonschema.validate(values, _schema())


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"config": {"database_url": "postgresql://x"}}, "database URL must live in the Secret"),
        ({"config": {"env": "staging"}}, "env is development|production"),
        ({"securityContext": {"readOnlyRootFilesystem": False}}, "root filesystem must stay read-only"),
        ({"autoscaling": {"targetCPUUtilizationPercentage": 170}}, "percentage over 100"),
        ({"replicas": 3}, "unknown top-level key"),
        ({"config": {"database_read_urls": "postgresql://r"}}, "replica URLs hold passwords: Secret only"),
        ({"secrets": {"databaseReadUrls": "mysql://r"}}, "read URLs are PostgreSQL URLs"),
    ],
)
def test_schema_rejects_bad_values(
    values: dict[str, Any],
    merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
    override: dict[str, Any],
    reason: str,
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(merge(values, override), _schema())
        pytest.fail(f"schema accepted values it should reject: {reason}")


def test_helm_lint_strict(helm: Any) -> None:
    for extra in (REQUIRED_VALUES, FULL_VALUES):
        result = helm.lint(str(CHART_DIR), extra, strict=True, kube_version=f"{KUBE_VERSION}.0")
        problems = [m for m in result["messages"] if m["severity"] > 1] + list(result["errors"])
        assert not problems, f"helm lint --strict: {problems}"


def test_rendering_without_database_url_fails_clearly(helm: Any) -> None:
    with helm.Chart.load(str(CHART_DIR)) as chart, pytest.raises(helm.HelmError) as failure:
        chart.render({}, name="demo", namespace="recs", is_install=True)
    assert "secrets.databaseUrl is required" in str(failure.value)


def test_grace_period_shorter_than_shutdown_fails(helm: Any) -> None:
    values = {**REQUIRED_VALUES, "terminationGracePeriodSeconds": 20}
    with helm.Chart.load(str(CHART_DIR)) as chart, pytest.raises(helm.HelmError) as failure:
        chart.render(values, name="demo", namespace="recs", is_install=True)
    assert "terminationGracePeriodSeconds" in str(failure.value)


@pytest.mark.parametrize("which", ["default_manifests", "full_manifests"])
def test_manifests_validate_against_kubernetes_schemas(which: str, request: pytest.FixtureRequest) -> None:
    manifests: list[Manifest] = request.getfixturevalue(which)
    assert manifests, "the chart rendered nothing"
    for manifest in manifests:
        doc = manifest["doc"]
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{manifest['source']} {doc['kind']}: {error.message} at {list(error.path)}")


def test_default_render_has_the_core_objects(default_manifests: list[Manifest]) -> None:
    kinds = sorted({m["doc"]["kind"] for m in default_manifests})
    expected = {"ConfigMap", "CronJob", "Deployment", "HorizontalPodAutoscaler", "Job", "PodDisruptionBudget"}
    assert expected | {"Secret", "Service"} <= set(kinds), f"rendered kinds: {kinds}"
    for optional in ("Ingress", "NetworkPolicy", "ServiceMonitor"):
        assert optional not in kinds, f"{optional} must be disabled by default"


def test_full_render_has_the_optional_objects(full_manifests: list[Manifest]) -> None:
    kinds = {m["doc"]["kind"] for m in full_manifests}
    assert {"Ingress", "NetworkPolicy", "ServiceMonitor"} <= kinds, f"rendered kinds: {sorted(kinds)}"
    monitor = _one(full_manifests, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_replicas_and_autoscaling(default_manifests: list[Manifest], render: Renderer) -> None:
    hpa = _one(default_manifests, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": 70, "memory": 80}
    assert "replicas" not in _one(default_manifests, "Deployment")["spec"], "the HPA owns the replica count"
    fixed = render({**REQUIRED_VALUES, "autoscaling": {"enabled": False}})
    assert _one(fixed, "Deployment")["spec"]["replicas"] == 3
    assert not _kinds(fixed, "HorizontalPodAutoscaler")


def test_api_pod_probes_resources_and_security(default_manifests: list[Manifest]) -> None:
    pod = _one(default_manifests, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["recengine", "serve"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "/tmp" in mounts and "/var/lib/recengine" in mounts, f"writable mounts: {mounts}"
    assert all("emptyDir" in volumes[name] for name in mounts.values())


def test_graceful_termination_outlasts_the_app_shutdown(default_manifests: list[Manifest]) -> None:
    config = _one(default_manifests, "ConfigMap")["data"]
    pod = _one(default_manifests, "Deployment")["spec"]["template"]["spec"]
    shutdown = int(config["RECENGINE_SHUTDOWN_TIMEOUT_SECONDS"])
    pre_stop = int(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > shutdown + pre_stop, f"grace {grace}s must exceed preStop {pre_stop}s + shutdown {shutdown}s"


def test_settings_come_from_configmap_and_secret(default_manifests: list[Manifest]) -> None:
    config = _one(default_manifests, "ConfigMap")["data"]
    assert config["RECENGINE_HOST"] == "0.0.0.0", "containers must bind all interfaces"
    assert config["RECENGINE_ENV"] == "production"
    assert "RECENGINE_DATABASE_URL" not in config, "the database URL is a secret"
    container = _one(default_manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = _env(container)
    for name, key in (("RECENGINE_DATABASE_URL", "database-url"), ("RECENGINE_REDIS_URL", "redis-url")):
        assert env[name]["secretKeyRef"]["key"] == key
    secret = next(d for d in _kinds(default_manifests, "Secret") if "helm.sh/hook" not in _annotations(d))
    assert {"database-url", "redis-url", "admin-api-key"} <= set(secret["data"])


def test_read_replicas_and_redis_cluster_are_exposed(render: Renderer) -> None:
    reads = "postgresql+asyncpg://ro:PW@replica-1:5432/recengine,postgresql+asyncpg://ro:PW@replica-2:5432/recengine"
    secrets = REQUIRED_VALUES["secrets"] | {"databaseReadUrls": reads}
    manifests = render({"secrets": secrets, "config": {"redis_cluster": True}})
    assert _one(manifests, "ConfigMap")["data"]["RECENGINE_REDIS_CLUSTER"] == "true"
    container = _one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    ref = _env(container)["RECENGINE_DATABASE_READ_URLS"]["secretKeyRef"]
    assert ref["key"] == "database-read-urls" and ref["optional"] is True
    secret = next(d for d in _kinds(manifests, "Secret") if d["metadata"]["name"] == ref["name"])
    assert base64.b64decode(secret["data"]["database-read-urls"]).decode() == reads


def _annotations(doc: dict[str, Any]) -> dict[str, str]:
    annotations: dict[str, str] = doc["metadata"].get("annotations") or {}
    return annotations


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook(default_manifests: list[Manifest]) -> None:
    job = _one(default_manifests, "Job")
    hooks = set(_annotations(job)["helm.sh/hook"].split(","))
    assert hooks == MIGRATION_HOOK, f"migration hook annotations: {hooks}"
    assert "before-hook-creation" in _annotations(job)["helm.sh/hook-delete-policy"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["recengine", "migrate"]
    # The release's Secret does not exist yet when pre-install hooks run.
    secret_name = _env(container)["RECENGINE_DATABASE_URL"]["secretKeyRef"]["name"]
    hook_secret = next(d for d in _kinds(default_manifests, "Secret") if d["metadata"]["name"] == secret_name)
    assert set(_annotations(hook_secret)["helm.sh/hook"].split(",")) == MIGRATION_HOOK
    assert int(_annotations(hook_secret)["helm.sh/hook-weight"]) < int(_annotations(job).get("helm.sh/hook-weight", 0))


def test_existing_secret_is_used_everywhere(render: Renderer) -> None:
    manifests = render({"secrets": {"existingSecret": "recengine-credentials"}})
    assert not _kinds(manifests, "Secret"), "no Secret may be created with existingSecret"
    for kind in ("Deployment", "Job"):
        container = _one(manifests, kind)["spec"]["template"]["spec"]["containers"][0]
        assert _env(container)["RECENGINE_DATABASE_URL"]["secretKeyRef"]["name"] == "recengine-credentials"


def test_training_cronjob(default_manifests: list[Manifest]) -> None:
    cron = _one(default_manifests, "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["recengine", "train"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_selectors_match_pod_labels(full_manifests: list[Manifest]) -> None:
    labels = _one(full_manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selectors = [
        _one(full_manifests, "Service")["spec"]["selector"],
        _one(full_manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        _one(full_manifests, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        _one(full_manifests, "ServiceMonitor")["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= labels.items(), f"selector {selector} does not match pod labels {labels}"


def test_chart_files_present() -> None:
    for name in ("Chart.yaml", "values.yaml", "values.schema.json", "README.md", "templates/NOTES.txt"):
        assert (CHART_DIR / name).is_file(), f"charts/recengine/{name} is missing"
    readme = (CHART_DIR / "README.md").read_text()
    missing = [
        key for key in _leaf_keys(yaml.safe_load((CHART_DIR / "values.yaml").read_text())) if f"`{key}`" not in readme
    ]
    assert not missing, f"values missing from the README values table: {missing}"


def _leaf_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        opaque = path.endswith("resources") or path in {"podSecurityContext", "securityContext"}
        if isinstance(value, dict) and value and not opaque:
            keys.extend(_leaf_keys(value, f"{path}."))
        else:
            keys.append(path)
    return keys


def test_notes_render(helm: Any) -> None:
    with helm.Chart.load(str(CHART_DIR)) as chart:
        files = chart.render(REQUIRED_VALUES, name="demo", namespace="recs", is_install=True)
    notes = next(text for path, text in files.items() if Path(path).name == "NOTES.txt")
    assert "/ready" in notes and "recengine keys create" in notes
