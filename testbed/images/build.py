#!/usr/bin/env python3
"""Build the testbed's container images as OCI archives and import them into containerd.

    python3 testbed/images/build.py all [--out DIR] [--force]      build every image
    python3 testbed/images/build.py build NAME... [--out DIR]       build some (see list)
    python3 testbed/images/build.py import --socket SOCK [--out DIR] [NAME...]
    python3 testbed/images/build.py list                            image names and references

Images (no registry: each is imported into every node's containerd, namespace k8s.io):
    pause      registry.k8s.io/pause:3.10            the pod sandbox (testbed/images/pause, Go)
    sampleapp  aftershock.local/sampleapp:<VERSION>  the system under test (testbed/sampleapp, Go)
    toolbox    aftershock.local/toolbox:<VERSION>    busybox-static: sh, wget, nslookup, nc, ...

An image is rebuilt only when its inputs change: the key is a hash of its sources,
the builder's code, the Go version and the busybox binary, kept next to the
archive in DIR/<file>.json. The default DIR is $AFTERSHOCK_IMAGE_CACHE or
/var/cache/aftershock/images.

From Python (the cluster bring-up and the suite's own image use this):
    build_all(out_dir) -> list[BuiltImage]
    import_all(socket, out_dir) -> list[(ref, imported: bool)]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ocilayout import (
    BuiltImage,
    ImageBuildError,
    ImageConfig,
    Layer,
    import_archive,
    write_image_archive,
)

HERE = Path(__file__).resolve().parent
TESTBED = HERE.parent
SAMPLEAPP_DIR = TESTBED / "sampleapp"
PAUSE_DIR = HERE / "pause"
DEFAULT_OUT = Path(os.environ.get("AFTERSHOCK_IMAGE_CACHE", "/var/cache/aftershock/images"))

NONROOT = 65532
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = f"root:x:0:\nnobody:x:65534:\nnonroot:x:{NONROOT}:\n"


def _version(path: Path) -> str:
    return path.read_text().strip()


SAMPLEAPP_VERSION = _version(SAMPLEAPP_DIR / "VERSION")
TOOLBOX_VERSION = _version(HERE / "TOOLBOX_VERSION")
PAUSE_REF = "registry.k8s.io/pause:3.10"
SAMPLEAPP_REF = f"aftershock.local/sampleapp:{SAMPLEAPP_VERSION}"
TOOLBOX_REF = f"aftershock.local/toolbox:{TOOLBOX_VERSION}"
HTTPBIN_DIR = TESTBED / "thirdparty" / "httpbin"
HTTPBIN_PACKAGE = "github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin"
HTTPBIN_VERSION = "2.26.0"  # the version testbed/thirdparty/httpbin/go.mod requires
HTTPBIN_REF = f"aftershock.local/httpbin:{HTTPBIN_VERSION}"


def log(msg: str) -> None:
    print(f"[images] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- inputs


def _hash_tree(h: hashlib._Hash, root: Path, suffixes: Sequence[str]) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file() and (p.suffix in suffixes or p.name in suffixes):
            h.update(str(p.relative_to(root)).encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())


def _builder_hash(h: hashlib._Hash) -> None:
    for name in ("ocilayout.py", "build.py", "TOOLBOX_VERSION"):
        h.update(name.encode() + b"\0" + (HERE / name).read_bytes())


def go_binary() -> str:
    go = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists() and not shutil.which(go):
        raise ImageBuildError("no Go toolchain: install Go (or set GO=/path/to/go)")
    return go


def go_version(go: str) -> str:
    res = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True,
                         env=_go_env(), check=False)
    if res.returncode != 0:
        raise ImageBuildError(f"{go} env GOVERSION failed: {res.stderr.strip()}")
    return res.stdout.strip()


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0", GOOS="linux")
    return env


def go_build(module_dir: Path, out: Path, *, version: str, package: str = ".") -> Path:
    """Build a static, stripped, reproducible binary from a Go module (``package``: one of
    its own, or a tool its go.mod names, fetched through the Go module proxy)."""
    go = go_binary()
    cmd = [go, "build", "-trimpath", "-buildvcs=false",
           "-ldflags", f"-s -w -buildid= -X main.version={version}", "-o", str(out), package]
    t0 = time.monotonic()
    res = subprocess.run(cmd, cwd=module_dir, env=_go_env(), capture_output=True, text=True,
                         check=False)
    if res.returncode != 0:
        raise ImageBuildError(f"go build in {module_dir} failed:\n{res.stderr.strip()}")
    log(f"go build {module_dir.name}: {time.monotonic() - t0:.1f}s, {out.stat().st_size} bytes")
    return out


# --------------------------------------------------------------------------- busybox


def is_static_elf(path: Path) -> bool:
    """True when path is an ELF executable without a program interpreter."""
    with path.open("rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
            return False
        end = "<" if head[5] == 1 else ">"
        phoff = struct.unpack_from(end + "Q", head, 0x20)[0]
        phentsize, phnum = struct.unpack_from(end + "HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from(end + "I", table, i * phentsize)[0] != 3  # PT_INTERP
               for i in range(phnum))


def find_busybox(install: bool = True) -> Path:
    """The static busybox of Debian's busybox-static package (installed if missing)."""
    override = os.environ.get("BUSYBOX")
    candidates = [Path(override)] if override else [Path("/bin/busybox"), Path("/usr/bin/busybox")]
    for c in candidates:
        if c.is_file() and is_static_elf(c):
            return c
    if override:
        raise ImageBuildError(f"BUSYBOX={override} is not a static busybox binary")
    if not install:
        raise ImageBuildError("no static busybox: apt-get install -y busybox-static")
    if os.geteuid() != 0:
        raise ImageBuildError(
            "busybox-static is missing; as root run: apt-get install -y busybox-static")
    log("installing busybox-static (apt-get install -y busybox-static)")
    res = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "busybox-static"],
                         env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise ImageBuildError(
            "apt-get install -y busybox-static failed (try apt-get update first):\n"
            + res.stderr.strip()[-2000:])
    return find_busybox(install=False)


