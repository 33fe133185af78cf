#!/usr/bin/env python3
"""Build aftershock's own image from the project's Dockerfile, without Docker or a registry.

    python3 testbed/images/suite_image.py build            build (cached), print the reference
    python3 testbed/images/suite_image.py import [--socket SOCK ...]
                                                        build, then import into every node
    python3 testbed/images/suite_image.py ref              the reference the sources would get

How, on a Debian 12 machine with root and the package archive, but no Docker engine and no
container registry:

1. Two base images are made from Debian packages with mmdebstrap (bookworm, variant
   ``essential``, no docs/man/locales): ``python-base`` (python3) for the runtime stage and
   ``python-build`` (python3 + python3-venv, for pip) for the builder stage. Each is kept as a
   tar and committed into a private buildah store.
2. ``buildah build --pull=never`` runs the Dockerfile with ``--build-arg BASE=...`` and
   ``BUILD_BASE=...`` set to those two (the Dockerfile's own defaults are the official slim
   Python image, for people with a Docker engine). ``--layers`` keeps the dependency layer.
3. ``buildah push`` exports a docker-archive, which ``ctr images import`` loads into each
   node's containerd (namespace k8s.io, the kubelet's).

Everything is content-keyed: the image tag is ``<version>-<key>``, where the key hashes the
Dockerfile, .dockerignore, the dependency pins and every source file the Dockerfile copies,
plus the base images' keys. The same sources give the same tag, found in the cache
(``$AFTERSHOCK_IMAGE_CACHE``, default /var/cache/aftershock/images, beside the testbed's)
without building; a node that already holds the tag is not imported into again.

Tools: buildah and mmdebstrap are installed with apt-get when missing (root only).
Stdlib only: it runs with the system python3, like the rest of testbed/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("AFTERSHOCK_IMAGE_CACHE", "/var/cache/aftershock/images"))
#: buildah's store, kept apart from any system-wide one so nothing else is touched.
STORE = Path(os.environ.get("AFTERSHOCK_BUILDAH_ROOT", "/var/cache/aftershock/buildah"))
RUNROOT = Path("/run/aftershock/buildah")
REPO = "aftershock.local/aftershock"
NODE_SOCKETS = tuple(f"/run/aftershock/node-{i}/containerd.sock" for i in (1, 2, 3))
MIRROR = os.environ.get("AFTERSHOCK_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"

#: What the Dockerfile copies (keep in step with it and .dockerignore): the image key.
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "requirements.lock",
                 "README.md", "k8s-job.yaml", "conftest.py")
CONTEXT_DIRS = ("aftershock", "checks", "experiments", "loadtests")

# Documentation, man pages, locales and glibc's iconv modules are not needed to run Python.
_DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*",
                  "/usr/share/info/*", "/usr/lib/x86_64-linux-gnu/gconv/*")


class BuildError(Exception):
    """The image could not be built or imported; the message says why."""


def log(msg: str) -> None:
    print(f"[suite-image] {msg}", file=sys.stderr, flush=True)


def _run(cmd: Sequence[str], *, what: str, quiet: bool = False,
         log_file: Path | None = None) -> str:
    """Run a command; raise BuildError with the tail of its output when it fails."""
    if log_file is not None:
        with open(log_file, "wb") as out:
            res = subprocess.run(list(cmd), stdout=out, stderr=subprocess.STDOUT, check=False)
        if res.returncode != 0:
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-30:])
            raise BuildError(f"{what} failed (exit {res.returncode}); log {log_file}:\n{tail}")
        return ""
    res = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise BuildError(f"{what} failed (exit {res.returncode}): "
                         f"{(res.stderr or res.stdout).strip()[-3000:]}")
    if not quiet and res.stderr.strip():
        log(res.stderr.strip()[-500:])
    return res.stdout


# ------------------------------------------------------------------------------ tools


def ensure_tools() -> None:
    """buildah and mmdebstrap from Debian, installed once (idempotent)."""
    missing = [p for p, binary in (("buildah", "buildah"), ("mmdebstrap", "mmdebstrap"))
               if shutil.which(binary) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise BuildError(f"{', '.join(missing)} missing and not root: "
                         f"apt-get install {' '.join(missing)}")
    log(f"installing {', '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]):
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if res.returncode != 0:
            raise BuildError(f"{' '.join(cmd)} failed: {res.stderr.strip()[-2000:]}")


def buildah(*args: str) -> list[str]:
    """A buildah command line on the private store (overlay, chroot isolation)."""
    return ["buildah", "--root", str(STORE / "storage"), "--runroot", str(RUNROOT),
            "--storage-driver", "overlay", *args]


def _has_image(ref: str) -> bool:
    res = subprocess.run(buildah("images", "--quiet", ref), capture_output=True, text=True,
                         check=False)
    return res.returncode == 0 and bool(res.stdout.strip())


# ------------------------------------------------------------------------------ bases


@dataclass(frozen=True)
class Base:
    """A base image made from Debian packages."""

    name: str
    packages: tuple[str, ...]

    def mmdebstrap_args(self, out: Path) -> list[str]:
        args = ["mmdebstrap", "--variant=essential", f"--include={','.join(self.packages)}",
                # merged /usr without the usrmerge package (which drags perl in)
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr"]
        args += [f"--dpkgopt=path-exclude={p}" for p in _DPKG_EXCLUDES]
        args += ["--dpkgopt=path-include=/usr/share/doc/*/copyright", SUITE, str(out), MIRROR]
        return args

    @property
    def key(self) -> str:
        h = hashlib.sha256(json.dumps(self.mmdebstrap_args(Path("-"))).encode())
        return h.hexdigest()[:12]

    @property
    def ref(self) -> str:
        return f"aftershock.local/{self.name}:{SUITE}-{self.key}"


# libstdc++6: manylinux wheels may link it (greenlet does); the official slim image has it.
RUNTIME_BASE = Base("python-base", ("python3", "libstdc++6"))
BUILD_BASE = Base("python-build", ("python3", "libstdc++6", "python3-venv"))


def ensure_base(base: Base) -> str:
    """The base in the buildah store, from its cached rootfs tar or a fresh mmdebstrap."""
    if _has_image(base.ref):
        return base.ref
    tar = CACHE / f"{base.name}-{SUITE}-{base.key}.rootfs.tar"
    if not tar.is_file():
        t0 = time.monotonic()
        log(f"{base.ref}: mmdebstrap {SUITE} + {', '.join(base.packages)}")
        part = tar.with_name(f".{tar.name}")  # mmdebstrap picks the format by the suffix
        _run(base.mmdebstrap_args(part), what=f"mmdebstrap for {base.name}",
             log_file=CACHE / f"{base.name}.mmdebstrap.log")
        os.replace(part, tar)
        log(f"{base.ref}: rootfs in {time.monotonic() - t0:.0f}s, {tar.stat().st_size >> 20} MiB")
    ctr = _run(buildah("from", "scratch"), what="buildah from scratch", quiet=True).strip()
    try:
        _run(buildah("add", ctr, str(tar), "/"), what="buildah add rootfs", quiet=True)
        _run(buildah("config", "--env", "LANG=C.UTF-8", "--cmd", "python3",
                     "--label", f"org.opencontainers.image.description=Debian {SUITE} "
                                f"{' '.join(base.packages)} (mmdebstrap)", ctr),
             what="buildah config", quiet=True)
        _run(buildah("commit", "--rm", ctr, base.ref), what="buildah commit", quiet=True)
    except BaseException:
        subprocess.run(buildah("rm", ctr), capture_output=True, check=False)
        raise
    return base.ref


# ------------------------------------------------------------------------------ suite


def _version() -> str:
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    raise BuildError("no version in pyproject.toml")


def context_files() -> list[Path]:
    """Every file the Dockerfile copies, relative to the repository root."""
    files = [Path(f) for f in CONTEXT_FILES]
    for d in CONTEXT_DIRS:
        files += sorted(p.relative_to(ROOT) for p in (ROOT / d).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts
                        and p.suffix != ".pyc")
    return files


def suite_key() -> str:
    h = hashlib.sha256(RUNTIME_BASE.ref.encode() + b"\0" + BUILD_BASE.ref.encode() + b"\0")
    h.update((HERE / "suite_image.py").read_bytes())
    for rel in context_files():
        h.update(str(rel).encode() + b"\0" + hashlib.sha256((ROOT / rel).read_bytes()).digest())
    return h.hexdigest()[:12]


def suite_ref() -> str:
    return f"{REPO}:{_version()}-{suite_key()}"


def _pip_trust() -> list[str]:
    """Build options that let pip in the builder trust what the host's pip trusts.

    Behind a TLS-inspecting proxy the host's pip is given a CA bundle (PIP_CERT, or
    SSL_CERT_FILE); the builder's Python knows only certifi's. The bundle is mounted
    read-only into the build's RUN steps (not into the image) and handed to pip.
    """
    for var in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        ca = os.environ.get(var)
        if ca and Path(ca).is_file():
            return ["--volume", f"{Path(ca).resolve()}:/run/aftershock-build-ca.crt:ro",
                    "--build-arg", "PIP_OPTIONS=--cert /run/aftershock-build-ca.crt"]
    return []


def _archive(ref: str) -> Path:
    return CACHE / (ref.replace("/", "_").replace(":", "_") + ".docker.tar")


@dataclass(frozen=True)
class Built:
    ref: str
    archive: Path
    size: int  # uncompressed bytes of the image's layers
    cached: bool
    seconds: float


def _image_size(ref: str) -> int:
    out = _run(buildah("inspect", "--type", "image", ref), what="buildah inspect", quiet=True)
    info = json.loads(out)
    # Each layer's uncompressed size is what the image takes on a node.
    sizes = [int(d.get("size") or 0) for d in (info.get("History") or [])]
    return sum(sizes)


def build(force: bool = False) -> Built:
    """Build the image (or find it cached) and export it as a docker-archive."""
    t0 = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    ref = suite_ref()
    archive, stamp = _archive(ref), _archive(ref).with_suffix(".json")
    if not force and archive.is_file() and stamp.is_file():
        meta = json.loads(stamp.read_text())
        log(f"{ref}: up to date ({archive})")
        return Built(ref, archive, int(meta["size"]), True, time.monotonic() - t0)
    ensure_tools()
    RUNROOT.mkdir(parents=True, exist_ok=True)
    base, build_base = ensure_base(RUNTIME_BASE), ensure_base(BUILD_BASE)
    log(f"{ref}: buildah build from {ROOT / 'Dockerfile'}")
    _run(buildah("build", "--pull=never", "--layers", "--isolation", "chroot",
                 "--build-arg", f"BASE={base}", "--build-arg", f"BUILD_BASE={build_base}",
                 *_pip_trust(),
                 "--tag", ref, "--file", str(ROOT / "Dockerfile"), str(ROOT)),
         what="buildah build", log_file=CACHE / "suite-image.build.log")
    part = archive.with_name(archive.name + ".part")
    part.unlink(missing_ok=True)
    _run(buildah("push", "--quiet", ref, f"docker-archive:{part}:{ref}"), what="buildah push",
         quiet=True)
    os.replace(part, archive)
    size = _uncompressed_size(archive)
    stamp.write_text(json.dumps({"ref": ref, "size": size}) + "\n")
    seconds = time.monotonic() - t0
    log(f"{ref}: built in {seconds:.0f}s, {size / 1e6:.0f} MB uncompressed -> {archive}")
    return Built(ref, archive, size, False, seconds)


def _uncompressed_size(archive: Path) -> int:
    """Bytes of the image's layers as unpacked tars (a docker-archive holds them plain)."""
    import tarfile
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layers = set(manifest[0]["Layers"])
        return sum(m.size for m in tar.getmembers() if m.name in layers)


