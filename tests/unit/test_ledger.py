"""The restore ledger: its entries, what counts as a leftover, whether the run that left it is
alive, and what is undone — from hand-built objects. The undo's calls are checked against a
recording stand-in for the client (their effect on a real cluster is
tests/e2e/test_kill_restore.py), and against the Job's RBAC."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from aftershock import job
from aftershock.faults.ledger import (
    RUN_LABEL,
    SUITE_CONTAINER,
    Change,
    Entry,
    Facts,
    Leftover,
    Owner,
    Ref,
    decide,
    fingerprint,
    found_on,
    judge,
)
from aftershock.job.pod import SUITE
from aftershock.job.rbac import PERMISSIONS
from aftershock.kube import ledger as kledger
from aftershock.kube.cluster import Cluster
from aftershock.kube.load_workers import WorkerPods

ME = Owner("as-me", "here", 100, "boot:1")
NOW = 1_000_000.0
TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]}}


def entry(change: Change, original: Any, owner: Owner, expires: float = NOW + 600) -> Entry:
    return Entry(change, owner, original, NOW - 60, expires)


def node(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"unschedulable": bool(annotations)}}


def facts(processes: dict[int, str] | None = None,
          pods: dict[str, dict[str, Any] | None] | None = None) -> Facts:
    running = processes or {}
    return Facts(ME, NOW, "here", running.get, pods or {})


def job_pod(phase: str = "Running", suite: str = "running") -> dict[str, Any]:
    return {"status": {"phase": phase, "containerStatuses": [
        {"name": SUITE_CONTAINER, "state": {suite: {}}},
        {"name": "holder", "state": {"running": {}}}]}}


# ---------------------------------------------------------------- entries


@pytest.mark.parametrize(("change", "original"), [
    (Change.CORDON, False), (Change.SCALE, 2), (Change.TEMPLATE, TEMPLATE),
    (Change.WORKER, None)])
def test_an_entry_reads_back_as_written(change: Change, original: Any) -> None:
    e = entry(change, original, Owner("as-1", "h", 7, "b:9", "shop/suite-x"))
    assert Entry.decode(change, e.encode()) == e


@pytest.mark.parametrize(("change", "text"), [
    (Change.CORDON, "not json"), (Change.CORDON, "[]"), (Change.CORDON, "{}"),
    (Change.SCALE, entry(Change.SCALE, "2", ME).encode()),
    (Change.SCALE, entry(Change.SCALE, -1, ME).encode()),
    (Change.SCALE, entry(Change.SCALE, True, ME).encode()),
    (Change.CORDON, entry(Change.CORDON, "false", ME).encode()),
    (Change.TEMPLATE, entry(Change.TEMPLATE, {"metadata": {}}, ME).encode()),
    (Change.CORDON, entry(Change.CORDON, False, ME).encode().replace('"pid":100,', "")
     .replace('"owner":{', '"owner":{"bogus":1,')),
])
def test_a_text_that_is_not_an_entry_is_refused(change: Change, text: str) -> None:
    assert Entry.decode(change, text) is None


def test_leftovers_are_found_on_nodes_deployments_and_worker_pods() -> None:
    cordon = entry(Change.CORDON, False, ME).encode()
    assert found_on("Node", [node("n1"), node("n2", {Change.CORDON.key: cordon})]) == [
        Leftover(Ref("Node", "n2"), Change.CORDON, entry(Change.CORDON, False, ME), cordon)]

    scale = entry(Change.SCALE, 2, ME).encode()
    dep = {"metadata": {"name": "db", "namespace": "shop", "annotations": {
        Change.SCALE.key: scale, Change.TEMPLATE.key: "garbled",
        "deployment.kubernetes.io/revision": "3"}}}
    found = found_on("Deployment", [dep])
    assert [(str(x.ref), x.change, x.entry is not None) for x in found] == [
        ("deployment shop/db", Change.TEMPLATE, False), ("deployment shop/db", Change.SCALE, True)]
    assert str(found[0]).startswith("deployment shop/db: unreadable aftershock.dev/template")
    assert str(found[1]) == "deployment shop/db: scaled (was 2 replicas) by run as-me"

    worker = {"metadata": {"name": "w-0", "namespace": "shop", "labels": {RUN_LABEL: "as-x"}}}
    [left] = found_on("Pod", [worker, {"metadata": {"name": "web-1", "namespace": "shop"}}])
    assert left.ref == Ref("Pod", "w-0", "shop") and left.entry is None  # reported, not undone


# ---------------------------------------------------------------- alive or not


def test_this_runs_own_entries_are_alive() -> None:
    assert judge(ME, NOW - 1, facts()) == (True, "it is this run")


def test_a_job_run_lives_as_long_as_its_suite_container() -> None:
    owner = Owner("as-job", "suite-abc", 1, "b:1", "shop/suite-abc")
    running = facts(pods={"shop/suite-abc": job_pod()})
    assert judge(owner, NOW - 1, running)[0] is True  # the lease does not matter: it is asked
    for pod, why in ((None, "its Job pod shop/suite-abc no longer exists"),
                     (job_pod(suite="terminated"), "suite container has terminated"),
                     (job_pod(phase="Failed"), "has ended (Failed)")):
        alive, said = judge(owner, NOW + 600, facts(pods={"shop/suite-abc": pod}))
        assert not alive and why in said


def test_a_job_pod_that_cannot_be_read_is_judged_by_the_lease() -> None:
    owner = Owner("as-job", "suite-abc", 1, "b:1", "elsewhere/suite-abc")
    alive, why = judge(owner, NOW + 30, facts())
    assert alive and why.startswith("presumed alive: it runs on pod elsewhere/suite-abc")
    assert judge(owner, NOW - 30, facts())[0] is False


def test_a_process_on_this_host_is_alive_while_its_pid_runs_with_the_same_start() -> None:
    owner = Owner("as-old", "here", 42, "boot:777")
    assert judge(owner, NOW + 600, facts({42: "boot:777"})) == (
        True, "its process 42 on this host still runs")
    assert judge(owner, NOW + 600, facts({42: "boot:999"}))[0] is False  # the pid was reused
    assert judge(owner, NOW + 600, facts()) == (False, "its process 42 on this host has ended")


def test_a_process_on_another_host_is_presumed_alive_until_its_lease_ends() -> None:
    owner = Owner("as-ci", "ci-runner-7", 42, "boot:777")
    alive, why = judge(owner, NOW + 120, facts({42: "boot:777"}))
    assert alive and "host ci-runner-7, which cannot be asked; its lease ends in 120 s" in why
    alive, why = judge(owner, NOW - 5, facts())
    assert not alive and "lease expired 5 s ago" in why


def test_decide_undoes_only_what_a_gone_run_left() -> None:
    gone = Owner("as-gone", "here", 42, "boot:1")
    alive = Owner("as-alive", "here", 43, "boot:2")
    lefts = [Leftover(Ref("Node", "n1"), Change.CORDON, entry(Change.CORDON, False, gone), ""),
             Leftover(Ref("Node", "n2"), Change.CORDON, entry(Change.CORDON, False, alive), ""),
             Leftover(Ref("Pod", "w", "shop"), Change.WORKER, None, "")]
    f = facts({43: "boot:2"})
    decisions = decide(lefts, f)
    assert [d.undo for d in decisions] == [True, False, False]
    assert decisions[1].why.startswith("left alone: its run is alive")
    assert "cannot be undone" in decisions[2].why
    assert [d.undo for d in decide(lefts, f, restore=False)] == [False, False, False]
    assert decide(lefts, f, restore=False)[0].why.startswith("not restored (--no-restore)")


def test_a_template_deployed_over_after_the_run_is_reported_not_reverted() -> None:
    """A killed rollout's entry holds the template it set; a deploy made since (same
    annotation kept, as ``kubectl apply`` keeps it) must not be undone by restore."""
    gone = Owner("as-gone", "here", 42, "boot:1")
    ours = {**TEMPLATE, "spec": {"containers": [{"name": "web", "image": "web:1",
                                                 "env": [{"name": "X", "value": "1"}]}]}}
    later = {**TEMPLATE, "spec": {"containers": [{"name": "web", "image": "web:2"}]}}
    e = Entry(Change.TEMPLATE, gone, TEMPLATE, NOW - 60, NOW - 1, fingerprint(ours))
    assert Entry.decode(Change.TEMPLATE, e.encode()) == e

    def deployment(template: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": {"name": "web", "namespace": "shop",
                             "annotations": {Change.TEMPLATE.key: e.encode()}},
                "spec": {"template": template}}

    [still_ours] = found_on("Deployment", [deployment(ours)])
    [deployed_over] = found_on("Deployment", [deployment(later)])
    killed_before_it_knew = dataclasses.replace(deployed_over,
                                                entry=dataclasses.replace(e, changed_to=""))
    first, second, third = decide([still_ours, deployed_over, killed_before_it_knew], facts())
    assert first.undo and third.undo
    assert not second.undo
    assert second.why.startswith("left alone: the pod template changed again after run as-gone")
    assert "remove the aftershock.dev/template annotation" in second.why


def test_a_template_fingerprint_ignores_nulls_and_key_order() -> None:
    """The API's raw JSON has ``creationTimestamp: null`` in a template's metadata."""
    with_null = {"spec": TEMPLATE["spec"], "metadata": {"labels": {"app": "web"},
                                                        "creationTimestamp": None}}
    assert fingerprint(with_null) == fingerprint(TEMPLATE)
    assert fingerprint({**TEMPLATE, "spec": {"containers": []}}) != fingerprint(TEMPLATE)


def test_the_suite_container_is_the_jobs() -> None:
    assert SUITE_CONTAINER == SUITE


# ---------------------------------------------------------------- the adapter's calls


class _Api:
    """Records the calls undo and record make, in place of CoreV1Api / AppsV1Api."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kw: Any) -> None:
            self.calls.append((name, args, kw))
        return call


