"""The Job's pod as k8s-job.yaml and the code both know it: containers, mounts, the
files the suite and ``job run`` hand over, labels, and the error ``job run`` exits with."""

from __future__ import annotations

from aftershock.errors import EXIT_INCONCLUSIVE, AftershockError
from aftershock.resources import job_manifests

MANIFESTS = job_manifests()
DEFAULT_IMAGE = "aftershock.local/aftershock:0.1.0"

SUITE, HOLDER = "suite", "holder"
RESULTS_MOUNT = "/results"
CONFIG_MOUNT = "/etc/aftershock"
CONFIG_KEY = "aftershock.yaml"
LOCUSTFILE_KEY = "locustfile.py"
EXIT_FILE = "exit-code"
DONE_FILE = ".aftershock-done"
FETCHED_FILE = ".aftershock-fetched"
#: The suite's message when it stopped before running anything (RBAC, config).
ERROR_FILE = "job-error.txt"
RUN_LABEL = "aftershock.io/run"
MASTER_PORT_NAME = "locust-master"
MANAGED_BY = "app.kubernetes.io/managed-by"


class JobError(AftershockError):
    """The Job could not run the suite; ``exit_code`` says how the caller should exit."""

    def __init__(self, problem: str, fix: str = "", exit_code: int = EXIT_INCONCLUSIVE) -> None:
        super().__init__(problem, fix)
        self.exit_code = exit_code
