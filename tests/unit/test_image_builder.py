"""The OCI image builder (testbed/images): digests, determinism, media types, import.

No cluster, no containerd: archives are built into tmp_path and read back with
tarfile; `ctr` is replaced by a small fake script.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import shutil
import stat
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGES_DIR = REPO / "testbed" / "images"
sys.path.insert(0, str(IMAGES_DIR))

import ocilayout  # noqa: E402
from ocilayout import (  # noqa: E402
    ImageBuildError,
    ImageConfig,
    Layer,
    import_archive,
    write_image_archive,
)


def _load_build_module() -> Any:
    spec = importlib.util.spec_from_file_location("testbed_images_build", IMAGES_DIR / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


build = _load_build_module()


class Archive:
    """An OCI image-layout tar, read back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with tarfile.open(path) as tar:
            self.members = tar.getmembers()
            self.files = {
                m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in self.members if m.isfile()
            }

    def json(self, name: str) -> Any:
        return json.loads(self.files[name])

    def blob(self, digest: str) -> bytes:
        algo, _, hexd = digest.partition(":")
        assert algo == "sha256"
        return self.files[f"blobs/sha256/{hexd}"]

    @property
    def index(self) -> Any:
        return self.json("index.json")

    @property
    def manifest(self) -> Any:
        return json.loads(self.blob(self.index["manifests"][0]["digest"]))

    @property
    def config(self) -> Any:
        return json.loads(self.blob(self.manifest["config"]["digest"]))


def sample_layers(tmp_path: Path) -> list[Layer]:
    src = tmp_path / "hostfile"
    src.write_bytes(b"#!/bin/sh\necho hi\n")
    base = Layer("base")
    base.add_file("etc/passwd", data="root:x:0:0::/root:/bin/sh\n")
    base.add_dir("tmp", mode=0o1777)
    app = Layer("app")
    app.add_file("/usr/local/bin/hello", source=src, mode=0o755)
    app.add_symlink("bin/hi", "/usr/local/bin/hello")
    app.add_file("home/app/data", data=b"x", uid=65532, gid=65532, mode=0o600)
    return [base, app]


CONFIG = ImageConfig(
    entrypoint=["/usr/local/bin/hello"], cmd=["--flag"], env={"A": "1"},
    user="65532:65532", workdir="/home/app", exposed_ports=["8080/tcp"],
    labels={"b": "2", "a": "1"},
)


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    built = write_image_archive("example.local/hello:1.2.3", sample_layers(tmp_path), CONFIG,
                                tmp_path / "out" / "hello.oci.tar")
    arc = Archive(built.path)
    assert built.manifest_digest == arc.index["manifests"][0]["digest"]
    return arc


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_layout_files_and_media_types(archive: Archive) -> None:
    assert archive.json("oci-layout") == {"imageLayoutVersion": "1.0.0"}
    index = archive.index
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    [desc] = index["manifests"]
    assert desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert desc["platform"] == {"architecture": ocilayout.go_arch(), "os": "linux"}
    assert desc["annotations"] == {
        "io.containerd.image.name": "example.local/hello:1.2.3",
        "org.opencontainers.image.ref.name": "1.2.3",
    }
    manifest = archive.manifest
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"] * 2


def test_every_digest_and_size_matches_its_blob(archive: Archive) -> None:
    desc = archive.index["manifests"][0]
    blob = archive.blob(desc["digest"])
    assert sha(blob) == desc["digest"] and len(blob) == desc["size"]
    for d in [archive.manifest["config"], *archive.manifest["layers"]]:
        blob = archive.blob(d["digest"])
        assert sha(blob) == d["digest"], d
        assert len(blob) == d["size"], d
    # Nothing in blobs/ that the manifest does not name, and every name is its digest.
    referenced = {desc["digest"], archive.manifest["config"]["digest"],
                  *(d["digest"] for d in archive.manifest["layers"])}
    stored = {"sha256:" + n.rsplit("/", 1)[1] for n in archive.files if n.startswith("blobs/")}
    assert stored == referenced


def test_diff_ids_are_digests_of_uncompressed_layers(archive: Archive) -> None:
    diff_ids = archive.config["rootfs"]["diff_ids"]
    assert archive.config["rootfs"]["type"] == "layers"
    layers = archive.manifest["layers"]
    assert len(diff_ids) == len(layers) == 2
    for d, diff_id in zip(layers, diff_ids, strict=True):
        assert sha(gzip.decompress(archive.blob(d["digest"]))) == diff_id