def _cluster() -> tuple[Cluster, _Api]:
    api = _Api()
    cluster = Cluster.__new__(Cluster)
    cluster.namespaces = frozenset({"shop"})
    cluster.core = api  # type: ignore[assignment]
    cluster.apps = api  # type: ignore[assignment]
    return cluster, api


def test_each_undo_restores_the_original_and_removes_the_entry_in_one_call() -> None:
    cluster, api = _cluster()
    gone = Owner("as-gone")
    cordon = Leftover(Ref("Node", "n1"), Change.CORDON, entry(Change.CORDON, False, gone), "")
    assert kledger.undo(cluster, cordon) == "uncordoned node n1"
    scale = Leftover(Ref("Deployment", "db", "shop"), Change.SCALE,
                     entry(Change.SCALE, 2, gone), "")
    assert kledger.undo(cluster, scale) == "scaled deployment shop/db back to 2"
    raw = entry(Change.TEMPLATE, TEMPLATE, gone).encode()
    template = Leftover(Ref("Deployment", "web", "shop"), Change.TEMPLATE,
                        entry(Change.TEMPLATE, TEMPLATE, gone), raw)
    assert kledger.undo(cluster, template) == "restored the pod template of deployment shop/web"
    worker = Leftover(Ref("Pod", "w-0", "shop"), Change.WORKER,
                      entry(Change.WORKER, None, gone), "")
    assert kledger.undo(cluster, worker) == "deleted load worker pod shop/w-0"
    (n, n_args, _), (d, d_args, _), (t, t_args, t_kw), (p, p_args, _) = api.calls
    assert (n, n_args) == ("patch_node", ("n1", {
        "metadata": {"annotations": {"aftershock.dev/cordon": None}},
        "spec": {"unschedulable": False}}))
    assert (d, d_args) == ("patch_namespaced_deployment", ("db", "shop", {
        "metadata": {"annotations": {"aftershock.dev/scale": None}},
        "spec": {"replicas": 2}}))
    path = "/metadata/annotations/aftershock.dev~1template"
    assert (t, t_args[:2]) == ("patch_namespaced_deployment", ("web", "shop"))
    assert t_args[2] == [{"op": "test", "path": path, "value": raw},
                         {"op": "replace", "path": "/spec/template", "value": TEMPLATE},
                         {"op": "remove", "path": path}]
    assert t_kw["_content_type"] == "application/json-patch+json"
    assert (p, p_args) == ("delete_namespaced_pod", ("w-0", "shop"))


