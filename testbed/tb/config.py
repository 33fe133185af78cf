"""Every name, path, address and port the testbed uses, in one place.

All addresses lie in 198.18.0.0/15 (RFC 2544 benchmarking range): nothing here is in
10.0.0.0/8 and a blackhole route keeps any stray packet on the machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "testbed"
DOT = REPO / ".testbed"  # gitignored; holds the admin kubeconfig and a link to the logs
KUBECONFIG = DOT / "kubeconfig"

CACHE = Path("/var/cache/aftershock")  # build cache, kept across `down`
BASE = Path("/var/lib/aftershock")  # everything else; removed by `down`
RUN = Path("/run/aftershock")  # sockets, pid files, containerd state; removed by `down`
PKI = BASE / "pki"
LOGS = BASE / "logs"
PIDS = RUN / "pids"
MARKERS = BASE / "host-state.json"  # what `up` changed on the host, for `down` to undo

CGROUP_FS = Path("/sys/fs/cgroup")
CGROUP_PARENT = "aftershock"  # every kubelet's cgroupRoot sits under /aftershock

# Host side ("node network"): a bridge without ports that carries the host-side addresses.
HOST_BRIDGE = "as-host"
HOST_NET = "198.19.128.0/24"
CONTROL_IP = "198.19.128.1"
SUPERNET = "198.18.0.0/15"  # blackholed as a whole; more specific routes win
CLUSTER_CIDR = "198.18.0.0/16"
SERVICE_CIDR = "198.19.0.0/17"
KUBERNETES_SVC_IP = "198.19.0.1"
DNS_SVC_IP = "198.19.0.10"
CLUSTER_DOMAIN = "cluster.local"

ETCD_PORT = 2379
ETCD_PEER_PORT = 2380
APISERVER_PORT = 6443
KCM_PORT = 10257
SCHED_PORT = 10259
PROXY_HEALTHZ_PORT = 10256
PROXY_METRICS_PORT = 10249
DNS_PORT = 53
DNS_HEALTH_PORT = 8080
DNS_READY_PORT = 8181
METRICS_SERVER_PORT = 4443
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248

SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"

# Only these are installed with apt; containerd 1.6 is the last line kubelet 1.35 accepts.
APT_PACKAGES = {
    "containerd": "/usr/bin/containerd",
    "runc": "/usr/sbin/runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "iptables": "/usr/sbin/iptables",
    "conntrack": "/usr/sbin/conntrack",
    "kmod": "/usr/sbin/modprobe",
    "iproute2": "/usr/sbin/ip",
    "socat": "/usr/bin/socat",
    "ethtool": "/usr/sbin/ethtool",
    "openssl": "/usr/bin/openssl",
}
CNI_BIN = Path("/usr/lib/cni")


@dataclass(frozen=True)
class Node:
    index: int

    @property
    def name(self) -> str:
        return f"node-{self.index}"

    @property
    def ip(self) -> str:
        return f"198.19.128.{10 + self.index}"

    @property
    def pod_cidr(self) -> str:
        return f"198.18.{self.index}.0/24"

    @property
    def pod_gateway(self) -> str:
        return f"198.18.{self.index}.1"

    @property
    def bridge(self) -> str:
        return f"as-node{self.index}"

    @property
    def cni_network(self) -> str:
        return f"aftershock-{self.name}"

    @property
    def cgroup_root(self) -> str:
        return f"/{CGROUP_PARENT}/{self.name}"

    @property
    def data(self) -> Path:
        return BASE / self.name

    @property
    def state(self) -> Path:
        return RUN / self.name

    @property
    def socket(self) -> Path:
        return self.state / "containerd.sock"


NODES = [Node(i) for i in (1, 2, 3)]


def go_mod_version(module_dir: Path, module: str) -> str:
    """The version a go.mod requires for one module, so the cache key follows the source."""
    text = (module_dir / "go.mod").read_text()
    m = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.M)
    if not m:
        raise SystemExit(f"testbed: {module_dir}/go.mod does not require {module}")
    return m.group(1)
