"""Build OCI image-layout archives without Docker, a registry or any dependency.

A small, stdlib-only library. An image is a list of layers plus a config; the
result is one tar holding an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/...``) that ``ctr images import`` (containerd), ``skopeo`` and
``podman load`` accept.

Output is deterministic: entries are sorted, every mtime is fixed
(``SOURCE_DATE_EPOCH``-style, default 0), owners are numeric, gzip carries no
name or time. The same inputs give the same bytes and so the same digests.

Example::

    layer = Layer(comment="app")
    layer.add_file("usr/local/bin/app", source=Path("build/app"), mode=0o755)
    layer.add_symlink("bin/app", "/usr/local/bin/app")
    cfg = ImageConfig(entrypoint=["/usr/local/bin/app"], user="65532:65532",
                      exposed_ports=["8080/tcp"])
    built = write_image_archive("example.local/app:1.0", [layer], cfg, Path("app.oci.tar"))
    import_archive(built.path, socket="/run/containerd/containerd.sock")
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CHUNK = 1 << 20


class ImageBuildError(Exception):
    """A layer or image could not be built; the message says what and how to fix it."""


# --------------------------------------------------------------------------- layers

EntryKind = Literal["file", "dir", "symlink", "whiteout"]


@dataclass(frozen=True)
class Entry:
    """One filesystem entry of a layer. ``path`` is relative to the image root."""

    path: str
    kind: EntryKind
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    data: bytes | None = None  # file content given inline ...
    source: Path | None = None  # ... or read from this host file
    target: str | None = None  # symlink target


def _norm(path: str | PurePosixPath) -> str:
    """'/usr/bin/' -> 'usr/bin'; refuses '..' and the root itself."""
    p = PurePosixPath("/", str(path))
    parts = [s for s in p.parts[1:] if s not in ("", ".")]
    if not parts or ".." in parts:
        raise ImageBuildError(f"bad path in image: {path!r} (want a path below /, without '..')")
    return "/".join(parts)


class Layer:
    """A set of filesystem entries that becomes one image layer.

    Parent directories are created (0755, root) when not added explicitly.
    Adding the same path twice replaces the first entry.
    """

    def __init__(self, comment: str = "") -> None:
        self.comment = comment
        self._entries: dict[str, Entry] = {}

    # -- adding entries
    def add(self, entry: Entry) -> Layer:
        path = _norm(entry.path)
        if entry.kind == "file" and (entry.data is None) == (entry.source is None):
            raise ImageBuildError(f"{path}: give exactly one of data= or source=")
        if entry.kind == "symlink" and not entry.target:
            raise ImageBuildError(f"{path}: a symlink needs a target")
        self._entries[path] = Entry(
            path, entry.kind, entry.mode & 0o7777, entry.uid, entry.gid,
            entry.data, entry.source, entry.target,
        )
        return self

    def add_file(
        self, path: str, *, data: bytes | str | None = None, source: Path | str | None = None,
        mode: int = 0o644, uid: int = 0, gid: int = 0,
    ) -> Layer:
        if isinstance(data, str):
            data = data.encode()
        src = Path(source) if source is not None else None
        if src is not None and not src.is_file():
            raise ImageBuildError(f"{path}: source {src} is not a file")
        return self.add(Entry(path, "file", mode, uid, gid, data=data, source=src))

    def add_dir(self, path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Layer:
        return self.add(Entry(path, "dir", mode, uid, gid))

    def add_symlink(self, path: str, target: str, *, uid: int = 0, gid: int = 0) -> Layer:
        return self.add(Entry(path, "symlink", 0o777, uid, gid, target=target))

    def add_whiteout(self, path: str) -> Layer:
        """Hide ``path`` of a lower layer (an OCI ``.wh.`` entry)."""
        p = PurePosixPath(_norm(path))
        return self.add(Entry(str(p.parent / f".wh.{p.name}"), "whiteout", 0o644, data=b""))

    def add_tree(
        self, source: Path | str, dest: str, *, uid: int = 0, gid: int = 0,
        exclude: Iterable[str] = ("__pycache__", ".git"),
    ) -> Layer:
        """Copy a host directory tree to ``dest``, keeping modes and symlinks."""
        root = Path(source)
        if not root.is_dir():
            raise ImageBuildError(f"{dest}: source {root} is not a directory")
        skip = set(exclude)
        self.add_dir(dest, mode=stat.S_IMODE(root.stat().st_mode), uid=uid, gid=gid)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in skip)
            for name in sorted(dirnames) + sorted(f for f in filenames if f not in skip):
                host = Path(dirpath, name)
                rel = f"{dest}/{host.relative_to(root).as_posix()}"
                st = host.lstat()
                if stat.S_ISLNK(st.st_mode):
                    self.add_symlink(rel, os.readlink(host), uid=uid, gid=gid)
                elif stat.S_ISDIR(st.st_mode):
                    self.add_dir(rel, mode=stat.S_IMODE(st.st_mode), uid=uid, gid=gid)
                elif stat.S_ISREG(st.st_mode):
                    self.add_file(rel, source=host, mode=stat.S_IMODE(st.st_mode), uid=uid, gid=gid)
                else:
                    raise ImageBuildError(
                        f"{host}: only files, directories and symlinks are supported")
        return self

    # -- reading
    def entries(self) -> list[Entry]:
        """All entries, implicit parents included, parents before children, sorted."""
        out = dict(self._entries)
        for path in list(self._entries):
            parent = PurePosixPath(path).parent
            while str(parent) != ".":
                out.setdefault(str(parent), Entry(str(parent), "dir", 0o755))
                parent = parent.parent
        return [out[k] for k in sorted(out, key=lambda p: p.split("/"))]

    def write_tar(self, fileobj: IO[bytes], *, mtime: int = 0) -> None:
        """Write this layer as an uncompressed, deterministic tar stream."""
        with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for e in self.entries():
                info = tarfile.TarInfo(e.path)
                info.mtime, info.uid, info.gid = mtime, e.uid, e.gid
                info.uname = info.gname = ""
                info.mode = e.mode
                if e.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif e.kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, e.target or ""
                    tar.addfile(info)
                elif e.source is not None:
                    info.size = e.source.stat().st_size
                    with e.source.open("rb") as f:
                        tar.addfile(info, f)
                else:
                    data = e.data or b""
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


# --------------------------------------------------------------------------- config


@dataclass
class ImageConfig:
    """The runtime part of an OCI image config. Every field is optional."""

    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = None
    #: Environment; PATH defaults to DEFAULT_PATH when not given.
    env: Mapping[str, str] = field(default_factory=dict)
    #: "uid", "uid:gid" or a user name known to the image's /etc/passwd.
    user: str = ""
    workdir: str = ""
    #: e.g. ["8080/tcp"]
    exposed_ports: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""

    def to_json(self) -> dict[str, object]:
        env = dict(self.env)
        env.setdefault("PATH", DEFAULT_PATH)
        out: dict[str, object] = {"Env": [f"{k}={v}" for k, v in env.items()]}
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.user:
            out["User"] = self.user
        if self.workdir:
            out["WorkingDir"] = self.workdir
        if self.exposed_ports:
            for p in self.exposed_ports:
                num, _, proto = p.partition("/")
                if not num.isdigit() or proto not in ("tcp", "udp", "sctp"):
                    raise ImageBuildError(f"exposed port {p!r}: want NUMBER/tcp|udp|sctp")
            out["ExposedPorts"] = {p: {} for p in sorted(self.exposed_ports)}
        if self.labels:
            out["Labels"] = dict(sorted(self.labels.items()))
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        return out


# --------------------------------------------------------------------------- blobs


def canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    media_type: str
    digest: str
    size: int

    def descriptor(self, **extra: object) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class LayerBlob(Blob):
    diff_id: str  # digest of the uncompressed tar


@dataclass(frozen=True)
class BuiltImage:
    """What write_image_archive produced."""

    ref: str
    path: Path
    manifest_digest: str
    config_digest: str
    layers: tuple[LayerBlob, ...]
    size: int


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to ``sink``."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink, self.hash, self.size = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.hash.update(b)
        self.size += len(b)
        self.sink.write(b)
        return len(b)


def _layer_blob(layer: Layer, tmp: Path, *, compress: bool, mtime: int) -> tuple[LayerBlob, Path]:
    """Write a layer blob to a file under tmp; return its descriptor and path."""
    out_path = Path(tempfile.mkstemp(dir=tmp, suffix=".layer")[1])
    with out_path.open("wb") as out:
        blob_hasher = _HashingWriter(out)
        if compress:
            # No name and a zero mtime in the gzip header: deterministic bytes.
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=blob_hasher, mtime=0,
                               compresslevel=6)
            tar_hasher = _HashingWriter(gz)  # type: ignore[arg-type]
            layer.write_tar(tar_hasher, mtime=mtime)  # type: ignore[arg-type]
            gz.close()
            diff_id = "sha256:" + tar_hasher.hash.hexdigest()
        else:
            layer.write_tar(blob_hasher, mtime=mtime)  # type: ignore[arg-type]
            diff_id = "sha256:" + blob_hasher.hash.hexdigest()
    media = MEDIA_LAYER_GZIP if compress else MEDIA_LAYER_TAR
    digest = "sha256:" + blob_hasher.hash.hexdigest()
    return LayerBlob(media, digest, blob_hasher.size, diff_id), out_path


def go_arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(m, m)


def split_ref(ref: str) -> tuple[str, str]:
    """'registry.k8s.io/pause:3.10' -> ('registry.k8s.io/pause', '3.10')."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag or not name:
        raise ImageBuildError(
            f"image reference {ref!r} needs an explicit tag, e.g. example.local/app:1.0")
    if tag == "latest":
        raise ImageBuildError(f"image reference {ref!r}: use a version tag, not :latest")
    return name, tag