def test_an_entry_is_written_before_and_removed_after_as_this_runs() -> None:
    cluster, api = _cluster()
    kledger.record(cluster, Ref("Node", "n1"), Change.CORDON, False, lease_s=300)
    kledger.clear(cluster, Ref("Node", "n1"), Change.CORDON)
    (_, (_, written), _), (_, (_, cleared), _) = api.calls
    e = Entry.decode(Change.CORDON, written["metadata"]["annotations"]["aftershock.dev/cordon"])
    assert e is not None and e.owner == kledger.this_run() and e.original is False
    assert 299 <= e.expires - e.at <= 301
    assert cleared == {"metadata": {"annotations": {"aftershock.dev/cordon": None}}}


def test_this_run_is_this_process_and_alive_to_itself() -> None:
    me = kledger.this_run()
    assert me.pid > 0 and me.started and kledger.process_start(me.pid) == me.started
    assert judge(dataclasses.replace(me, run="as-earlier"), 0.0,
                 Facts(Owner("as-other"), NOW, me.host, kledger.process_start, {}))[0]


def test_worker_pods_are_on_the_ledger() -> None:
    cluster, _ = _cluster()
    pods = WorkerPods(cluster, "shop", "img:1", "Exp 1", max_duration_s=100)
    meta = pods.manifest(0, [], {})["metadata"]
    assert meta["labels"][RUN_LABEL] == kledger.this_run().run
    [left] = found_on("Pod", [{"metadata": {**meta, "namespace": "shop"}}])
    assert left.entry is not None and left.entry.owner == kledger.this_run()
    assert left.entry.expires - left.entry.at == pytest.approx(220, abs=1)


