"""The testbed's own-image import: which archives it takes, what names it reads from them,
and that it keeps one copy per content (so `up` re-imports each once)."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "testbed"))

from tb import user_images, util


def archive(path: Path, files: dict[str, object]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, content in files.items():
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_names_come_from_an_oci_index_or_docker_repo_tags(tmp_path: Path) -> None:
    oci = archive(tmp_path / "oci.tar", {"index.json": {"manifests": [
        {"annotations": {"io.containerd.image.name": "example.com/me/app:1",
                         "org.opencontainers.image.ref.name": "1"}}]}})
    assert user_images.image_names(oci) == ["1", "example.com/me/app:1"]
    docker = archive(tmp_path / "docker.tar", {"manifest.json": [
        {"RepoTags": ["me/app:2", "me/app:latest"]}]})
    assert user_images.image_names(docker) == ["me/app:2", "me/app:latest"]


def test_an_untagged_or_foreign_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    untagged = archive(tmp_path / "u.tar", {"manifest.json": [{"RepoTags": None}]})
    with pytest.raises(util.TestbedError, match="names no image"):
        user_images.image_names(untagged)
    other = archive(tmp_path / "o.tar", {"hello.json": {}})
    with pytest.raises(util.TestbedError, match=r"neither index\.json nor manifest\.json"):
        user_images.image_names(other)
    (tmp_path / "t.txt").write_text("not a tar")
    with pytest.raises(util.TestbedError, match="cannot read"):
        user_images.image_names(tmp_path / "t.txt")


def test_the_store_keeps_one_copy_per_content(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(user_images, "STORE", tmp_path / "store")
    a = archive(tmp_path / "a.tar", {"manifest.json": [{"RepoTags": ["me/app:1"]}]})
    kept = user_images.remember(a)
    assert user_images.remember(a) == kept
    assert user_images.remembered() == [kept]
    assert kept.read_bytes() == a.read_bytes()
