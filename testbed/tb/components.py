"""The command line and health probe of every process the testbed runs."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from . import config as c
from . import render
from .build import bin_path
from .procs import http_ok

P = c.PKI
CP = c.CONTROL_IP


@dataclass(frozen=True)
class Component:
    name: str
    argv: Callable[[], list[str]]
    healthy: Callable[[], bool]


def _socket_ok(path: str) -> Callable[[], bool]:
    def probe() -> bool:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            try:
                s.connect(path)
                return True
            except OSError:
                return False
    return probe


def etcd() -> Component:
    url = f"http://{CP}:{c.ETCD_PORT}"
    peer = f"http://{CP}:{c.ETCD_PEER_PORT}"
    return Component("etcd", lambda: [
        str(bin_path("etcd")), "--name=aftershock", f"--data-dir={c.BASE / 'etcd'}",
        f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=aftershock={peer}",
        # A throwaway cluster: skipping fsync keeps the API fast on a slow virtual disk.
        "--unsafe-no-fsync=true", "--log-level=warn", "--snapshot-count=10000",
    ], lambda: http_ok(f"{url}/health"))


def apiserver() -> Component:
    return Component("kube-apiserver", lambda: [
        str(bin_path("kube-apiserver")),
        f"--etcd-servers=http://{CP}:{c.ETCD_PORT}",
        f"--advertise-address={CP}", f"--bind-address={CP}", f"--secure-port={c.APISERVER_PORT}",
        f"--service-cluster-ip-range={c.SERVICE_CIDR}",
        f"--tls-cert-file={P / 'apiserver.crt'}", f"--tls-private-key-file={P / 'apiserver.key'}",
        f"--client-ca-file={P / 'ca.crt'}",
        f"--kubelet-client-certificate={P / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={P / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={P / 'ca.crt'}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--service-account-issuer=https://kubernetes.default.svc.{c.CLUSTER_DOMAIN}",
        f"--service-account-key-file={P / 'sa.pub'}",
        f"--service-account-signing-key-file={P / 'sa.key'}",
        "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        # Aggregation (metrics.k8s.io): front-proxy identity and header authentication.
        f"--requestheader-client-ca-file={P / 'front-proxy-ca.crt'}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={P / 'front-proxy-client.crt'}",
        f"--proxy-client-key-file={P / 'front-proxy-client.key'}",
        "--enable-aggregator-routing=true",
        f"--cert-dir={c.BASE / 'apiserver'}",
        "--event-ttl=1h", "--profiling=false",
    ], lambda: http_ok(f"https://{CP}:{c.APISERVER_PORT}/readyz", cert="admin"))


def _kubeconfig_flags(user: str) -> list[str]:
    kc = render.kubeconfig_path(user)
    return [f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}"]


def controller_manager() -> Component:
    return Component("kube-controller-manager", lambda: [
        str(bin_path("kube-controller-manager")), *_kubeconfig_flags("controller-manager"),
        f"--bind-address={CP}", f"--secure-port={c.KCM_PORT}",
        f"--cert-dir={c.BASE / 'controller-manager'}", "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={P / 'sa.key'}", f"--root-ca-file={P / 'ca.crt'}",
        f"--cluster-signing-cert-file={P / 'ca.crt'}",
        f"--cluster-signing-key-file={P / 'ca.key'}",
        # Each node's pod range is fixed in its CNI config, not allocated here.
        "--allocate-node-cidrs=false", f"--cluster-cidr={c.CLUSTER_CIDR}",
        f"--service-cluster-ip-range={c.SERVICE_CIDR}", "--profiling=false",
    ], lambda: http_ok(f"https://{CP}:{c.KCM_PORT}/healthz"))


def scheduler() -> Component:
    return Component("kube-scheduler", lambda: [
        str(bin_path("kube-scheduler")), *_kubeconfig_flags("scheduler"),
        f"--bind-address={CP}", f"--secure-port={c.SCHED_PORT}",
        f"--cert-dir={c.BASE / 'scheduler'}", "--leader-elect=false", "--profiling=false",
    ], lambda: http_ok(f"https://{CP}:{c.SCHED_PORT}/healthz"))


def containerd(node: c.Node) -> Component:
    return Component(f"containerd-{node.name}", lambda: [
        "/usr/bin/containerd", "--config", str(render.CONF / node.name / "containerd.toml"),
    ], _socket_ok(str(node.socket)))


def kubelet(node: c.Node) -> Component:
    return Component(f"kubelet-{node.name}", lambda: [
        str(bin_path("kubelet")),
        f"--config={render.CONF / node.name / 'kubelet.yaml'}",
        f"--kubeconfig={render.kubeconfig_path(f'{node.name}-client')}",
        f"--hostname-override={node.name}", f"--node-ip={node.ip}",
        f"--root-dir={node.data / 'kubelet'}",
    ], lambda: http_ok(f"http://{node.ip}:{c.KUBELET_HEALTHZ_PORT}/healthz"))


def kube_proxy() -> Component:
    return Component("kube-proxy", lambda: [
        str(bin_path("kube-proxy")), f"--config={render.CONF / 'kube-proxy.yaml'}",
    # /healthz is 503 whenever its Node (node-1) is cordoned or drained; /livez is not.
    ], lambda: http_ok(f"http://{CP}:{c.PROXY_HEALTHZ_PORT}/livez"))


def coredns() -> Component:
    return Component("coredns", lambda: [
        str(bin_path("coredns")), "-conf", str(render.CONF / "Corefile"),
    ], lambda: http_ok(f"http://{CP}:{c.DNS_READY_PORT}/ready"))


def metrics_server() -> Component:
    return Component("metrics-server", lambda: [
        str(bin_path("metrics-server")), *_kubeconfig_flags("metrics-server"),
        f"--bind-address={CP}", f"--secure-port={c.METRICS_SERVER_PORT}",
        f"--tls-cert-file={P / 'metrics-server.crt'}",
        f"--tls-private-key-file={P / 'metrics-server.key'}",
        f"--kubelet-certificate-authority={P / 'ca.crt'}",
        f"--kubelet-client-certificate={P / 'metrics-server.crt'}",
        f"--kubelet-client-key={P / 'metrics-server.key'}",
        "--kubelet-preferred-address-types=InternalIP", "--kubelet-use-node-status-port",
        "--metric-resolution=15s",
    # Not /readyz: it stays failing until some pod has been measured twice.
    ], lambda: http_ok(f"https://{CP}:{c.METRICS_SERVER_PORT}/livez"))


def all_components() -> list[Component]:
    """In start order; `down` stops them in reverse."""
    return [
        etcd(), apiserver(), controller_manager(), scheduler(),
        *[containerd(n) for n in c.NODES], *[kubelet(n) for n in c.NODES],
        kube_proxy(), coredns(), metrics_server(),
    ]