def busybox_applets(busybox: Path) -> list[str]:
    res = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=False)
    if res.returncode != 0 or not res.stdout.strip():
        raise ImageBuildError(f"{busybox} --list-full failed: {res.stderr.strip()}")
    return sorted({line.strip() for line in res.stdout.splitlines() if line.strip()})


# --------------------------------------------------------------------------- images


def _base_layer(comment: str) -> Layer:
    """The few files every image gets: /etc/passwd, /etc/group, /tmp."""
    layer = Layer(comment)
    layer.add_file("etc/passwd", data=PASSWD, mode=0o644)
    layer.add_file("etc/group", data=GROUP, mode=0o644)
    layer.add_dir("tmp", mode=0o1777)
    return layer


@dataclass(frozen=True)
class ImageSpec:
    """One testbed image: how to key its inputs and how to build it."""

    name: str
    ref: str
    #: Feeds everything the image depends on into the hash.
    inputs: Callable[[hashlib._Hash], None]
    #: Builds the image into the given archive path (the temp dir is for scratch files).
    build: Callable[[Path, Path], BuiltImage]

    @property
    def filename(self) -> str:
        return self.ref.replace("/", "_").replace(":", "_") + ".oci.tar"

    def input_key(self) -> str:
        h = hashlib.sha256(self.ref.encode() + b"\0")
        _builder_hash(h)
        self.inputs(h)
        return h.hexdigest()


def _pause_inputs(h: hashlib._Hash) -> None:
    h.update(go_version(go_binary()).encode())
    _hash_tree(h, PAUSE_DIR, (".go", "go.mod"))


def _build_pause(out: Path, tmp: Path) -> BuiltImage:
    binary = go_build(PAUSE_DIR, tmp / "pause", version="3.10")
    layer = Layer("pause binary")
    layer.add_file("pause", source=binary, mode=0o755)
    cfg = ImageConfig(entrypoint=["/pause"], user="65535:65535", workdir="/",
                      labels={"org.opencontainers.image.title": "pause",
                              "org.opencontainers.image.version": "3.10",
                              "org.opencontainers.image.vendor": "aftershock testbed"})
    return write_image_archive(PAUSE_REF, [layer], cfg, out)


