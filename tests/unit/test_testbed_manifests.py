"""The testbed manifests (testbed/manifests) parse and say what their README says.

Static checks only (no cluster): YAML parses, kustomizations list every file,
selectors match, images are ones the image builder makes, env knobs exist in
the sample app, and each variant carries exactly the defect it is named for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "testbed" / "manifests"
SAMPLEAPP = REPO / "testbed" / "sampleapp"

Obj = dict[str, Any]


def load_dir(d: Path) -> list[Obj]:
    objs: list[Obj] = []
    for f in sorted(d.glob("*.yaml")):
        if f.name != "kustomization.yaml":
            objs += [o for o in yaml.safe_load_all(f.read_text()) if o]
    return objs


def kustomize(d: Path) -> list[Obj]:
    """A tiny stand-in for `kubectl kustomize`: resources only (files and directories)."""
    k = yaml.safe_load((d / "kustomization.yaml").read_text())
    assert set(k) <= {"apiVersion", "kind", "resources"}, f"{d}: only plain resources are used"
    out: list[Obj] = []
    for r in k["resources"]:
        p = (d / r).resolve()
        if p.is_dir():
            out += kustomize(p)
        else:
            out += [o for o in yaml.safe_load_all(p.read_text()) if o]
    return out


APP_DIRS = sorted(p.parent for p in MANIFESTS.rglob("kustomization.yaml"))
VARIANTS = sorted(p.name for p in (MANIFESTS / "variants").iterdir() if p.is_dir())


def of_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in of_kind(objs, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"want one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(dep: Obj) -> Obj:
    [c] = dep["spec"]["template"]["spec"]["containers"]
    return c  # type: ignore[no-any-return]


def env(dep: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value", "<ref>") for e in container(dep).get("env", [])}


def walk(o: Any) -> Iterator[Any]:
    yield o
    if isinstance(o, dict):
        for v in o.values():
            yield from walk(v)
    elif isinstance(o, list):
        for v in o:
            yield from walk(v)


def seconds(v: str) -> float:
    v = v.strip()
    if v.endswith("ms"):
        return float(v[:-2]) / 1000
    return float(v[:-1]) if v.endswith("s") else float(v)


def known_knobs() -> set[str]:
    src = (SAMPLEAPP / "config.go").read_text()
    return set(re.findall(r'\b(?:str|dur|boolean)\("([A-Z_]+)"', src)) | {"ERROR_RATE"}


def built_image_refs() -> set[str]:
    images = (REPO / "testbed" / "images")
    sampleapp = (SAMPLEAPP / "VERSION").read_text().strip()
    toolbox = (images / "TOOLBOX_VERSION").read_text().strip()
    return {f"aftershock.local/sampleapp:{sampleapp}", f"aftershock.local/toolbox:{toolbox}"}


# --------------------------------------------------------------------------- every file


def test_there_is_something_to_check() -> None:
    assert {"web", "dep", "toolbox"} <= {d.name for d in APP_DIRS}
    assert {"exit-fast", "single-replica", "no-pdb", "pdb-blocking", "hpa-no-requests",
            "always-ready", "liveness-dependency", "failing"} <= set(VARIANTS)


@pytest.mark.parametrize("d", APP_DIRS, ids=lambda d: str(d.relative_to(MANIFESTS)))
def test_kustomization_lists_every_file_and_objects_are_sane(d: Path) -> None:
    k = yaml.safe_load((d / "kustomization.yaml").read_text())
    files = {r for r in k["resources"] if (d / r).is_file()}
    assert files == {f.name for f in d.glob("*.yaml")} - {"kustomization.yaml"}
    objs = kustomize(d)
    names = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(names) == len(set(names)), f"duplicate objects in {d}"
    for o in objs:
        assert "namespace" not in o["metadata"], "the applier sets the namespace"
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "aftershock-testbed"
        for s in walk(o):
            assert not (isinstance(s, str) and re.search(r"\b10\.\d+\.\d+\.\d+", s)), s


@pytest.mark.parametrize("d", APP_DIRS, ids=lambda d: str(d.relative_to(MANIFESTS)))
def test_selectors_images_and_knobs(d: Path) -> None:
    objs = kustomize(d)
    deployments = {o["metadata"]["name"]: o for o in of_kind(objs, "Deployment")}
    knobs = known_knobs()
    for name, dep in deployments.items():
        tmpl = dep["spec"]["template"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= tmpl["metadata"]["labels"].items()
        c = container(dep)
        assert c["image"] in built_image_refs(), c["image"]
        assert c["imagePullPolicy"] in ("Never", "IfNotPresent")
        unknown = set(env(dep)) - knobs - {"POD_NAME", "NODE_NAME"}
        assert not unknown, f"{name}: env {unknown} is not a sample app knob"
        assert tmpl["spec"]["securityContext"]["runAsNonRoot"] is True
        if c["image"].startswith("aftershock.local/sampleapp:"):
            assert c["ports"] == [{"name": "http", "containerPort": 8080}]
            paths = [c[p]["httpGet"]["path"] for p in
                     ("startupProbe", "readinessProbe", "livenessProbe") if p in c]
            assert len(paths) == len(set(paths)), f"{name}: probes share a path"
    for kind in ("Service", "PodDisruptionBudget"):
        for o in of_kind(objs, kind):
            sel = o["spec"]["selector"]
            sel = sel.get("matchLabels", sel)
            assert any(sel.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
                       for dep in deployments.values()), (
                f"{kind} {o['metadata']['name']} selects nothing")
    for h in of_kind(objs, "HorizontalPodAutoscaler"):
        assert h["apiVersion"] == "autoscaling/v2"
        assert h["spec"]["scaleTargetRef"]["name"] in deployments
    for s in of_kind(objs, "Service"):
        assert s["spec"]["type"] == "ClusterIP"
        assert s["spec"]["ports"][0]["targetPort"] == "http"


def grace_covers_shutdown(dep: Obj) -> tuple[float, float]:
    """(grace period, preStop + drain + in-flight timeout)."""
    spec = dep["spec"]["template"]["spec"]
    c = container(dep)
    e = env(dep)
    pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    need = pre
    if e.get("SHUTDOWN", "graceful") == "graceful":
        need += seconds(e.get("DRAIN_SECONDS", "5"))
        need += seconds(e.get("SHUTDOWN_TIMEOUT_SECONDS", "10"))
    return spec.get("terminationGracePeriodSeconds", 30), need


@pytest.mark.parametrize("d", APP_DIRS, ids=lambda d: str(d.relative_to(MANIFESTS)))
def test_grace_period_covers_prestop_and_drain(d: Path) -> None:
    for dep in of_kind(kustomize(d), "Deployment"):
        if container(dep)["image"].startswith("aftershock.local/sampleapp:"):
            grace, need = grace_covers_shutdown(dep)
            assert grace >= need, f"{dep['metadata']['name']}: grace {grace}s < {need}s"


# --------------------------------------------------------------------------- well-behaved web


def test_web_is_well_behaved() -> None:
    objs = kustomize(MANIFESTS / "web")
    dep = one(objs, "Deployment", "web")
    spec, c = dep["spec"]["template"]["spec"], container(dep)
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    probes = ("startupProbe", "readinessProbe", "livenessProbe")
    assert {c[p]["httpGet"]["path"] for p in probes} == {"/startupz", "/readyz", "/healthz"}
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["cpu"]
    assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
    assert c["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
    assert env(dep)["SHUTDOWN"] == "graceful" and seconds(env(dep)["DRAIN_SECONDS"]) > 0
    assert env(dep)["LIVENESS"] == "independent"
    assert env(dep)["READINESS_DEPENDENCY_URL"] == "http://dep/"
    [tsc] = spec["topologySpreadConstraints"]
    assert tsc["topologyKey"] == "kubernetes.io/hostname"
    pdb = one(objs, "PodDisruptionBudget", "web")
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 2
    hpa = one(objs, "HorizontalPodAutoscaler", "web")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] == dep["spec"]["replicas"]
    one(objs, "Service", "web")
    one(objs, "Deployment", "dep")  # the dependency comes along
    one(objs, "Service", "dep")


# --------------------------------------------------------------------------- variants


def variant(name: str) -> tuple[Obj, list[Obj]]:
    objs = kustomize(MANIFESTS / "variants" / name)
    deps = [d for d in of_kind(objs, "Deployment") if d["metadata"]["name"] != "dep"]
    assert len(deps) == 1
    return deps[0], objs


def test_exit_fast() -> None:
    dep, _ = variant("exit-fast")
    assert env(dep)["SHUTDOWN"] == "immediate"
    assert "lifecycle" not in container(dep)


def test_single_replica() -> None:
    dep, objs = variant("single-replica")
    assert dep["spec"]["replicas"] == 1
    assert not of_kind(objs, "PodDisruptionBudget")


def test_no_pdb_and_all_replicas_on_one_node() -> None:
    dep, objs = variant("no-pdb")
    assert not of_kind(objs, "PodDisruptionBudget")
    terms = dep["spec"]["template"]["spec"]["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["topologyKey"] == "kubernetes.io/hostname"


def test_pdb_blocking() -> None:
    dep, objs = variant("pdb-blocking")
    [pdb] = of_kind(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == dep["spec"]["replicas"]


def test_hpa_without_cpu_requests() -> None:
    dep, objs = variant("hpa-no-requests")
    res = container(dep).get("resources", {})
    assert "cpu" not in res.get("requests", {}) and "cpu" not in res.get("limits", {})
    [hpa] = of_kind(objs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_always_ready_without_prestop() -> None:
    dep, _ = variant("always-ready")
    assert env(dep)["READINESS"] == "always"
    assert "lifecycle" not in container(dep)
    assert "startupProbe" not in container(dep)


def test_liveness_follows_the_dependency() -> None:
    dep, objs = variant("liveness-dependency")
    assert env(dep)["LIVENESS"] == "dependency"
    one(objs, "Service", "dep")


def test_failing_target() -> None:
    dep, _ = variant("failing")
    e = env(dep)
    assert float(e.get("ERROR_RATE", "0")) > 0 or e.get("READINESS") == "fail"


def test_readme_lists_every_directory() -> None:
    readme = (MANIFESTS / "README.md").read_text()
    for d in APP_DIRS:
        assert str(d.relative_to(MANIFESTS)) in readme, f"README.md does not mention {d}"
