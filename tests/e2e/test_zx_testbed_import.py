"""`make testbed-import IMAGE=...` puts a user's image on every node, and it is still there
after `make testbed-down && make testbed-up`.

It restarts the testbed, so it runs after the experiments' e2e tests (the name sorts late)
and before the API-restart and teardown modules. The image is a copy of the testbed's pause
archive under a user's name, so nothing is downloaded; it is removed from the nodes and the
store at the end.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e

NAME = "example.com/yours/app:e2e"
NODES = [f"/run/aftershock/node-{i}/containerd.sock" for i in (1, 2, 3)]
PAUSE = Path("/var/cache/aftershock/images/registry.k8s.io_pause_3.10.oci.tar")
STORE = Path("/var/cache/aftershock/user-images")


def make(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, check=False)


def renamed(src: Path, dst: Path, name: str) -> Path:
    """The OCI archive ``src`` with its image named ``name``."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for member in tin.getmembers():
            data = tin.extractfile(member) if member.isfile() else None
            if member.name == "index.json" and data is not None:
                index = json.load(data)
                for m in index["manifests"]:
                    m.setdefault("annotations", {})["io.containerd.image.name"] = name
                raw = json.dumps(index).encode()
                member.size = len(raw)
                tout.addfile(member, io.BytesIO(raw))
            else:
                tout.addfile(member, data)
    return dst


def on_nodes(name: str) -> list[bool]:
    found = []
    for sock in NODES:
        out = subprocess.run(["ctr", "--address", sock, "-n", "k8s.io", "images", "ls", "-q"],
                             capture_output=True, text=True, check=False).stdout.split()
        found.append(name in out)
    return found


def test_an_imported_image_is_on_every_node_and_survives_down_and_up(tmp_path: Path) -> None:
    if not PAUSE.exists():
        pytest.fail(f"{PAUSE} missing: make testbed-up builds it")
    archive = renamed(PAUSE, tmp_path / "app.tar", NAME)
    before = set(STORE.glob("*.tar")) if STORE.is_dir() else set()
    try:
        proc = make("testbed-import", f"IMAGE={archive}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert on_nodes(NAME) == [True, True, True]
        bad = make("testbed-import")
        assert bad.returncode == 2 and "usage: make testbed-import IMAGE=" in bad.stderr
        for target in ("testbed-down", "testbed-up"):
            proc = make(target)
            assert proc.returncode == 0, f"{target}:\n{proc.stdout[-3000:]}{proc.stderr}"
        assert on_nodes(NAME) == [True, True, True], "the image was lost after down/up"
    finally:
        for kept in (set(STORE.glob("*.tar")) if STORE.is_dir() else set()) - before:
            kept.unlink()
        for sock in NODES:
            subprocess.run(["ctr", "--address", sock, "-n", "k8s.io", "images", "rm", NAME],
                           capture_output=True, check=False)