def _sampleapp_inputs(h: hashlib._Hash) -> None:
    h.update(go_version(go_binary()).encode())
    _hash_tree(h, SAMPLEAPP_DIR, (".go", "go.mod", "VERSION"))


def _build_sampleapp(out: Path, tmp: Path) -> BuiltImage:
    binary = go_build(SAMPLEAPP_DIR, tmp / "sampleapp", version=SAMPLEAPP_VERSION)
    layer = _base_layer("passwd, group, tmp")
    app = Layer("sampleapp binary")
    app.add_file("usr/local/bin/sampleapp", source=binary, mode=0o755)
    cfg = ImageConfig(
        entrypoint=["/usr/local/bin/sampleapp"], cmd=["serve"],
        env={"LISTEN": ":8080"}, user=f"{NONROOT}:{NONROOT}", workdir="/",
        exposed_ports=["8080/tcp"], stop_signal="SIGTERM",
        labels={"org.opencontainers.image.title": "aftershock sample app",
                "org.opencontainers.image.version": SAMPLEAPP_VERSION},
    )
    return write_image_archive(SAMPLEAPP_REF, [layer, app], cfg, out)


def _toolbox_inputs(h: hashlib._Hash) -> None:
    h.update(hashlib.sha256(find_busybox().read_bytes()).digest())


def _build_toolbox(out: Path, tmp: Path) -> BuiltImage:
    busybox = find_busybox()
    layer = _base_layer("passwd, group, tmp")
    layer.add_dir("root", mode=0o700)
    layer.add_dir("home/nonroot", mode=0o755, uid=NONROOT, gid=NONROOT)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "var", "proc", "sys", "dev"):
        layer.add_dir(d)
    layer.add_file("bin/busybox", source=busybox, mode=0o755)
    for applet in busybox_applets(busybox):
        if applet != "bin/busybox":
            layer.add_symlink(applet, "/bin/busybox")
    cfg = ImageConfig(
        cmd=["sh"], workdir="/",
        labels={"org.opencontainers.image.title": "aftershock toolbox (busybox-static)",
                "org.opencontainers.image.version": TOOLBOX_VERSION},
    )
    return write_image_archive(TOOLBOX_REF, [layer], cfg, out)


def _httpbin_inputs(h: hashlib._Hash) -> None:
    h.update(go_version(go_binary()).encode())
    _hash_tree(h, HTTPBIN_DIR, ("go.mod", "go.sum"))


def _build_httpbin(out: Path, tmp: Path) -> BuiltImage:
    binary = go_build(HTTPBIN_DIR, tmp / "go-httpbin", version=HTTPBIN_VERSION,
                      package=HTTPBIN_PACKAGE)
    layer = _base_layer("passwd, group, tmp")
    app = Layer("go-httpbin binary")
    app.add_file("bin/go-httpbin", source=binary, mode=0o755)
    cfg = ImageConfig(
        entrypoint=["/bin/go-httpbin"], user=f"{NONROOT}:{NONROOT}", workdir="/",
        exposed_ports=["8080/tcp"], stop_signal="SIGTERM",
        labels={"org.opencontainers.image.title": "go-httpbin (third-party test target)",
                "org.opencontainers.image.version": HTTPBIN_VERSION},
    )
    return write_image_archive(HTTPBIN_REF, [layer, app], cfg, out)


IMAGES: dict[str, ImageSpec] = {
    "pause": ImageSpec("pause", PAUSE_REF, _pause_inputs, _build_pause),
    "sampleapp": ImageSpec("sampleapp", SAMPLEAPP_REF, _sampleapp_inputs, _build_sampleapp),
    "toolbox": ImageSpec("toolbox", TOOLBOX_REF, _toolbox_inputs, _build_toolbox),
    "httpbin": ImageSpec("httpbin", HTTPBIN_REF, _httpbin_inputs, _build_httpbin),
}


# --------------------------------------------------------------------------- build & import


def _stamp_path(out_dir: Path, spec: ImageSpec) -> Path:
    return out_dir / (spec.filename + ".json")


