"""What the engine reads at run time and ships inside the package.

The repository keeps ``experiments/``, ``loadtests/`` and ``k8s-job.yaml`` at its top, and
links them into the package; a wheel installs them as package data. Reading them through
:mod:`importlib.resources` finds them from any working directory, in a source checkout, a
plain ``pip install`` and the Job's image alike.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _packaged(name: str) -> Path:
    # Installed packages are plain directories (no zip imports), so the traversable is a path.
    return Path(str(resources.files("aftershock") / name))


def experiments_dir() -> Path:
    """The shipped experiments (pytest modules), one fault family per module."""
    return _packaged("experiments")


def default_locustfile() -> Path:
    """The shipped steady-state load profile."""
    return _packaged("loadtests") / "steady.py"


def job_manifests() -> Path:
    """The Job, its ServiceAccount and least-privilege RBAC (k8s-job.yaml)."""
    return _packaged("k8s-job.yaml")
