"""aftershock job: manifests as data, pod states, artifacts, the in-pod wrapper (no cluster)."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from aftershock import job
from aftershock.cli import main
from aftershock.config import validate
from aftershock.errors import EXIT_INCONCLUSIVE, EXIT_USAGE, ConfigError, UsageError

SPEC = job.JobSpec(namespace="shop", run_id="r1", image="reg.example/aftershock:9",
                   config_yaml="target: {namespace: shop, deployment: web, service: web}\n",
                   pytest_args=("-k", "pod_kill"), deadline_s=900, hold_s=60)


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


def test_render_suffixes_names_and_keeps_every_reference_consistent() -> None:
    docs = _by_kind(job.render(job.load_manifests(), SPEC))
    sa = docs["ServiceAccount"]["metadata"]["name"]
    assert sa == "aftershock-r1"
    assert docs["ClusterRole"]["metadata"]["name"] == "aftershock-nodes-shop-r1"
    assert "namespace" not in docs["ClusterRole"]["metadata"]
    for kind in ("ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Job"):
        assert docs[kind]["metadata"]["namespace"] == "shop"
        assert docs[kind]["metadata"]["labels"][job.RUN_LABEL] == "r1"
    rb, crb = docs["RoleBinding"], docs["ClusterRoleBinding"]
    assert rb["roleRef"]["name"] == docs["Role"]["metadata"]["name"]
    assert crb["roleRef"]["name"] == docs["ClusterRole"]["metadata"]["name"]
    for binding in (rb, crb):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa,
                                        "namespace": "shop"}]
    j = docs["Job"]
    assert j["spec"]["backoffLimit"] == 0
    assert j["spec"]["activeDeadlineSeconds"] == 900
    pod = j["spec"]["template"]["spec"]
    assert j["spec"]["template"]["metadata"]["labels"][job.RUN_LABEL] == "r1"
    assert pod["serviceAccountName"] == sa
    cm = next(v for v in pod["volumes"] if "configMap" in v)
    assert cm["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert {c["image"] for c in containers.values()} == {"reg.example/aftershock:9"}
    assert containers["suite"]["args"][-2:] == ["-k", "pod_kill"]
    hold = {e["name"]: e["value"] for e in containers["holder"]["env"]}
    assert hold["HOLD_SECONDS"] == "60"
    assert docs["ConfigMap"]["data"] == {"aftershock.yaml": SPEC.config_yaml}


def test_the_pod_is_restricted() -> None:
    pod = _by_kind(job.load_manifests())["Job"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["terminationGracePeriodSeconds"] >= 60
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert c["resources"]["requests"] and c["resources"]["limits"]


def _grants(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(verb, group, res) for rule in doc["rules"] for group in rule["apiGroups"]
            for res in rule["resources"] for verb in rule["verbs"]}


def test_the_roles_grant_exactly_the_documented_permissions() -> None:
    docs = _by_kind(job.load_manifests())
    def key(p: job.Permission) -> tuple[str, str, str]:
        res = f"{p.resource}/{p.subresource}" if p.subresource else p.resource
        return p.verb, p.group, res
    assert _grants(docs["Role"]) == {key(p) for p in job.PERMISSIONS if not p.cluster}
    assert _grants(docs["ClusterRole"]) == {key(p) for p in job.PERMISSIONS if p.cluster}
    assert all(p.why for p in job.PERMISSIONS)
    assert not any("secrets" in g[2] for g in _grants(docs["Role"]) | _grants(
        docs["ClusterRole"]))


def _pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "status": status}


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"])
def test_an_image_that_cannot_be_pulled_is_reported_at_once(reason: str) -> None:
    pod = _pod(phase="Pending", containerStatuses=[
        {"name": "suite", "image": "x/y:1", "state": {"waiting": {"reason": reason,
                                                                   "message": "no such host"}}}])
    stuck = job.diagnose(pod)
    assert stuck is not None and stuck.exit_code == EXIT_USAGE
    assert "x/y:1" in stuck.message and reason in stuck.message


def test_an_unschedulable_pod_is_reported_with_the_schedulers_words() -> None:
    pod = _pod(phase="Pending", conditions=[{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient cpu."}])
    stuck = job.diagnose(pod)
    assert stuck is not None and stuck.exit_code == EXIT_INCONCLUSIVE
    assert "Insufficient cpu" in stuck.message


def test_a_pod_on_its_way_is_not_stuck() -> None:
    assert job.diagnose(_pod(phase="Pending", containerStatuses=[
        {"name": "suite", "state": {"waiting": {"reason": "ContainerCreating"}}}])) is None
    running = _pod(phase="Running", containerStatuses=[
        {"name": "suite", "state": {"running": {}}},
        {"name": "holder", "state": {"running": {}}}])
    assert job.diagnose(running) is None
    assert "suite running" in job.describe(running)


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_extract_unpacks_the_results_and_reads_the_exit_code(tmp_path: Path) -> None:
    names = job.extract(_tar({"./exit-code": b"1\n", "./junit.xml": b"<x/>",
                              "./timelines/a.jsonl": b"{}\n"}), tmp_path)
    assert names == ["exit-code", "junit.xml", "timelines/a.jsonl"]
    assert job.read_exit_code(tmp_path) == 1


def test_extract_refuses_paths_outside_the_destination(tmp_path: Path) -> None:
    with pytest.raises(tarfile.TarError):
        job.extract(_tar({"../evil": b"x"}), tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_in_cluster_config_drops_local_fields_and_ships_the_locustfile(tmp_path: Path) -> None:
    lf = tmp_path / "mine.py"
    lf.write_text("# my profile\n")
    raw = {"target": {"namespace": "shop", "deployment": "web", "service": "web"},
           "kubeconfig": "/home/me/.kube/config", "context": "staging", "results_dir": "out",
           "load": {"locustfile": str(lf)}}
    text, shipped = job.in_cluster_config(validate(raw), raw)
    data = yaml.safe_load(text)
    assert set(data) == {"target", "load"}
    assert data["load"]["locustfile"] == "/etc/aftershock/locustfile.py"
    assert shipped == "# my profile\n"


def test_suite_main_always_leaves_the_exit_code_and_the_done_file(tmp_path: Path) -> None:
    config = validate({"target": {"namespace": "s", "deployment": "d", "service": "d"}})
    assert job.suite_main(config, tmp_path, lambda: 1, rbac_check=False) == 1
    assert (tmp_path / job.EXIT_FILE).read_text() == "1\n"
    assert (tmp_path / job.DONE_FILE).exists()

    def broken() -> int:
        raise ConfigError("slo.during.p99_ms: bad", "fix it")
    assert job.suite_main(config, tmp_path, broken, rbac_check=False) == EXIT_USAGE
    assert job.read_exit_code(tmp_path) == EXIT_USAGE
    assert "slo.during.p99_ms" in (tmp_path / job.ERROR_FILE).read_text()


def test_job_render_prints_applicable_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["job", "render", "--namespace", "shop", "--deployment", "web", "--service",
                 "web", "--image", "i:1", "--run-id", "zz", "-k", "rolling"])
    assert code == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                                         "ClusterRoleBinding", "ConfigMap", "Job"]
    assert yaml.safe_load(docs[5]["data"]["aftershock.yaml"])["target"]["namespace"] == "shop"


def test_job_run_with_a_bad_config_stops_before_the_cluster(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("target: {namespace: s, deployment: d, service: d}\nslo: {durng: {}}\n")
    assert main(["job", "run", "--config", str(cfg)]) == EXIT_USAGE
    assert "did you mean 'slo.during'" in capsys.readouterr().err


def test_the_suite_containers_environment_is_a_valid_config_environment() -> None:
    """Every variable the Job gives the suite must pass the config loader's env check:
    an unknown AFTERSHOCK_* name is a config error and would stop the suite in the pod."""
    from aftershock.config import load_config
    docs = _by_kind(job.render(job.load_manifests(), SPEC))
    pod = docs["Job"]["spec"]["template"]["spec"]
    suite = next(c for c in pod["containers"] if c["name"] == job.SUITE)
    environ = {e["name"]: e.get("value", "x") for e in suite.get("env") or []}
    assert environ[job.SUITE_IMAGE_ENV] == "reg.example/aftershock:9"
    config = load_config(None, environ=environ, overrides={
        "target": {"namespace": "shop", "deployment": "web", "service": "web"}})
    assert config.target.namespace == "shop"


WORKERS = job.JobSpec(namespace="shop", run_id="r2", image="reg.example/aftershock:9",
                      config_yaml="target: {namespace: shop, deployment: web, service: web}\n",
                      worker_pods=2, master_port=6000)


def _pod_create(doc: dict[str, Any]) -> bool:
    return ("create", "", "pods") in _grants(doc)


def test_with_worker_pods_the_run_grants_pod_create_and_opens_the_master_port() -> None:
    plain = _by_kind(job.render(job.load_manifests(), SPEC))
    assert not _pod_create(plain["Role"])  # opt-in: never without load.worker_pods
    docs = _by_kind(job.render(job.load_manifests(), WORKERS))
    assert _pod_create(docs["Role"])
    suite = next(c for c in docs["Job"]["spec"]["template"]["spec"]["containers"]
                 if c["name"] == job.SUITE)
    assert suite["ports"] == [{"name": "locust-master", "containerPort": 6000,
                               "protocol": "TCP"}]
    assert "POD_IP" in {e["name"] for e in suite["env"]}  # the master's address
    job.check_worker_pod_rule(list(docs.values()), 2)


def test_a_role_without_the_opt_in_rule_stops_job_run_before_anything_is_applied() -> None:
    own = dataclasses.replace(WORKERS, grant_worker_pods=False)  # --manifests: used as is
    rendered = job.render(job.load_manifests(), own)
    assert not _pod_create(_by_kind(rendered)["Role"])
    job.check_worker_pod_rule(rendered, 0)  # no worker pods: nothing to check
    with pytest.raises(UsageError) as e:
        job.check_worker_pod_rule(rendered, 2)
    assert e.value.exit_code == EXIT_USAGE
    text = str(e.value)
    assert "load.worker_pods: 2" in text and "create pods" in text
    assert "k8s-job.yaml" in text and "uncomment" in text and "resources: [pods]" in text


def test_job_render_with_own_manifests_lacking_the_rule_exits_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["job", "render", "--namespace", "shop", "--deployment", "web", "--service",
                 "web", "--image", "i:1", "--manifests", str(job.MANIFESTS),
                 "--set", "load.worker_pods=2"])
    assert code == EXIT_USAGE
    assert "opt-in rule `create pods`" in capsys.readouterr().err


def test_the_suite_refuses_to_start_when_its_serviceaccount_may_not_create_worker_pods(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-pod pre-check (SelfSubjectAccessReview as the Job's ServiceAccount) asks for
    pod create only with load.worker_pods, and names the opt-in rule when it is missing."""
    import aftershock.kube
    from aftershock.kube import job_api as kjob
    asked: list[list[tuple[str, str, str, str, str]]] = []

    class _Closed:
        def close(self) -> None:
            pass

    def missing(cluster: object, checks: list[tuple[str, str, str, str, str]]
                ) -> list[tuple[str, str, str, str, str]]:
        asked.append(list(checks))
        return [c for c in checks if c[:4] == ("create", "", "pods", "")]

    monkeypatch.setattr(aftershock.kube, "connect", lambda config: _Closed())
    monkeypatch.setattr(kjob, "missing_permissions", missing)
    target = {"namespace": "shop", "deployment": "web", "service": "web"}
    ran: list[bool] = []

    def run() -> int:
        ran.append(True)
        return 0
    assert job.suite_main(validate({"target": target}), tmp_path, run) == 0
    assert ("create", "", "pods", "", "shop") not in asked[0]
    config = validate({"target": target, "load": {"worker_pods": 2}})
    assert job.suite_main(config, tmp_path, run) == EXIT_USAGE
    assert ran == [True]  # nothing ran the second time
    assert ("create", "", "pods", "", "shop") in asked[1]
    error = (tmp_path / job.ERROR_FILE).read_text()
    assert "create pods in shop: load.worker_pods: locust worker pods (opt-in)" in error
    assert "for load.worker_pods: 2: enable the opt-in rule in the Role of k8s-job.yaml" \
        in error
    assert "--no-rbac-check" not in error  # only the opt-in rule is missing