def write_image_archive(
    ref: str,
    layers: Sequence[Layer],
    config: ImageConfig,
    out: Path,
    *,
    compress: bool = True,
    mtime: int = 0,
    arch: str | None = None,
    os_name: str = "linux",
) -> BuiltImage:
    """Build the image and write it to ``out`` as an OCI image-layout tar.

    The index names the image twice: ``io.containerd.image.name`` (the full
    reference, which ``ctr images import`` uses) and
    ``org.opencontainers.image.ref.name`` (the tag, as the OCI layout spec
    intends). The file is written atomically.
    """
    split_ref(ref)
    arch = arch or go_arch()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".ocibuild-") as tmpdir:
        tmp = Path(tmpdir)
        layer_blobs: list[tuple[LayerBlob, Path]] = [
            _layer_blob(layer, tmp, compress=compress, mtime=mtime) for layer in layers
        ]
        created = "1970-01-01T00:00:00Z" if mtime == 0 else _rfc3339(mtime)
        config_json = {
            "architecture": arch,
            "os": os_name,
            "created": created,
            "config": config.to_json(),
            "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b, _ in layer_blobs]},
            "history": [
                {"created": created, "created_by": layer.comment or f"layer {i}"}
                for i, layer in enumerate(layers)
            ],
        }
        config_bytes = canonical_json(config_json)
        config_blob = Blob(MEDIA_CONFIG, sha256_digest(config_bytes), len(config_bytes))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config_blob.descriptor(),
            "layers": [b.descriptor() for b, _ in layer_blobs],
        }
        manifest_bytes = canonical_json(manifest)
        manifest_blob = Blob(MEDIA_MANIFEST, sha256_digest(manifest_bytes), len(manifest_bytes))
        _, tag = split_ref(ref)
        index = {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [
                manifest_blob.descriptor(
                    platform={"architecture": arch, "os": os_name},
                    annotations={ANNOTATION_CONTAINERD_NAME: ref, ANNOTATION_REF_NAME: tag},
                )
            ],
        }
        blobs: dict[str, bytes | Path] = {
            config_blob.digest: config_bytes, manifest_blob.digest: manifest_bytes}
        for b, p in layer_blobs:
            blobs[b.digest] = p

        part = tmp / "archive.tar"
        with part.open("wb") as f, tarfile.open(fileobj=f, mode="w|",
                                                format=tarfile.PAX_FORMAT) as tar:
            _tar_bytes(tar, "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}), mtime)
            _tar_bytes(tar, "index.json", canonical_json(index), mtime)
            for d in ("blobs", "blobs/sha256"):
                info = tarfile.TarInfo(d)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
                tar.addfile(info)
            for digest in sorted(blobs):
                name = "blobs/sha256/" + digest.removeprefix("sha256:")
                content = blobs[digest]
                if isinstance(content, bytes):
                    _tar_bytes(tar, name, content, mtime)
                else:
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = content.stat().st_size, 0o644, mtime
                    with content.open("rb") as src:
                        tar.addfile(info, src)
        size = part.stat().st_size
        os.replace(part, out)
    return BuiltImage(ref, out, manifest_blob.digest, config_blob.digest,
                      tuple(b for b, _ in layer_blobs), size)


def _tar_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, mtime
    tar.addfile(info, io.BytesIO(data))


def _rfc3339(epoch: int) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_archive_index(path: Path) -> dict[str, Any]:
    """Return index.json of an OCI archive written by write_image_archive."""
    with tarfile.open(path) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise ImageBuildError(f"{path}: no index.json; not an OCI image-layout archive")
        index: dict[str, Any] = json.loads(member.read())
        return index


# --------------------------------------------------------------------------- containerd


def containerd_images(
    socket: str, *, namespace: str = "k8s.io", ctr: str = "ctr",
) -> dict[str, str]:
    """Map image name -> manifest digest, as one containerd knows them."""
    res = subprocess.run(
        [ctr, "--address", socket, "--namespace", namespace, "images", "list"],
        capture_output=True, text=True, check=False,
    )
    if res.returncode != 0:
        raise ImageBuildError(
            f"ctr images list on {socket} failed: {res.stderr.strip()} "
            "(is that containerd running, and are you root?)")
    out: dict[str, str] = {}
    for line in res.stdout.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 3 and cols[2].startswith("sha256:"):
            out[cols[0]] = cols[2]
    return out


def import_archive(
    path: Path | str,
    socket: str,
    *,
    namespace: str = "k8s.io",
    ctr: str = "ctr",
    snapshotter: str = "overlayfs",
    skip_if_present: bool = True,
) -> bool:
    """Import one OCI archive into the containerd at ``socket`` (and unpack it).

    ``namespace`` k8s.io is the one the kubelet (CRI) uses. Returns False when the
    image was already there with the same manifest digest, True when imported.
    """
    path = Path(path)
    if skip_if_present:
        wanted = {
            str(m["annotations"][ANNOTATION_CONTAINERD_NAME]): str(m["digest"])
            for m in read_archive_index(path)["manifests"]
        }
        present = containerd_images(socket, namespace=namespace, ctr=ctr)
        if all(present.get(name) == digest for name, digest in wanted.items()):
            return False
    res = subprocess.run(
        [ctr, "--address", socket, "--namespace", namespace, "images", "import",
         "--snapshotter", snapshotter, str(path)],
        capture_output=True, text=True, check=False,
    )
    if res.returncode != 0:
        raise ImageBuildError(
            f"ctr images import {path} into {socket} failed: "
            f"{(res.stderr or res.stdout).strip()}")
    return True
