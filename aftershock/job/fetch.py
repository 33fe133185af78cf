"""The results out of the holder container: the tar command, its safe unpacking, the
suite's exit code."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from aftershock.job.pod import EXIT_FILE, RESULTS_MOUNT


def tar_command() -> list[str]:
    """What the holder runs to hand over /results (the load records are left out: the
    timelines hold every request already)."""
    return ["tar", "-C", RESULTS_MOUNT, "--exclude=./load/*/records", "-czf", "-", "."]


def extract(data: bytes, dest: Path) -> list[str]:
    """Unpack the results tarball into ``dest``; return the file names. Refuses paths
    that would land outside ``dest`` (the tar comes from a pod)."""
    dest.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:
            # Python before 3.11.4 (Debian 12's 3.11.2) has no extraction filters: the
            # members are plain files and directories already; refuse any outside dest.
            root = dest.resolve()
            outside = [m.name for m in members
                       if m.name.startswith("/") or not (root / m.name).resolve()
                       .is_relative_to(root)]
            if outside:
                raise tarfile.TarError(f"results tar member outside {dest}: {outside[0]!r}")
            tar.extractall(dest, members=members)
        names = sorted(m.name.removeprefix("./") for m in members if m.isfile())
    return names


def read_exit_code(results: Path) -> int | None:
    try:
        return int((results / EXIT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
