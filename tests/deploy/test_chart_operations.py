"""Chart pieces for operators: PrometheusRule, the Grafana dashboard ConfigMap, `helm test`, the ServiceAccount."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import jsonschema
import pytest
import yaml
from deploy_support import CHART_DIR, FULL_VALUES, REQUIRED_VALUES, Manifest, Renderer

from app.context import AppState
from app.services import auth
from tests.conftest import make_settings
from tests.hardening.servers import thread_server

ALERTS = CHART_DIR / "files" / "prometheus-alerts.yml"
DASHBOARD = CHART_DIR / "files" / "grafana-dashboard.json"


def _kind(manifests: list[Manifest], kind: str) -> list[dict[str, Any]]:
    return [m["doc"] for m in manifests if m["doc"]["kind"] == kind]


def _test_pod(manifests: list[Manifest]) -> dict[str, Any]:
    pods = [d for d in _kind(manifests, "Pod") if d["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    assert len(pods) == 1
    return pods[0]


def test_optional_operator_objects_are_off_by_default(default_manifests: list[Manifest]) -> None:
    kinds = {m["doc"]["kind"] for m in default_manifests}
    assert "PrometheusRule" not in kinds and "ServiceAccount" not in kinds
    assert not [d for d in _kind(default_manifests, "ConfigMap") if "grafana_dashboard" in d["metadata"]["labels"]]


def test_prometheus_rule_carries_the_alert_file(full_manifests: list[Manifest]) -> None:
    (rule,) = _kind(full_manifests, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert alerts and all(a.startswith("Recengine") for a in alerts)
    assert "{{ $value" in json.dumps(rule["spec"]), "Prometheus templates must reach Prometheus unrendered"


def test_dashboard_configmap_is_labelled_for_the_grafana_sidecar(full_manifests: list[Manifest]) -> None:
    (config,) = [d for d in _kind(full_manifests, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["annotations"]["grafana_folder"] == "recengine"
    assert json.loads(config["data"]["recengine-dashboard.json"]) == json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_service_account_is_created_and_used_by_every_pod(full_manifests: list[Manifest]) -> None:
    (account,) = _kind(full_manifests, "ServiceAccount")
    assert account["metadata"]["name"] == "recengine"
    assert account["metadata"]["annotations"]["example.com/role"] == "recs"
    assert account["metadata"]["annotations"]["helm.sh/hook-weight"] == "-20"  # before the migration Job
    assert account["automountServiceAccountToken"] is False
    specs = [d["spec"]["template"]["spec"] for d in _kind(full_manifests, "Deployment") + _kind(full_manifests, "Job")]
    specs += [d["spec"]["jobTemplate"]["spec"]["template"]["spec"] for d in _kind(full_manifests, "CronJob")]
    specs.append(_test_pod(full_manifests)["spec"])
    assert len(specs) >= 4 and {s.get("serviceAccountName") for s in specs} == {"recengine"}


def test_created_service_account_defaults_to_the_full_name(render: Renderer) -> None:
    manifests = render({**REQUIRED_VALUES, "serviceAccount": {"create": True}})
    (account,) = _kind(manifests, "ServiceAccount")
    (deployment,) = _kind(manifests, "Deployment")
    assert (
        account["metadata"]["name"] == deployment["spec"]["template"]["spec"]["serviceAccountName"] == "demo-recengine"
    )


def test_existing_service_account_is_used_without_creating_one(render: Renderer) -> None:
    manifests = render({**REQUIRED_VALUES, "serviceAccount": {"name": "theirs"}})
    assert not _kind(manifests, "ServiceAccount")
    (deployment,) = _kind(manifests, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "theirs"


@pytest.mark.parametrize(
    "bad",
    [{"prometheusRule": {"enabled": "yes"}}, {"grafanaDashboard": {"label": ""}}, {"serviceAccount": {"create": 1}}],
)
def test_schema_rejects_bad_operator_values(bad: dict[str, Any]) -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**REQUIRED_VALUES, **bad}, schema)


def test_helm_test_pod_is_a_test_hook_on_the_service(default_manifests: list[Manifest]) -> None:
    pod = _test_pod(default_manifests)
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    (service,) = _kind(default_manifests, "Service")
    assert env["API_URL"]["value"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert env["RECENGINE_ADMIN_API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "admin-api-key"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def _run_test_pod(pod: dict[str, Any], url: str, key: str) -> subprocess.CompletedProcess[str]:
    """Run the test pod's command here, as the pod would, against `url`."""
    (container,) = pod["spec"]["containers"]
    env = {**os.environ, "API_URL": url, "RECENGINE_ADMIN_API_KEY": key}
    command = [
        sys.executable if container["command"][0] == "python" else container["command"][0],
        *container["command"][1:],
    ]
    return subprocess.run(
        [*command, *container["args"]], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def test_helm_test_script_passes_against_a_live_server(
    default_manifests: list[Manifest], state: AppState, database_url: str
) -> None:
    async with state.sessions() as session:
        key = (await auth.create_key(session, name="helm-test", role="admin")).secret
    pod = _test_pod(default_manifests)
    with thread_server(make_settings(database_url)) as url:
        passed = _run_test_pod(pod, url, key)
        refused = _run_test_pod(pod, url, "rk_not_a_key")
    assert passed.returncode == 0, passed.stderr
    assert "ready; GraphQL answered" in passed.stdout
    assert refused.returncode != 0, "the test must fail when the query fails"


def test_full_values_still_render(full_manifests: list[Manifest]) -> None:
    assert FULL_VALUES["prometheusRule"]["enabled"] and _kind(full_manifests, "PrometheusRule")