def test_the_jobs_rbac_grants_every_call_restore_makes() -> None:
    granted = {(p.verb, p.group, p.resource, p.cluster) for p in PERMISSIONS
               if not p.subresource}
    assert set(kledger.RESTORE_CALLS) <= granted


def test_job_run_hands_no_restore_to_the_suite() -> None:
    spec = job.JobSpec(namespace="shop", run_id="r1", image="img:1", config_yaml="{}\n")
    docs = job.load_manifests(job.MANIFESTS)

    def suite_args(s: job.JobSpec) -> list[str]:
        [j] = [d for d in job.render(docs, s) if d["kind"] == "Job"]
        [c] = [c for c in j["spec"]["template"]["spec"]["containers"] if c["name"] == SUITE]
        return list(c["args"])

    assert "--no-restore" not in suite_args(spec)
    assert "--no-restore" in suite_args(dataclasses.replace(spec, restore=False))


def test_restore_lists_what_it_restored_and_exits_3_while_something_is_left(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Any) -> None:
    import aftershock.kube
    from aftershock.cli import main
    from aftershock.faults.ledger import Decision

    class _Closed:
        def close(self) -> None:
            pass

    gone = Leftover(Ref("Node", "n1"), Change.CORDON, entry(Change.CORDON, False, ME), "")
    alive = Leftover(Ref("Deployment", "db", "shop"), Change.SCALE,
                     entry(Change.SCALE, 2, ME), "")
    found = kledger.Restored([Decision(gone, True, "its process 42 on this host has ended"),
                              Decision(alive, False, "left alone: its run is alive: x")],
                             ["uncordoned node n1"])
    monkeypatch.setattr(aftershock.kube, "connect", lambda config: _Closed())
    monkeypatch.setattr(kledger, "restore_leftovers", lambda cluster: found)
    cfg = tmp_path / "a.yaml"
    cfg.write_text("target:\n  namespace: shop\n  deployment: web\n  service: web\n")
    assert main(["restore", "--config", str(cfg)]) == 3
    out = capsys.readouterr().out
    assert "restored: uncordoned node n1" in out
    assert "left in place: deployment shop/db: scaled (was 2 replicas) by run as-me " \
           "(left alone: its run is alive: x)" in out
    monkeypatch.setattr(kledger, "restore_leftovers",
                        lambda cluster: kledger.Restored(found.decisions[:1], found.done))
    assert main(["restore", "--config", str(cfg)]) == 0
    monkeypatch.setattr(kledger, "restore_leftovers", lambda cluster: kledger.Restored())
    assert main(["restore", "--config", str(cfg)]) == 0
    assert "nothing to restore on the nodes and namespace(s) shop" in capsys.readouterr().out


def test_restore_that_cannot_look_exits_3_without_a_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Any) -> None:
    import aftershock.kube
    from aftershock.cli import main

    class _Closed:
        def close(self) -> None:
            pass

    def denied(cluster: object) -> kledger.Restored:
        raise RuntimeError("(403) nodes is forbidden")

    monkeypatch.setattr(aftershock.kube, "connect", lambda config: _Closed())
    monkeypatch.setattr(kledger, "restore_leftovers", denied)
    cfg = tmp_path / "a.yaml"
    cfg.write_text("target:\n  namespace: shop\n  deployment: web\n  service: web\n")
    assert main(["restore", "--config", str(cfg)]) == 3
    err = capsys.readouterr().err
    assert "could not look for leftovers: (403) nodes is forbidden" in err
    assert "Traceback" not in err
