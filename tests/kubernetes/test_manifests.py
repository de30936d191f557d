"""deploy/kubernetes renders with kubectl kustomize and every object is what the API server and the
Prometheus Operator accept: Kubernetes's schemas (kubernetes-validate --strict), the Operator's CRD
schemas (tests/kubernetes/schemas), promtool for the rules; and the pieces are wired to each other."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from pipeline_exporter.mixin import DEFAULT
from pipeline_exporter.mixin.kubernetes import ANNOTATION_LIMIT
from tests.support.kube import KUBE, KUBERNETES_VERSIONS, OVERLAYS, PACKS, kustomize, need, one
from tests.support.paths import REPO

pytestmark = pytest.mark.e2e  # kubectl and promtool run

SCHEMAS = Path(__file__).parent / "schemas"
CRDS = {"ServiceMonitor": "servicemonitor-v1.json", "PrometheusRule": "prometheusrule-v1.json"}
PACK_OF = {"method333": "method333", "botflow": "botflow", "crm": "crm", "scraper": "scraper",
           "sqlite": "method333", "secured": "method333"}
DURATION = re.compile(r"^(\d+)(ms|s|m|h)$")


def strict(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as kubectl's default server-side field validation does."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def crd_validator(kind: str) -> jsonschema.protocols.Validator:
    schema = strict(json.loads((SCHEMAS / CRDS[kind]).read_text(encoding="utf-8")))
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: kustomize(KUBE / "overlays" / name) for name in OVERLAYS} | {"base": kustomize(KUBE / "base")}


def test_every_overlay_is_here_and_renders(rendered):
    assert set(OVERLAYS) == {*PACKS, "sqlite", "secured"}
    core = {"ServiceAccount", "Deployment", "Service", "ServiceMonitor", "NetworkPolicy"}
    assert {obj["kind"] for obj in rendered["base"]} == core
    for name in OVERLAYS:
        kinds = [obj["kind"] for obj in rendered[name]]
        assert core <= set(kinds) and "PrometheusRule" in kinds and "ConfigMap" in kinds, name
        assert "PodDisruptionBudget" not in kinds  # one replica: docs/kubernetes.md says why


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_objects_pass_kubernetes_validate_strict(rendered, version):
    for name, objects in rendered.items():
        for obj in objects:
            if obj["apiVersion"].startswith("monitoring.coreos.com/"):
                continue
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{name}: {obj['kind']} {obj['metadata']['name']} on {version}: {exc.message}")


def test_kubernetes_validate_refuses_an_unknown_field(rendered):
    """The strict check is not a no-op: a misspelt field of the Deployment fails it."""
    broken = copy.deepcopy(one(rendered["method333"], "Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_operator_objects_match_the_crd_schemas(rendered):
    for name, objects in rendered.items():
        for obj in objects:
            if obj["kind"] in CRDS:
                errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                          for e in crd_validator(obj["kind"]).iter_errors(obj)]
                assert not errors, f"{name}: {obj['kind']} {obj['metadata']['name']}: {errors[:5]}"


def test_crd_schema_check_is_not_a_no_op(rendered):
    monitor = copy.deepcopy(one(rendered["secured"], "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["interval"] = "30 s"
    assert list(crd_validator("ServiceMonitor").iter_errors(monitor))
    rule = copy.deepcopy(next(o for o in rendered["method333"] if o["kind"] == "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["recrod"] = "x"
    assert list(crd_validator("PrometheusRule").iter_errors(rule))


def seconds(duration: str) -> int:
    match = DURATION.match(duration)
    assert match, duration
    return int(match[1]) * {"ms": 0, "s": 1, "m": 60, "h": 3600}[match[2]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pieces_are_wired_together(rendered, overlay):
    objects = rendered[overlay]
    deployment, service = one(objects, "Deployment"), one(objects, "Service")
    monitor, policy = one(objects, "ServiceMonitor"), one(objects, "NetworkPolicy")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    pod_labels = pod["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    port_names = {p["name"] for p in container["ports"]}
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in service_ports and service_ports[endpoint["port"]]["targetPort"] in port_names
    assert {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]} <= port_names
    assert seconds(endpoint["scrapeTimeout"]) <= seconds(endpoint["interval"])  # Prometheus refuses more
    for probe in ("livenessProbe", "readinessProbe"):
        http = container[probe].get("httpGet")
        assert http is None or http["port"] in port_names
    sa = one(objects, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False and pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["serviceAccountName"] == sa["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_container_is_hardened_and_the_url_is_no_literal_secret(rendered, overlay):
    pod = one(rendered[overlay], "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["enableServiceLinks"] is False  # no PIPELINE_EXPORTER_* variables from Services
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert not [v for v in pod.get("volumes", []) if "emptyDir" in v]  # nothing writes at run time
    assert container["livenessProbe"].get("httpGet", {}).get("path", "/-/healthy") == "/-/healthy"
    readiness = container["readinessProbe"]
    assert readiness.get("httpGet", {}).get("path") == "/-/ready" or "/-/ready" in readiness["exec"]["command"]
    url = next(e for e in container["env"] if e["name"] == "PIPELINE_EXPORTER_DATABASE_URL")
    if overlay == "sqlite":
        assert url["value"].startswith("sqlite:////")  # a file path: no password to hide
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        folder = url["value"].removeprefix("sqlite:///").rsplit("/", 1)[0]
        assert mounts[folder]["readOnly"] is True  # the folder, for the -wal and -shm files
    else:
        assert "value" not in url and url["valueFrom"]["secretKeyRef"]["key"]
    assert not any("://" in arg and "@" in arg for arg in container.get("args", []))


def test_the_image_is_named_by_an_images_entry():
    kustomization = yaml.safe_load((KUBE / "base" / "kustomization.yaml").read_text(encoding="utf-8"))
    deployment = yaml.safe_load((KUBE / "base" / "deployment.yaml").read_text(encoding="utf-8"))
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert [entry["name"] for entry in kustomization["images"]] == [image]


def rules_of(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]


def shipped_groups(pack: str) -> list[dict[str, Any]]:
    folder = REPO / "alerts" / ("packs/" + pack if pack != "method333" else "")
    return [group for path in sorted(folder.glob("*.yml")) for group in rules_of(path)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_rules_carry_every_shipped_rule_and_pass_promtool(rendered, overlay, tmp_path):
    groups = [group for obj in rendered[overlay] if obj["kind"] == "PrometheusRule" for group in obj["spec"]["groups"]]
    key = lambda group: group["name"]  # noqa: E731
    assert sorted(groups, key=key) == sorted(shipped_groups(PACK_OF[overlay]), key=key)
    promtool = need("promtool", "Debian package prometheus; `make tools`")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_dashboard_configmap_per_dashboard(rendered, overlay):
    pack = PACK_OF[overlay]
    folder = REPO / ("grafana/dashboards" if pack == "method333" else f"grafana/packs/{pack}")
    maps = [obj for obj in rendered[overlay] if obj["kind"] == "ConfigMap"]
    shipped = {path.name: path.read_text(encoding="utf-8") for path in folder.glob("*.json")}
    assert {key: text for obj in maps for key, text in obj["data"].items()} == shipped
    for obj in maps:
        assert len(obj["data"]) == 1 and obj["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert len(json.dumps(obj).encode()) < ANNOTATION_LIMIT


def relative(path: Path, start: Path) -> str:
    """Kustomize takes only relative paths."""
    return os.path.relpath(path, start)


def jobs_in(objects: list[dict[str, Any]]) -> set[str]:
    exprs = [str(rule["expr"]) for obj in objects if obj["kind"] == "PrometheusRule"
             for group in obj["spec"]["groups"] for rule in group["rules"]]
    return {job for expr in exprs for job in re.findall(r'\bjob="([^"]+)"', expr)}


def test_the_job_survives_a_name_prefix_and_a_namespace(rendered, tmp_path):
    """The Operator would name the job after the Service ("acme-pipeline-exporter" here); the
    ServiceMonitor's first relabeling pins it to the job the rules match."""
    overlay = tmp_path / "acme"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namePrefix": "acme-",
        "namespace": "monitoring", "resources": [relative(KUBE / "overlays" / "botflow", overlay)]}), encoding="utf-8")
    objects = kustomize(overlay)
    service, monitor = one(objects, "Service"), one(objects, "ServiceMonitor")
    assert service["metadata"]["name"] == "acme-pipeline-exporter"  # the job the Operator would give
    relabel = monitor["spec"]["endpoints"][0]["relabelings"][0]
    assert (relabel["targetLabel"], relabel["replacement"], relabel["action"]) == ("job", DEFAULT.job, "replace")
    assert jobs_in(objects) == {DEFAULT.job}
    deployment = one(objects, "Deployment")
    assert "--pack=botflow" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_mixin_writes_a_component_for_another_job_namespace_and_release(tmp_path):
    """`pipeline-exporter mixin --kubernetes ...` for a user's own setup: the rules, the dashboards
    and the ServiceMonitor's job all say the user's job; the labels and namespace are on every object."""
    from pipeline_exporter.mixin.cli import main

    assert main(["--out", str(tmp_path / "out"), "--pack", "crm", "--job", "acme-crm", "--kubernetes-namespace",
                 "monitoring", "--kubernetes-label", "release=kube-prometheus-stack"]) == 0
    component = tmp_path / "out" / "deploy" / "kubernetes" / "mixin" / "crm"
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [relative(KUBE / "base", overlay)], "components": [relative(component, overlay)]}),
        encoding="utf-8")
    objects = kustomize(overlay)
    monitor = one(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["relabelings"][0]["replacement"] == "acme-crm"
    assert jobs_in(objects) == {"acme-crm"}
    generated = [obj for obj in objects if obj["kind"] in ("PrometheusRule", "ConfigMap")]
    assert generated and all(obj["metadata"]["namespace"] == "monitoring" and
                             obj["metadata"]["labels"]["release"] == "kube-prometheus-stack" for obj in generated)
    for obj in generated:
        for text in obj.get("data", {}).values():  # the dashboards' queries
            assert 'job=\\"acme-crm\\"' in text and 'job=\\"pipeline-exporter\\"' not in text


def test_the_docs_release_label_overlay_labels_what_the_operator_selects(tmp_path):
    """docs/kubernetes.md's overlay for the release label, as written there: the ServiceMonitor and
    PrometheusRules carry the label, and no selector changes (the Service still finds the pods)."""
    text = (REPO / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n# deploy/kubernetes/overlays/mine/kustomization.yaml\n(.*?)```", text, flags=re.S)
    assert block, "docs/kubernetes.md shows the release-label overlay"
    overlay = tmp_path / "mine"
    overlay.mkdir()
    kustomization = yaml.safe_load(block[1])
    assert kustomization["resources"] == ["../method333"]
    kustomization["resources"] = [relative(KUBE / "overlays" / "method333", overlay)]
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    objects = kustomize(overlay)
    selected = [obj for obj in objects if obj["kind"] in ("ServiceMonitor", "PrometheusRule")]
    assert len(selected) >= 3
    assert all(obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"
               and obj["metadata"]["namespace"] == "monitoring" for obj in selected)
    assert "release" not in one(objects, "Service")["spec"]["selector"]
    assert "release" not in one(objects, "ServiceMonitor")["spec"]["selector"]["matchLabels"]
    assert "release" not in one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
