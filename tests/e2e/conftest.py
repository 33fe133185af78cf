"""Shared pieces of the e2e tier: the running testbed, kubectl, scratch namespaces.

The e2e tier is selected on purpose (``make e2e`` brings the testbed up first), so
a missing testbed is an error here, never a skip: a skipped e2e test reads as green.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "testbed" / "manifests"
# Not AFTERSHOCK_*: the CLI subprocesses inherit this environment and refuse unknown
# AFTERSHOCK_* variables as misspelt config keys.
KUBECONFIG = Path(os.environ.get("TESTBED_KUBECONFIG", ROOT / ".testbed" / "kubeconfig"))
KUBECTL = os.environ.get("TESTBED_KUBECTL", str(ROOT / ".testbed" / "kubectl"))
AFTERSHOCK = str(Path(sys.executable).with_name("aftershock"))
ROLLOUT_TIMEOUT_S = 240


def kubectl(*args: str, timeout: float = 120, check: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the testbed's kubectl; raise with its stderr when ``check`` and it fails."""
    proc = subprocess.run([KUBECTL, f"--kubeconfig={KUBECONFIG}", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, input=stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stderr.strip()}")
    return proc


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def testbed() -> Path:
    """The testbed kubeconfig, after checking the API answers with Ready nodes."""
    if not KUBECONFIG.exists():
        pytest.fail(f"no testbed kubeconfig at {KUBECONFIG}: run `make testbed-up` first",
                    pytrace=False)
    nodes = kubectl_json("get", "nodes")["items"]
    ready = [n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True"
                    for c in n["status"].get("conditions", []))]
    if not ready:
        pytest.fail("the testbed has no Ready node: see `make testbed-status`", pytrace=False)
    return KUBECONFIG


@dataclass
class Scratch:
    """A namespace of one's own, deleted at the end of the test module."""

    name: str

    def apply(self, *dirs: str, wait: bool = True) -> None:
        """``kubectl apply -k`` each manifests directory; wait for every rollout."""
        for d in dirs:
            kubectl("apply", "-n", self.name, "-k", str(MANIFESTS / d))
        if wait:
            self.wait_rollouts()

    def wait_rollouts(self) -> None:
        for dep in kubectl_json("get", "deployments", "-n", self.name)["items"]:
            name = dep["metadata"]["name"]
            kubectl("rollout", "status", "-n", self.name, f"deployment/{name}",
                    f"--timeout={ROLLOUT_TIMEOUT_S}s", timeout=ROLLOUT_TIMEOUT_S + 30)

    def get(self, kind: str, name: str) -> Any:
        return kubectl_json("get", kind, name, "-n", self.name)

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return list(kubectl_json("get", "pods", "-n", self.name, "-l", selector)["items"])


@pytest.fixture(scope="module")
def scratch(testbed: Path, request: pytest.FixtureRequest) -> Iterator[Scratch]:
    """A fresh namespace named after the test module; deleted afterwards, whatever happened."""
    base = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    ns = Scratch(f"e2e-{base[:40]}-{secrets.token_hex(3)}")
    kubectl("create", "namespace", ns.name)
    try:
        yield ns
    finally:
        kubectl("delete", "namespace", ns.name, "--wait=false", check=False)


def write_config(path: Path, namespace: str, deployment: str, **sections: Any) -> Path:
    """An aftershock config for one target in the scratch namespace."""
    data: dict[str, Any] = {
        "target": {"namespace": namespace, "deployment": deployment, "service": deployment},
        "kubeconfig": str(KUBECONFIG),
        "results_dir": str(path.parent / "results"),
    }
    for key, value in sections.items():
        data[key] = value
    path.write_text(yaml.safe_dump(data))
    return path


RunAftershock = Callable[..., subprocess.CompletedProcess[str]]


def aftershock_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the installed ``aftershock`` CLI as a user would, bounded in time."""
    return subprocess.run([AFTERSHOCK, *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=ROOT)


@pytest.fixture
def run_aftershock() -> RunAftershock:
    """:func:`aftershock_cli`, for tests that take it as a fixture."""
    return aftershock_cli


def results_of(config_path: Path) -> dict[str, Any]:
    data = yaml.safe_load(config_path.read_text())
    return dict(json.loads((Path(data["results_dir"]) / "results.json").read_text()))


@pytest.fixture(scope="session")
def suite_image(testbed: Path) -> str:
    """The suite's image, built from this tree's Dockerfile (cached by content) and imported
    into every node, once per session; its reference."""
    t0 = time.monotonic()
    proc = subprocess.run(["/usr/bin/python3", str(ROOT / "testbed" / "images" / "suite_image.py"),
                           "import"], capture_output=True, text=True, timeout=900, check=False,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"image build+import: {time.monotonic() - t0:.0f} s\n{proc.stderr.strip()}")
    return proc.stdout.strip().splitlines()[-1]
