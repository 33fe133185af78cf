"""Your own images in the testbed: import an archive into every node, and remember it.

`make testbed-import IMAGE=app.tar` takes an OCI image-layout archive or a docker-archive
(`docker save`, `podman save`, `buildah push ... oci-archive:`), keeps a copy in the build
cache (which `down` keeps), and imports it into each node's containerd; `up` imports every
remembered archive again, so the image survives `down`/`up`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

from . import config as c
from .util import TestbedError, run, say

STORE = c.CACHE / "user-images"
CTR = "ctr"
_NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


def image_names(archive: Path) -> list[str]:
    """The image references an archive carries (OCI index annotations or docker RepoTags).

    Raises TestbedError when the file is not an image archive or names no image: an
    unnamed image could not be used from a pod spec.
    """
    try:
        with tarfile.open(archive) as tar:
            members = set(tar.getnames())
            if "index.json" in members:
                index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
                names = [str(m.get("annotations", {}).get(key)) for m in index["manifests"]
                         for key in _NAME_ANNOTATIONS if m.get("annotations", {}).get(key)]
            elif "manifest.json" in members:
                manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
                names = [str(t) for m in manifest for t in (m.get("RepoTags") or [])]
            else:
                raise TestbedError(f"{archive} has neither index.json nor manifest.json",
                                   "give an OCI archive or a docker-archive (docker save)")
    except (OSError, tarfile.TarError, ValueError, KeyError, TypeError) as err:
        raise TestbedError(f"cannot read {archive} as an image archive: {err}",
                           "give an OCI archive or a docker-archive (docker save)") from err
    if not names:
        raise TestbedError(f"{archive} names no image (no tag)",
                           "tag the image before saving it, e.g. docker save me/app:1 -o app.tar")
    return sorted(set(names))


def remember(archive: Path) -> Path:
    """Copy the archive into the store (named by its content), once."""
    digest = hashlib.sha256()
    with archive.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    STORE.mkdir(parents=True, exist_ok=True)
    kept = STORE / f"{digest.hexdigest()[:16]}.tar"
    if not kept.exists():
        tmp = kept.with_suffix(".part")
        shutil.copyfile(archive, tmp)
        tmp.rename(kept)
    return kept


def remembered() -> list[Path]:
    return sorted(STORE.glob("*.tar")) if STORE.is_dir() else []


def import_into_nodes(archives: list[Path]) -> None:
    """``ctr images import`` of each archive into every node's containerd (k8s.io)."""
    for archive in archives:
        names = ", ".join(image_names(archive))
        for node in c.NODES:
            proc = run([CTR, "--address", node.socket, "--namespace", "k8s.io", "images",
                        "import", "--snapshotter", "overlayfs", archive], check=False,
                       timeout=600)
            if proc.returncode != 0:
                raise TestbedError(f"importing {names} into {node.name} failed: "
                                   f"{proc.stderr.strip()[-800:]}",
                                   "is the testbed up (make testbed-status)?")
        say(f"{names}: on {len(c.NODES)} nodes")


def import_image(path: str) -> None:
    """`python -m tb import-image PATH`: check, remember, import."""
    archive = Path(path)
    if not archive.is_file():
        raise TestbedError(f"{path} is not a file", "make testbed-import IMAGE=path/to/image.tar")
    names = image_names(archive)
    kept = remember(archive)
    say(f"remembered {', '.join(names)} as {kept} (`up` imports it again)")
    import_into_nodes([kept])