# ------------------------------------------------------------------------------ import


def _node_has(socket: str, ref: str) -> bool:
    res = subprocess.run(["ctr", "--address", socket, "--namespace", "k8s.io", "images", "ls",
                          "--quiet"], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise BuildError(f"ctr images ls on {socket} failed: {res.stderr.strip()} "
                         "(is the testbed up? make testbed-status)")
    return ref in res.stdout.split()


def import_into(built: Built, sockets: Sequence[str]) -> list[tuple[str, bool]]:
    """Import into each containerd unless it already holds the tag; (socket, imported)."""
    done = []
    for socket in sockets:
        if _node_has(socket, built.ref):
            done.append((socket, False))
            continue
        _run(["ctr", "--address", socket, "--namespace", "k8s.io", "images", "import",
              "--snapshotter", "overlayfs", str(built.archive)],
             what=f"ctr images import into {socket}", quiet=True)
        log(f"{built.ref}: imported into {socket}")
        done.append((socket, True))
    return done


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="suite_image.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or find cached); print the reference")
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    i = sub.add_parser("import", help="build, then import into the testbed nodes")
    i.add_argument("--socket", action="append", default=[],
                   help=f"containerd socket (repeatable; default the testbed's three: "
                        f"{', '.join(NODE_SOCKETS)})")
    sub.add_parser("ref", help="print the reference the current sources get")
    args = p.parse_args(argv)
    try:
        if args.cmd == "ref":
            print(suite_ref())
            return 0
        built = build(force=getattr(args, "force", False))
        if args.cmd == "import":
            import_into(built, args.socket or NODE_SOCKETS)
        log(f"{built.ref}: {built.size / 1e6:.0f} MB uncompressed")
        print(built.ref)
    except BuildError as e:
        print(f"suite_image.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