def test_the_shipped_config_leaves_the_workstations_master_host_behind(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("target: {namespace: shop, deployment: web, service: web}\n"
                   "load: {worker_pods: 2, master_host: 198.19.128.1}\n")
    assert main(["job", "render", "--config", str(cfg), "--image", "i:1"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    shipped = yaml.safe_load(_by_kind(docs)["ConfigMap"]["data"]["aftershock.yaml"])
    assert shipped["load"] == {"worker_pods": 2}


def test_extract_refuses_paths_outside_the_destination_without_tar_filters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Python before 3.11.4 (Debian 12's python3) has no tarfile extraction filters.
    monkeypatch.delattr(tarfile, "data_filter")
    names = job.extract(_tar({"./exit-code": b"0\n", "./timelines/a.jsonl": b"{}\n"}),
                        tmp_path / "ok")
    assert names == ["exit-code", "timelines/a.jsonl"]
    with pytest.raises(tarfile.TarError):
        job.extract(_tar({"../evil": b"x"}), tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def _render_with_chaos(tmp_path: Path, capsys: pytest.CaptureFixture[str], method: str,
                       *extra: str) -> dict[str, dict[str, Any]]:
    experiment = tmp_path / "exp.json"
    experiment.write_text(
        '{"title": "t", "method": [' + method + '], "rollbacks": [{"type": "action", '
        '"name": "back", "provider": {"type": "python", "module": "chaosk8s.deployment.actions", '
        '"func": "scale_deployment", "arguments": {"name": "dep", "replicas": 2}}}]}')
    cfg = tmp_path / "c.yaml"
    cfg.write_text("target: {namespace: shop, deployment: web, service: web}\n"
                   f"faults: {{chaostoolkit: {{experiment: {experiment}, timeout_s: 60}}}}\n")
    assert main(["job", "render", "--config", str(cfg), "--image", "i:1", *extra]) == 0
    return _by_kind(list(yaml.safe_load_all(capsys.readouterr().out)))


_SCALE = ('{"type": "action", "name": "down", "provider": {"type": "python", '
          '"module": "chaosk8s.deployment.actions", "func": "scale_deployment", '
          '"arguments": {"name": "dep", "replicas": 0}}}')


def test_job_render_ships_the_chaos_toolkit_experiment_in_the_configmap(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = _render_with_chaos(tmp_path, capsys, _SCALE)
    data = docs["ConfigMap"]["data"]
    shipped = yaml.safe_load(data["aftershock.yaml"])
    # The pod reads the file from the config mount, as JSON by its suffix.
    assert shipped["faults"]["chaostoolkit"] == {
        "experiment": "/etc/aftershock/chaostoolkit-experiment.json", "timeout_s": 60}
    assert data["chaostoolkit-experiment.json"] == (tmp_path / "exp.json").read_text()
    # Scaling patches deployments, which the Job's Role grants already: nothing added.
    assert docs["Role"]["rules"] == _by_kind(job.load_manifests())["Role"]["rules"]


def test_job_render_grants_what_the_experiments_chaosk8s_actions_need_for_that_run_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deny = ('{"type": "action", "name": "deny", "provider": {"type": "python", '
            '"module": "chaosk8s.networking.actions", "func": "deny_all_ingress"}}, '
            '{"type": "action", "name": "undeny", "provider": {"type": "python", '
            '"module": "chaosk8s.networking.actions", "func": "remove_deny_all_ingress"}}, '
            '{"type": "action", "name": "again", "provider": {"type": "python", '
            '"module": "chaosk8s.networking.actions", "func": "deny_all_egress"}}')
    docs = _render_with_chaos(tmp_path, capsys, deny)
    added = _grants(docs["Role"]) - _grants(_by_kind(job.load_manifests())["Role"])
    assert added == {("create", "networking.k8s.io", "networkpolicies"),
                     ("delete", "networking.k8s.io", "networkpolicies")}
    assert len(docs["Role"]["rules"]) == len(_by_kind(job.load_manifests())["Role"]["rules"]) + 2
    assert _grants(docs["ClusterRole"]) == _grants(_by_kind(job.load_manifests())["ClusterRole"])
    # --manifests: the user's Role is used as it is.
    own = _render_with_chaos(tmp_path, capsys, deny, "--manifests", str(job.MANIFESTS))
    assert own["Role"]["rules"] == _by_kind(job.load_manifests())["Role"]["rules"]
    assert "chaostoolkit-experiment.json" in own["ConfigMap"]["data"]


def test_without_faults_chaostoolkit_the_role_and_configmap_are_unchanged(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["job", "render", "--namespace", "shop", "--deployment", "web", "--service",
                 "web", "--image", "i:1"]) == 0
    docs = _by_kind(list(yaml.safe_load_all(capsys.readouterr().out)))
    assert list(docs["ConfigMap"]["data"]) == ["aftershock.yaml"]
    assert docs["Role"]["rules"] == _by_kind(job.load_manifests())["Role"]["rules"]


def test_job_render_refuses_a_broken_chaos_toolkit_experiment_before_anything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    experiment = tmp_path / "exp.json"
    experiment.write_text('{"title": "no method"}')
    cfg = tmp_path / "c.yaml"
    cfg.write_text("target: {namespace: shop, deployment: web, service: web}\n"
                   f"faults: {{chaostoolkit: {{experiment: {experiment}}}}}\n")
    assert main(["job", "render", "--config", str(cfg), "--image", "i:1"]) == EXIT_USAGE
    assert "has no method" in capsys.readouterr().err
