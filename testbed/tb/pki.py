"""Certificates for every component, made with openssl (ECDSA P-256: fast to generate).

Identities follow the names Kubernetes' bootstrap RBAC already knows (system:kube-proxy,
system:node:<name> in system:nodes, ...), so only CoreDNS and metrics-server need bindings
of their own (see addons.py).
"""

from __future__ import annotations

import secrets
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import config as c
from .util import run

DAYS = "3650"


@dataclass(frozen=True)
class Cert:
    name: str
    cn: str
    org: str = ""
    server: bool = False
    client: bool = False
    sans: tuple[str, ...] = ()
    ca: str = "ca"


def certs() -> list[Cert]:
    api_sans = (
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        f"DNS:kubernetes.default.svc.{c.CLUSTER_DOMAIN}",
        "DNS:localhost",
        f"IP:{c.KUBERNETES_SVC_IP}",
        f"IP:{c.CONTROL_IP}",
        "IP:127.0.0.1",
    )
    out = [
        Cert("apiserver", "kube-apiserver", server=True, sans=api_sans),
        Cert("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
             org="system:masters", client=True),
        Cert("front-proxy-client", "front-proxy-client", client=True, ca="front-proxy-ca"),
        Cert("admin", "aftershock-admin", org="system:masters", client=True),
        Cert("controller-manager", "system:kube-controller-manager", client=True),
        Cert("scheduler", "system:kube-scheduler", client=True),
        Cert("kube-proxy", "system:kube-proxy", client=True),
        Cert("coredns", "aftershock:coredns", client=True),
        Cert("metrics-server", "aftershock:metrics-server", server=True, client=True,
             sans=("DNS:metrics-server.kube-system.svc", f"IP:{c.CONTROL_IP}")),
    ]
    for n in c.NODES:
        out.append(Cert(f"{n.name}-client", f"system:node:{n.name}", org="system:nodes",
                        client=True))
        out.append(Cert(f"{n.name}-serving", n.name, server=True,
                        sans=(f"DNS:{n.name}", f"IP:{n.ip}")))
    return out


def _key(path: Path) -> None:
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", path])
    path.chmod(0o600)


def _ca(name: str, cn: str) -> None:
    key, crt = c.PKI / f"{name}.key", c.PKI / f"{name}.crt"
    _key(key)
    run(["openssl", "req", "-x509", "-new", "-key", key, "-subj", f"/CN={cn}", "-days", DAYS,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", "-out", crt])


def _leaf(cert: Cert) -> None:
    key, crt = c.PKI / f"{cert.name}.key", c.PKI / f"{cert.name}.crt"
    _key(key)
    subj = (f"/O={cert.org}" if cert.org else "") + f"/CN={cert.cn}"
    usages = [u for u, on in (("serverAuth", cert.server), ("clientAuth", cert.client)) if on]
    ext = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={','.join(usages)}",
    ]
    if cert.sans:
        ext.append(f"subjectAltName={','.join(cert.sans)}")
    with tempfile.NamedTemporaryFile("w", suffix=".ext") as extfile:
        extfile.write("\n".join(ext) + "\n")
        extfile.flush()
        csr = run(["openssl", "req", "-new", "-key", key, "-subj", subj]).stdout
        run(["openssl", "x509", "-req", "-CA", c.PKI / f"{cert.ca}.crt",
             "-CAkey", c.PKI / f"{cert.ca}.key", "-set_serial", f"0x{secrets.token_hex(16)}",
             "-days", DAYS, "-extfile", extfile.name, "-out", crt], input_text=csr)


def ensure() -> bool:
    """Create the PKI unless complete; returns True when it was (re)made."""
    wanted = [c.PKI / f"{x.name}.crt" for x in certs()] + [c.PKI / "sa.pub"]
    if all(p.exists() for p in wanted):
        return False
    c.PKI.mkdir(parents=True, exist_ok=True)
    for old in c.PKI.iterdir():
        old.unlink()
    _ca("ca", "aftershock-ca")
    _ca("front-proxy-ca", "aftershock-front-proxy-ca")
    _key(c.PKI / "sa.key")
    run(["openssl", "pkey", "-in", c.PKI / "sa.key", "-pubout", "-out", c.PKI / "sa.pub"])
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(_leaf, certs()))
    return True
