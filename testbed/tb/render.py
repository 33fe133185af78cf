"""Config files for containerd, CNI, kubelet, kube-proxy, CoreDNS and the kubeconfigs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from . import config as c
from .util import write

CONF = c.BASE / "conf"


def kubeconfig(user: str, embed: bool = False) -> str:
    """A kubeconfig for one PKI identity; embedded certs make the admin one portable."""

    def field(kind: str, path: Path) -> str:
        if embed:
            return f"{kind}-data: {base64.b64encode(path.read_bytes()).decode()}"
        return f"{kind}: {path}"

    return f"""apiVersion: v1
kind: Config
clusters:
- name: aftershock
  cluster:
    server: https://{c.CONTROL_IP}:{c.APISERVER_PORT}
    {field("certificate-authority", c.PKI / "ca.crt")}
contexts:
- name: aftershock
  context: {{cluster: aftershock, user: {user}}}
current-context: aftershock
users:
- name: {user}
  user:
    {field("client-certificate", c.PKI / f"{user}.crt")}
    {field("client-key", c.PKI / f"{user}.key")}
"""


def kubeconfig_path(user: str) -> Path:
    return CONF / f"{user}.kubeconfig"


def containerd(node: c.Node) -> Path:
    # Everything a containerd writes lives under this node's data/state dirs, so several
    # run side by side; the opt plugin (/opt/containerd) is disabled.
    text = f"""version = 2
root = "{node.data / "containerd"}"
state = "{node.state / "containerd"}"
temp = "{node.state / "tmp"}"
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{node.socket}"

# containerd 1.6's tasks service needs the legacy runtime loaded; keep its state ours.
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "{node.state / "runc-v1"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{c.SANDBOX_IMAGE}"
  # This host's root lacks CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj (the
  # kubelet asks -998 for sandboxes): clamp to containerd's own score instead.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "{node.state / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{c.CNI_BIN}"
    conf_dir = "{node.data / "cni-conf"}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
"""
    path = CONF / node.name / "containerd.toml"
    write(path, text)
    (node.state / "tmp").mkdir(parents=True, exist_ok=True)
    return path


def cni(node: c.Node) -> Path:
    conf = {
        "cniVersion": "0.4.0",
        "name": node.cni_network,
        "plugins": [
            {
                "type": "bridge",
                "bridge": node.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(node.data / "cni-ipam"),
                    "ranges": [[{"subnet": node.pod_cidr, "gateway": node.pod_gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }
        ],
    }
    path = node.data / "cni-conf" / "10-aftershock.conflist"
    write(path, json.dumps(conf, indent=2) + "\n")
    return path


def kubelet(node: c.Node) -> Path:
    pki = c.PKI
    text = f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 host: 1.35 refuses it unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
# Own cgroup root per kubelet: two kubelets under one root kill each other's pods.
cgroupRoot: {node.cgroup_root}
containerRuntimeEndpoint: unix://{node.socket}
imageServiceEndpoint: unix://{node.socket}
address: {node.ip}
port: {c.KUBELET_PORT}
readOnlyPort: 0
healthzBindAddress: {node.ip}
healthzPort: {c.KUBELET_HEALTHZ_PORT}
tlsCertFile: {pki / f"{node.name}-serving.crt"}
tlsPrivateKeyFile: {pki / f"{node.name}-serving.key"}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {pki / "ca.crt"}}}
authorization: {{mode: Webhook}}
clusterDomain: {c.CLUSTER_DOMAIN}
clusterDNS: [{c.DNS_SVC_IP}]
# An empty resolver base: pods see only cluster DNS, never the host's resolvers.
resolvConf: {CONF / "resolv.conf"}
podLogsDir: {node.data / "pod-logs"}
volumePluginDir: {node.data / "kubelet" / "volume-plugins"}
failSwapOn: false
# Images are preloaded and cannot be pulled again: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  imagefs.available: 2%
  nodefs.inodesFree: 2%
serializeImagePulls: false
maxPods: 110
nodeStatusReportFrequency: 10s
"""
    path = CONF / node.name / "kubelet.yaml"
    write(path, text)
    return path


def kube_proxy() -> Path:
    text = f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: {kubeconfig_path("kube-proxy")}
# One kube-proxy serves every node; it needs some Node to read, or waits 30 s at start.
hostnameOverride: {c.NODES[0].name}
bindAddress: {c.CONTROL_IP}
healthzBindAddress: {c.CONTROL_IP}:{c.PROXY_HEALTHZ_PORT}
metricsBindAddress: {c.CONTROL_IP}:{c.PROXY_METRICS_PORT}
clusterCIDR: {c.CLUSTER_CIDR}
detectLocalMode: ClusterCIDR
# NodePorts only on the testbed's host network; no route_localnet sysctl.
nodePortAddresses: ["{c.HOST_NET}"]
iptables:
  localhostNodePorts: false
  minSyncPeriod: 1s
  syncPeriod: 30s
# Leave the host's conntrack sysctls alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
"""
    path = CONF / "kube-proxy.yaml"
    write(path, text)
    return path


def corefile() -> Path:
    # No forward plugin: names outside the cluster are not resolved, by design.
    text = f"""{c.CLUSTER_DOMAIN}:{c.DNS_PORT} in-addr.arpa:{c.DNS_PORT} ip6.arpa:{c.DNS_PORT} {{
    bind {c.CONTROL_IP}
    errors
    health {c.CONTROL_IP}:{c.DNS_HEALTH_PORT}
    ready {c.CONTROL_IP}:{c.DNS_READY_PORT}
    kubernetes {c.CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig_path("coredns")}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
    loadbalance
}}
"""
    path = CONF / "Corefile"
    write(path, text)
    return path


def all_static() -> None:
    """Write every file that does not depend on a running component."""
    write(CONF / "resolv.conf", "# intentionally empty: cluster DNS only\n")
    for user in ("admin", "controller-manager", "scheduler", "kube-proxy", "coredns",
                 "metrics-server"):
        write(kubeconfig_path(user), kubeconfig(user), 0o600)
    for node in c.NODES:
        write(kubeconfig_path(f"{node.name}-client"), kubeconfig(f"{node.name}-client"), 0o600)
        containerd(node)
        cni(node)
        kubelet(node)
    kube_proxy()
    corefile()
