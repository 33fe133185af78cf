"""The host side: preflight checks, packages, kernel settings, network, cgroups, cleanup."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from pathlib import Path

from . import config as c
from . import procs
from .util import fail, run, say

# Sysctls `up` sets, and the ones every kubelet sets on its own; `down` restores them all.
SYSCTLS = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1",
           "net.bridge.bridge-nf-call-ip6tables": "1"}
KUBELET_SYSCTLS = ["vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic",
                   "kernel.panic_on_oops", "kernel.keys.root_maxkeys",
                   "kernel.keys.root_maxbytes"]
EGRESS_CHAIN = "AS-EGRESS"
OUR_CHAIN_PREFIXES = ("KUBE-", "CNI-", "AS-")
# Shared directories that containerd/kubelet create outside our own trees (kubelet's
# device-plugin socket path, for one, is hard-coded under /var/lib/kubelet).
SHARED_DIRS = ["/var/log/containers", "/var/lib/cni", "/run/containerd", "/run/netns",
               "/var/lib/kubelet"]


def require_root() -> None:
    if os.geteuid() != 0:
        fail("the testbed must run as root: it creates bridges, routes, cgroups, mounts and "
             "iptables rules", "run it as root, e.g. `sudo make testbed-up`")


def ensure_packages() -> None:
    missing = [pkg for pkg, path in c.APT_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    say(f"installing Debian packages: {' '.join(missing)}")
    if not shutil.which("apt-get"):
        fail(f"missing packages {missing} and no apt-get to install them",
             "install them with the system's package manager")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        run(["apt-get", "update"], env=env, timeout=600)
        run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env,
            timeout=1200)
    except RuntimeError as err:
        fail(f"could not install packages {missing}: {err}",
             f"install them by hand: apt-get update && apt-get install -y {' '.join(missing)}")
    still = [p for p, path in c.APT_PACKAGES.items() if not Path(path).exists()]
    if still:
        fail(f"packages {still} installed but their binaries are missing",
             "check `dpkg -L <package>`; the testbed expects Debian 12 paths")


def _modprobe(module: str) -> None:
    if shutil.which("modprobe"):
        run(["modprobe", module], check=False)


def check_kernel() -> None:
    if "overlay" not in Path("/proc/filesystems").read_text():
        _modprobe("overlay")
        if "overlay" not in Path("/proc/filesystems").read_text():
            fail("the kernel has no overlayfs; containerd's overlayfs snapshotter needs it",
                 "run `modprobe overlay`, or use a kernel with CONFIG_OVERLAY_FS")
    if not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
        _modprobe("br_netfilter")
        if not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
            fail("bridge netfilter (br_netfilter) is missing: kube-proxy could not see "
                 "pod-to-Service traffic on the node bridges",
                 "run `modprobe br_netfilter`, or use a kernel with CONFIG_BRIDGE_NETFILTER")
    if run(["iptables", "-t", "nat", "-S"], check=False).returncode != 0:
        _modprobe("iptable_nat")
        if run(["iptables", "-t", "nat", "-S"], check=False).returncode != 0:
            fail("iptables has no working nat table; kube-proxy needs it for Services",
                 "load nf_nat/iptable_nat (or nf_tables) modules: `modprobe iptable_nat`")
    mounted = {opt for line in Path("/proc/self/mountinfo").read_text().splitlines()
               if " - cgroup " in line for opt in line.rsplit(" ", 1)[1].split(",")}
    need = {"cpu", "cpuacct", "cpuset", "memory", "pids"}
    if not need <= mounted and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        fail(f"cgroup controllers not mounted: {sorted(need - mounted)}",
             "mount the cgroup v1 hierarchies (or boot with cgroup v2)")
    if Path("/sys/fs/cgroup/cgroup.controllers").exists() and not (
            c.CGROUP_FS / "memory").exists():
        fail("this host runs pure cgroup v2; the testbed is written for cgroup v1 hierarchies",
             "use a host with cgroup v1 mounted under /sys/fs/cgroup")
    if not Path("/dev/kmsg").exists():
        fail("/dev/kmsg is missing; kubelet's OOM watcher reads it",
             "create it: `mknod /dev/kmsg c 1 11`")


def _listeners() -> dict[tuple[str, int, str], int]:
    """(ip, port, proto) -> socket inode for every TCP listener and UDP socket."""
    out: dict[tuple[str, int, str], int] = {}
    for proto, fname, v6 in (("tcp", "tcp", False), ("tcp", "tcp6", True),
                             ("udp", "udp", False), ("udp", "udp6", True)):
        try:
            lines = Path(f"/proc/net/{fname}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if proto == "tcp" and f[3] != "0A":  # LISTEN
                continue
            hexip, hexport = f[1].split(":")
            raw = bytes.fromhex(hexip)
            if v6:
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                ip = socket.inet_ntop(socket.AF_INET6, raw)
                if ip.startswith("::ffff:"):
                    ip = ip[7:]
            else:
                ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
            out[(ip, int(hexport, 16), proto)] = int(f[9])
    return out


def _owner(inode: int) -> tuple[int, str] | None:
    target = f"socket:[{inode}]"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == target:
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    return int(entry.name), cmd.strip()
        except OSError:
            continue
    return None


def wanted_ports() -> list[tuple[str, int, str, str]]:
    cp = c.CONTROL_IP
    ports = [(cp, c.ETCD_PORT, "tcp", "etcd"), (cp, c.ETCD_PEER_PORT, "tcp", "etcd peer"),
             (cp, c.APISERVER_PORT, "tcp", "kube-apiserver"),
             (cp, c.KCM_PORT, "tcp", "kube-controller-manager"),
             (cp, c.SCHED_PORT, "tcp", "kube-scheduler"),
             (cp, c.PROXY_HEALTHZ_PORT, "tcp", "kube-proxy healthz"),
             (cp, c.PROXY_METRICS_PORT, "tcp", "kube-proxy metrics"),
             (cp, c.DNS_PORT, "udp", "CoreDNS"), (cp, c.DNS_PORT, "tcp", "CoreDNS"),
             (cp, c.DNS_HEALTH_PORT, "tcp", "CoreDNS health"),
             (cp, c.DNS_READY_PORT, "tcp", "CoreDNS ready"),
             (cp, c.METRICS_SERVER_PORT, "tcp", "metrics-server")]
    for n in c.NODES:
        ports += [(n.ip, c.KUBELET_PORT, "tcp", f"kubelet {n.name}"),
                  (n.ip, c.KUBELET_HEALTHZ_PORT, "tcp", f"kubelet {n.name} healthz")]
    return ports


def check_ports() -> None:
    """Fail when a port the testbed binds is held by a process that is not ours."""
    listening = _listeners()
    ours = procs.ours()
    for ip, port, proto, what in wanted_ports():
        for bound in (ip, "0.0.0.0", "::"):
            inode = listening.get((bound, port, proto))
            if inode is None:
                continue
            owner = _owner(inode)
            if owner and owner[0] in ours:
                continue
            who = f"pid {owner[0]} ({owner[1][:80]})" if owner else "an unknown process"
            fail(f"port {proto}/{port} on {bound} (needed by {what}) is already taken by {who}",
                 f"stop that process (e.g. `kill {owner[0] if owner else '<pid>'}`), "
                 "then run `make testbed-up` again")


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def _load_markers() -> dict[str, object]:
    try:
        data = json.loads(c.MARKERS.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def record_host_state() -> None:
    """Remember, once per testbed life, what `down` must put back."""
    if c.MARKERS.exists():
        return
    state = {
        "sysctls": {k: _sysctl_path(k).read_text().strip()
                    for k in [*SYSCTLS, *KUBELET_SYSCTLS] if _sysctl_path(k).exists()},
        "created_dirs": [d for d in SHARED_DIRS if not Path(d).exists()],
    }
    c.MARKERS.parent.mkdir(parents=True, exist_ok=True)
    c.MARKERS.write_text(json.dumps(state, indent=2))


def set_sysctls() -> None:
    for key, value in SYSCTLS.items():
        _sysctl_path(key).write_text(value)


def setup_network() -> None:
    """The host bridge with control-plane and node addresses, plus the routes."""
    if run(["ip", "link", "show", c.HOST_BRIDGE], check=False).returncode != 0:
        run(["ip", "link", "add", c.HOST_BRIDGE, "type", "bridge"])
    run(["ip", "link", "set", c.HOST_BRIDGE, "up"])
    have = run(["ip", "-4", "-o", "addr", "show", "dev", c.HOST_BRIDGE]).stdout
    for addr in [f"{c.CONTROL_IP}/24"] + [f"{n.ip}/32" for n in c.NODES]:
        if f" {addr} " not in have:
            run(["ip", "addr", "add", addr, "dev", c.HOST_BRIDGE])
    # Nothing in 198.18.0.0/15 leaves the machine: node bridges' /24s are more specific.
    run(["ip", "route", "replace", "blackhole", c.SUPERNET])
    # Connecting to a blackholed address fails before NAT runs, so the Service range gets
    # a real route (onto the portless host bridge); kube-proxy's DNAT then reroutes it.
    run(["ip", "route", "replace", c.SERVICE_CIDR, "dev", c.HOST_BRIDGE, "src", c.CONTROL_IP])
    _egress_guard()


def _egress_guard() -> None:
    """Pods may talk to the testbed and this host only: forwarding elsewhere is refused.

    Pod traffic is not masqueraded, and without this a pod could still send packets out
    of the machine through the default route.
    """
    ipt = ["iptables", "-w", "-t", "filter"]
    if run([*ipt, "-S", EGRESS_CHAIN], check=False).returncode != 0:
        run([*ipt, "-N", EGRESS_CHAIN])
        run([*ipt, "-A", EGRESS_CHAIN, "-d", c.SUPERNET, "-j", "RETURN"])
        run([*ipt, "-A", EGRESS_CHAIN, "-j", "REJECT", "--reject-with", "icmp-net-unreachable"])
    jump = ["FORWARD", "-s", c.CLUSTER_CIDR, "-j", EGRESS_CHAIN]
    if run([*ipt, "-C", *jump], check=False).returncode != 0:
        run([*ipt, "-I", *jump])


def setup_cgroups() -> None:
    for hier in hierarchies():
        for rel in [c.CGROUP_PARENT] + [n.cgroup_root.lstrip("/") for n in c.NODES]:
            d = hier / rel
            d.mkdir(exist_ok=True)
            if hier.name == "cpuset":  # a v1 cpuset child starts empty and holds no task
                for f in ("cpuset.cpus", "cpuset.mems"):
                    if not (d / f).read_text().strip():
                        (d / f).write_text((d.parent / f).read_text())


def hierarchies() -> list[Path]:
    if not c.CGROUP_FS.exists():
        return []
    return [h for h in sorted(c.CGROUP_FS.iterdir())
            if (h / "cgroup.procs").exists() and h.is_dir()]


# ---------------------------------------------------------------- teardown


def cgroup_pids() -> list[int]:
    pids: set[int] = set()
    for hier in hierarchies():
        root = hier / c.CGROUP_PARENT
        if root.exists():
            for procs_file in root.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(x) for x in procs_file.read_text().split())
    return sorted(pids)


def remove_cgroups() -> list[str]:
    left = []
    for hier in hierarchies():
        root = hier / c.CGROUP_PARENT
        if not root.exists():
            continue
        dirs = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, root]:
            try:
                d.rmdir()
            except OSError:
                left.append(str(d))
    return left


def our_mounts() -> list[str]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(f"{r}/") for r in (c.BASE, c.RUN)):
            mounts.append(point)
    return mounts


def unmount_all() -> list[str]:
    for _ in range(5):
        mounts = our_mounts()
        if not mounts:
            return []
        for point in sorted(set(mounts), key=lambda p: -len(p)):
            if run(["umount", point], check=False).returncode != 0:
                run(["umount", "-l", point], check=False)
    return our_mounts()


def _chains(binary: str) -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {}
    for table in ("filter", "nat", "mangle", "raw"):
        proc = run([binary, "-w", "-t", table, "-S"], check=False)
        if proc.returncode == 0:
            names = [ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("-N ")]
            ours = [n for n in names if n.startswith(OUR_CHAIN_PREFIXES)]
            if ours:
                tables[table] = ours
    return tables


def iptables_leftovers() -> dict[str, dict[str, list[str]]]:
    out = {}
    for binary in ("iptables", "ip6tables"):
        if shutil.which(binary):
            chains = _chains(binary)
            if chains:
                out[binary] = chains
    return out


def remove_iptables() -> dict[str, dict[str, list[str]]]:
    """Delete every rule that jumps to one of our chains, then the chains themselves."""
    for binary, tables in iptables_leftovers().items():
        for table, chains in tables.items():
            rules = run([binary, "-w", "-t", table, "-S"]).stdout.splitlines()
            for rule in rules:
                parts = rule.split()
                jumps_to_ours = "-j" in parts and parts[parts.index("-j") + 1] in chains
                if parts[0] == "-A" and parts[1] not in chains and jumps_to_ours:
                    run([binary, "-w", "-t", table, "-D", *parts[1:]], check=False)
            for chain in chains:
                run([binary, "-w", "-t", table, "-F", chain], check=False)
            for chain in chains:
                run([binary, "-w", "-t", table, "-X", chain], check=False)
    return iptables_leftovers()


def our_links() -> list[str]:
    names = [c.HOST_BRIDGE] + [n.bridge for n in c.NODES]
    out = run(["ip", "-o", "link", "show"], check=False).stdout
    present = []
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        master = line.split(" master ")[1].split()[0] if " master " in line else ""
        if name in names or master in names:
            present.append(name)
    return present


def remove_network() -> None:
    for name in our_links():
        run(["ip", "link", "delete", name], check=False)
    for route in (["blackhole", c.SUPERNET], [c.SERVICE_CIDR]):
        run(["ip", "route", "del", *route], check=False)
    if shutil.which("conntrack"):
        for flag in ("-s", "-d"):
            run(["conntrack", "-D", flag, c.SUPERNET], check=False)


def our_routes() -> list[str]:
    out = run(["ip", "-4", "route", "show"], check=False).stdout.splitlines()
    return [r for r in out if r.removeprefix("blackhole ").startswith(("198.18.", "198.19."))]


def remove_shared_leftovers() -> None:
    """Entries our components left in shared host directories, then the dirs we made."""
    logs = Path("/var/log/containers")
    if logs.is_dir():
        for link in logs.iterdir():
            if link.is_symlink() and os.readlink(link).startswith(str(c.BASE)):
                link.unlink()
    cni_results = Path("/var/lib/cni/results")
    if cni_results.is_dir():
        for f in cni_results.iterdir():
            if f.name.startswith(tuple(n.cni_network for n in c.NODES)):
                f.unlink()
    markers = _load_markers()
    created = markers.get("created_dirs", [])
    assert isinstance(created, list)
    for d in created:  # made by this testbed's components, so everything inside is theirs
        shutil.rmtree(d, ignore_errors=True)


def restore_sysctls() -> None:
    saved = _load_markers().get("sysctls", {})
    assert isinstance(saved, dict)
    for key, value in saved.items():
        with contextlib.suppress(OSError):
            _sysctl_path(key).write_text(str(value))
