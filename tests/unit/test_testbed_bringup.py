"""The testbed bring-up program (testbed/tb) without a cluster: addresses, configs, checks."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "testbed"))

from tb import build, host, render, util
from tb import config as c

TESTBED_NET = ipaddress.ip_network(c.SUPERNET)


def test_every_address_is_inside_the_testbed_range_and_none_in_10_8() -> None:
    nets = [c.HOST_NET, c.CLUSTER_CIDR, c.SERVICE_CIDR]
    ips = [c.CONTROL_IP, c.KUBERNETES_SVC_IP, c.DNS_SVC_IP]
    for node in c.NODES:
        nets.append(node.pod_cidr)
        ips += [node.ip, node.pod_gateway]
    for net in nets:
        assert ipaddress.ip_network(net).subnet_of(TESTBED_NET), net
    for ip in ips:
        assert ipaddress.ip_address(ip) in TESTBED_NET, ip
    assert ipaddress.ip_address(c.KUBERNETES_SVC_IP) in ipaddress.ip_network(c.SERVICE_CIDR)
    assert ipaddress.ip_address(c.DNS_SVC_IP) in ipaddress.ip_network(c.SERVICE_CIDR)


def test_nodes_do_not_share_anything_a_kubelet_or_containerd_owns() -> None:
    for attr in ("name", "ip", "pod_cidr", "bridge", "cgroup_root", "data", "state", "socket",
                 "cni_network"):
        values = [getattr(n, attr) for n in c.NODES]
        assert len(set(values)) == len(values), attr
    assert all(len(n.bridge) <= 15 for n in c.NODES)  # Linux interface name limit


def test_rendered_configs_keep_each_node_separate(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "CONF", tmp_path / "conf")
    monkeypatch.setattr(c, "RUN", tmp_path / "run")
    node = c.NODES[1]
    toml = render.containerd(node).read_text()
    for own in (node.socket, node.data / "containerd", node.state / "runc", "cni-conf"):
        assert str(own) in toml
    assert "SystemdCgroup = false" in toml
    assert f'sandbox_image = "{c.SANDBOX_IMAGE}"' in toml
    kubelet = render.kubelet(node).read_text()
    for line in ("failCgroupV1: false", "cgroupDriver: cgroupfs",
                 f"cgroupRoot: {node.cgroup_root}", f"address: {node.ip}",
                 f"clusterDNS: [{c.DNS_SVC_IP}]", "imageGCHighThresholdPercent: 100"):
        assert line in kubelet
    text = toml + kubelet + render.kube_proxy().read_text() + render.corefile().read_text()
    assert not re.search(r"\b10\.\d+\.\d+\.\d+", text)
    assert "forward" not in render.corefile().read_text()


def test_versions_come_from_the_go_mod_files() -> None:
    assert build.k8s_version().startswith("v1.35.")
    assert build.bin_path("kubectl").parent.name == f"k8s-{build.k8s_version()}"
    assert build.bin_path("coredns").parent.name.startswith("coredns-v")
    assert build.bin_path("metrics-server").parent.name.startswith("metrics-server-v")


def test_not_root_names_the_problem_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(util.TestbedError) as err:
        host.require_root()
    assert "root" in err.value.problem and "sudo" in err.value.fix


def test_a_taken_port_is_reported_with_its_process(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        monkeypatch.setattr(host, "wanted_ports", lambda: [("127.0.0.1", port, "tcp", "x")])
        with pytest.raises(util.TestbedError) as err:
            host.check_ports()
    assert f"tcp/{port}" in err.value.problem and f"pid {os.getpid()}" in err.value.problem
    assert f"kill {os.getpid()}" in err.value.fix


def test_restart_takes_exactly_one_known_component() -> None:
    from tb import cluster
    assert cluster.parse_restart(["kube-apiserver"]) == ("kube-apiserver", True)
    assert cluster.parse_restart(["--no-wait", "kubelet-node-2"]) == ("kubelet-node-2", False)
    for bad, problem in ((["kube-apiservr"], "no testbed component 'kube-apiservr'"),
                         ([], "exactly one component"),
                         (["etcd", "kube-apiserver"], "exactly one component"),
                         (["etcd", "--force"], "unknown option --force")):
        with pytest.raises(util.TestbedError) as err:
            cluster.parse_restart(bad)
        assert problem in err.value.problem
        assert "kube-apiserver" in err.value.fix  # the fix lists the components


def test_restart_cli_rejects_bad_input_with_exit_2_before_touching_anything(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tb import __main__ as tb_main
    from tb import cluster
    monkeypatch.setattr(cluster, "restart", lambda *a: pytest.fail("restarted on bad input"))
    assert tb_main.main(["restart", "apiserver"]) == 2
    assert "no testbed component 'apiserver'" in capsys.readouterr().err
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as code:
        tb_main.main(["restart", "kube-apiserver"])
    assert code.value.code == 1 and "root" in capsys.readouterr().err


def test_restart_stops_then_starts_the_component_and_waits_until_healthy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tb import __main__ as tb_main
    from tb import cluster, procs
    steps: list[str] = []
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(c, "CACHE", tmp_path)  # the up/down/restart lock file
    monkeypatch.setattr(procs, "pid_of", lambda name: None if "stopped" in steps else 4242)
    monkeypatch.setattr(procs, "stop", lambda name: steps.append("stopped"))
    monkeypatch.setattr(procs, "start", lambda name, argv: steps.append(f"start {name}") or 1)
    monkeypatch.setattr(cluster, "_wait_healthy",
                        lambda comp, timeout: steps.append(f"healthy {comp.name}"))
    assert tb_main.main(["restart", "kube-apiserver"]) == 0
    assert steps == ["stopped", "start kube-apiserver", "healthy kube-apiserver"]
    steps.clear()
    assert tb_main.main(["restart", "etcd", "--no-wait"]) == 0
    assert steps == ["stopped", "start etcd"]
    monkeypatch.setattr(procs, "pid_of", lambda name: None)  # not running
    with pytest.raises(SystemExit):
        tb_main.main(["restart", "etcd"])