def build_image(spec: ImageSpec, out_dir: Path = DEFAULT_OUT, *, force: bool = False) -> BuiltImage:
    """Build one image into out_dir unless an archive with the same input key is there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    archive, stamp = out_dir / spec.filename, _stamp_path(out_dir, spec)
    key = spec.input_key()
    if not force and archive.is_file() and stamp.is_file():
        try:
            meta = json.loads(stamp.read_text())
        except ValueError:
            meta = {}
        if meta.get("input_key") == key:
            log(f"{spec.ref}: up to date ({archive})")
            return BuiltImage(spec.ref, archive, meta["manifest_digest"], meta["config_digest"],
                              (), archive.stat().st_size)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aftershock-img-") as tmp:
        built = spec.build(archive, Path(tmp))
    part = stamp.with_name(f".{stamp.name}.{os.getpid()}")
    part.write_text(json.dumps({
        "ref": spec.ref, "input_key": key, "manifest_digest": built.manifest_digest,
        "config_digest": built.config_digest, "size": built.size,
    }, indent=2) + "\n")
    os.replace(part, stamp)  # atomic: parallel imports may build the same image
    log(f"{spec.ref}: built in {time.monotonic() - t0:.1f}s, {built.size} bytes, "
        f"{built.manifest_digest[:19]} -> {archive}")
    return built


def build_all(out_dir: Path = DEFAULT_OUT, names: Sequence[str] | None = None, *,
              force: bool = False) -> list[BuiltImage]:
    """Build the named testbed images (default: all) into out_dir."""
    return [build_image(_spec(n), out_dir, force=force) for n in (names or list(IMAGES))]


def import_all(socket: str, out_dir: Path = DEFAULT_OUT, names: Sequence[str] | None = None, *,
               ctr: str = "ctr", namespace: str = "k8s.io",
               build: bool = True) -> list[tuple[str, bool]]:
    """Import the images into the containerd at socket (building them first when needed).

    Returns (ref, imported) pairs; imported is False when containerd already had
    that exact manifest.
    """
    specs = [_spec(n) for n in (names or list(IMAGES))]
    if build:
        build_all(out_dir, [s.name for s in specs])
    done = []
    for spec in specs:
        archive = out_dir / spec.filename
        if not archive.is_file():
            raise ImageBuildError(f"{archive} missing: run build.py all --out {out_dir}")
        imported = import_archive(archive, socket, namespace=namespace, ctr=ctr)
        log(f"{spec.ref}: {'imported into' if imported else 'already in'} {socket}")
        done.append((spec.ref, imported))
    return done


def _spec(name: str) -> ImageSpec:
    if name in IMAGES:
        return IMAGES[name]
    for spec in IMAGES.values():
        if name == spec.ref:
            return spec
    raise ImageBuildError(f"unknown image {name!r}; known: {', '.join(IMAGES)}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="build.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, help_ in (("all", "build every image"), ("build", "build the named images")):
        sp = sub.add_parser(name, help=help_)
        if name == "build":
            sp.add_argument("names", nargs="+", metavar="NAME")
        sp.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
        sp.add_argument("--force", action="store_true", help="rebuild even if up to date")
    sp = sub.add_parser("import", help="import into one containerd (builds first if needed)")
    sp.add_argument("names", nargs="*", metavar="NAME", help="default: all")
    sp.add_argument("--socket", required=True,
                    help="containerd socket, e.g. /run/containerd/containerd.sock")
    sp.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    sp.add_argument("--ctr", default="ctr", help="ctr binary (default: ctr on PATH)")
    sp.add_argument("--namespace", default="k8s.io",
                    help="containerd namespace (default k8s.io, the CRI's)")
    sub.add_parser("list", help="print NAME REF for each image")
    args = p.parse_args(argv)
    try:
        if args.cmd == "all":
            build_all(args.out, force=args.force)
        elif args.cmd == "build":
            build_all(args.out, args.names, force=args.force)
        elif args.cmd == "import":
            import_all(args.socket, args.out, args.names or None, ctr=args.ctr,
                       namespace=args.namespace)
        else:
            for spec in IMAGES.values():
                print(f"{spec.name} {spec.ref}")
    except ImageBuildError as e:
        print(f"build.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