def test_config_carries_runtime_settings(archive: Archive) -> None:
    cfg = archive.config
    assert cfg["architecture"] == ocilayout.go_arch() and cfg["os"] == "linux"
    c = cfg["config"]
    assert c["Entrypoint"] == ["/usr/local/bin/hello"]
    assert c["Cmd"] == ["--flag"]
    assert c["User"] == "65532:65532"
    assert c["WorkingDir"] == "/home/app"
    assert c["ExposedPorts"] == {"8080/tcp": {}}
    assert c["Labels"] == {"a": "1", "b": "2"}
    assert "A=1" in c["Env"] and any(e.startswith("PATH=") for e in c["Env"])
    assert [h["created_by"] for h in cfg["history"]] == ["base", "app"]


def layer_members(archive: Archive, i: int) -> list[tarfile.TarInfo]:
    data = gzip.decompress(archive.blob(archive.manifest["layers"][i]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def test_layer_entries_sorted_with_parents_fixed_times_and_modes(archive: Archive) -> None:
    members = layer_members(archive, 1)
    names = [m.name for m in members]
    assert names == ["bin", "bin/hi", "home", "home/app", "home/app/data",
                     "usr", "usr/local", "usr/local/bin", "usr/local/bin/hello"]
    by = {m.name: m for m in members}
    assert all(m.mtime == 0 and m.uname == "" and m.gname == "" for m in members)
    assert by["usr/local/bin/hello"].mode == 0o755 and by["usr/local/bin/hello"].isfile()
    assert by["bin/hi"].issym() and by["bin/hi"].linkname == "/usr/local/bin/hello"
    assert (by["home/app/data"].uid, by["home/app/data"].mode) == (65532, 0o600)
    assert by["usr"].isdir() and by["usr"].mode == 0o755
    base = {m.name: m for m in layer_members(archive, 0)}
    assert base["tmp"].mode == 0o1777


def test_archive_itself_is_sorted_and_fixed_in_time(archive: Archive) -> None:
    names = [m.name for m in archive.members]
    assert names[:4] == ["oci-layout", "index.json", "blobs", "blobs/sha256"]
    assert names[4:] == sorted(names[4:])
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in archive.members)


def test_output_is_deterministic(tmp_path: Path) -> None:
    ref = "example.local/x:1"
    a = write_image_archive(ref, sample_layers(tmp_path), CONFIG, tmp_path / "a.tar")
    b = write_image_archive(ref, sample_layers(tmp_path), CONFIG, tmp_path / "b.tar")
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.manifest_digest == b.manifest_digest
    # One byte of content changes the layer digest, the config and the manifest.
    layers = sample_layers(tmp_path)
    layers[0].add_file("etc/passwd", data="root:x:0:0::/root:/bin/ash\n")
    c = write_image_archive("example.local/x:1", layers, CONFIG, tmp_path / "c.tar")
    assert c.manifest_digest != a.manifest_digest
    assert c.layers[0].digest != a.layers[0].digest and c.layers[1] == a.layers[1]


def test_insertion_order_does_not_matter(tmp_path: Path) -> None:
    one, two = Layer(), Layer()
    one.add_file("b/x", data="1").add_file("a/y", data="2")
    two.add_file("a/y", data="2").add_file("b/x", data="1")
    cfg = ImageConfig()
    a = write_image_archive("e.local/x:1", [one], cfg, tmp_path / "a.tar")
    b = write_image_archive("e.local/x:1", [two], cfg, tmp_path / "b.tar")
    assert a.path.read_bytes() == b.path.read_bytes()


def test_uncompressed_layers_have_digest_equal_to_diff_id(tmp_path: Path) -> None:
    built = write_image_archive("e.local/x:1", sample_layers(tmp_path), CONFIG,
                                tmp_path / "x.tar", compress=False)
    arc = Archive(built.path)
    assert [d["mediaType"] for d in arc.manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar"] * 2
    assert [d["digest"] for d in arc.manifest["layers"]] == arc.config["rootfs"]["diff_ids"]


def test_add_tree_keeps_modes_and_symlinks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "sub" / "run.sh", 0o750)
    os.symlink("sub/run.sh", src / "link")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "x.pyc").write_bytes(b"")
    layer = Layer().add_tree(src, "opt/app")
    entries = {e.path: e for e in layer.entries()}
    assert entries["opt/app/sub/run.sh"].mode == 0o750
    link = entries["opt/app/link"]
    assert link.kind == "symlink" and link.target == "sub/run.sh"
    assert not any("__pycache__" in p for p in entries)


def test_whiteout_entry(tmp_path: Path) -> None:
    layer = Layer().add_whiteout("/etc/motd")
    assert [e.path for e in layer.entries()] == ["etc", "etc/.wh.motd"]


@pytest.mark.parametrize("ref", ["example.local/app", "example.local/app:latest", ":1"])
def test_references_need_an_explicit_version_tag(tmp_path: Path, ref: str) -> None:
    with pytest.raises(ImageBuildError):
        write_image_archive(ref, [Layer().add_dir("x")], ImageConfig(), tmp_path / "x.tar")


@pytest.mark.parametrize("path", ["../etc/passwd", "/", "a/../../b"])
def test_paths_outside_the_root_are_refused(path: str) -> None:
    with pytest.raises(ImageBuildError):
        Layer().add_file(path, data="x")


def test_file_needs_exactly_one_content_source(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError):
        Layer().add_file("x")
    with pytest.raises(ImageBuildError, match="not a file"):
        Layer().add_file("x", source=tmp_path / "missing")


def test_bad_exposed_port_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="exposed port"):
        write_image_archive("e.local/x:1", [Layer().add_dir("x")],
                            ImageConfig(exposed_ports=["http"]), tmp_path / "x.tar")


# --------------------------------------------------------------------------- import via ctr


FAKE_CTR = """#!/bin/sh
echo "$@" >> "{log}"
case "$*" in
  *"images list"*)
    echo "REF TYPE DIGEST SIZE PLATFORMS LABELS"
    [ -f "{present}" ] && cat "{present}"
    exit 0;;
  *"images import"*) exit 0;;
esac
exit 1
"""


def test_import_skips_an_image_containerd_already_has(tmp_path: Path) -> None:
    built = write_image_archive("e.local/x:1", [Layer().add_dir("x")], ImageConfig(),
                                tmp_path / "x.tar")
    log, present = tmp_path / "ctr.log", tmp_path / "present"
    ctr = tmp_path / "ctr"
    ctr.write_text(FAKE_CTR.format(log=log, present=present))
    ctr.chmod(0o755)

    assert import_archive(built.path, "/run/x.sock", ctr=str(ctr)) is True
    calls = log.read_text().splitlines()
    assert calls[-1] == ("--address /run/x.sock --namespace k8s.io images import "
                         f"--snapshotter overlayfs {built.path}")

    present.write_text(f"e.local/x:1 application/vnd.oci.image.manifest.v1+json "
                       f"{built.manifest_digest} 1KiB linux/amd64 -\n")
    assert import_archive(built.path, "/run/x.sock", ctr=str(ctr)) is False
    assert "images import" not in log.read_text().splitlines()[-1]


def test_import_failure_names_the_socket(tmp_path: Path) -> None:
    built = write_image_archive("e.local/x:1", [Layer().add_dir("x")], ImageConfig(),
                                tmp_path / "x.tar")
    ctr = tmp_path / "ctr"
    ctr.write_text("#!/bin/sh\necho 'connection refused' >&2\nexit 1\n")
    ctr.chmod(0o755)
    with pytest.raises(ImageBuildError, match=r"/run/none\.sock"):
        import_archive(built.path, "/run/none.sock", ctr=str(ctr))


# --------------------------------------------------------------------------- testbed images


def test_testbed_images_have_explicit_version_tags() -> None:
    refs = {name: spec.ref for name, spec in build.IMAGES.items()}
    assert refs["pause"] == "registry.k8s.io/pause:3.10"
    assert refs["sampleapp"].startswith("aftershock.local/sampleapp:")
    assert refs["toolbox"].startswith("aftershock.local/toolbox:")
    for ref in refs.values():
        _, tag = ocilayout.split_ref(ref)
        assert tag and tag != "latest"


def test_static_elf_detection(tmp_path: Path) -> None:
    assert build.is_static_elf(Path(sys.executable)) is False  # dynamically linked
    script = tmp_path / "s"
    script.write_text("#!/bin/sh\n")
    assert build.is_static_elf(script) is False


@pytest.mark.skipif(not (shutil.which("go") or Path("/usr/local/go/bin/go").exists()),
                    reason="needs the Go toolchain")
def test_sampleapp_image_builds_and_is_reused(tmp_path: Path) -> None:
    [first] = build.build_all(tmp_path, ["sampleapp"])
    arc = Archive(first.path)
    cfg = arc.config["config"]
    assert cfg["User"] == "65532:65532"
    assert cfg["Entrypoint"] == ["/usr/local/bin/sampleapp"]
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    binary = next(m for m in layer_members(arc, 1) if m.name == "usr/local/bin/sampleapp")
    assert stat.S_IMODE(binary.mode) == 0o755
    mtime = first.path.stat().st_mtime_ns
    [second] = build.build_all(tmp_path, ["sampleapp"])
    assert second.manifest_digest == first.manifest_digest
    assert first.path.stat().st_mtime_ns == mtime  # not rebuilt
