"""``aftershock job``: the suite as a Kubernetes Job, and the artifacts back out of it.

    aftershock job run     (CI, outside the cluster) apply k8s-job.yaml, stream progress,
                           fetch the results, delete everything, exit with the suite's code
    aftershock job render  print the manifests ``job run`` would apply (for GitOps, reviews)
    aftershock job suite   (inside the Job's pod) check RBAC, run the suite, leave the exit
                           code and a done-file for the holder

The pod has two containers sharing an emptyDir at /results (Sonobuoy's pattern):
``suite`` runs the experiments and exits; ``holder`` keeps the pod, and so /results,
alive until ``job run`` has copied it out (``tar`` over exec into the holder) and
touched the fetched-file. kubectl cannot copy from a terminated container, which is
why the holder exists. The suite's exit code travels in /results/exit-code.

One module per role; the pure ones are functions of data, unit-tested without a cluster,
and every API call is in :mod:`aftershock.kube.job_api`:

    pod       what k8s-job.yaml and the code agree on: containers, mounts, files, labels
    rbac      the ServiceAccount's permissions and their checks (pod, manifests)
    render    k8s-job.yaml filled in for one run
    diagnose  what a state of the Job's pod means
    fetch     the results tarball out of the holder
    run       ``job run``'s loop: apply, follow, fetch, delete
    suite     ``job suite``, inside the pod
    commands  ``job run|render`` from the options and the config
"""

from __future__ import annotations

from aftershock.config import SUITE_IMAGE_ENV
from aftershock.job.commands import cli, raw_config
from aftershock.job.diagnose import Stuck, container_state, describe, diagnose
from aftershock.job.fetch import extract, read_exit_code, tar_command
from aftershock.job.pod import (
           DEFAULT_IMAGE,
           DONE_FILE,
           ERROR_FILE,
           EXIT_FILE,
           FETCHED_FILE,
           HOLDER,
           MANIFESTS,
           RUN_LABEL,
           SUITE,
           JobError,
)
from aftershock.job.rbac import (
           PERMISSIONS,
           WORKER_POD_PERMISSIONS,
           Permission,
           access_checks,
           check_worker_pod_rule,
           missing_permissions_error,
)
from aftershock.job.render import JobSpec, in_cluster_config, load_manifests, render
from aftershock.job.run import Outcome, run_job
from aftershock.job.suite import suite_main

__all__ = ["DEFAULT_IMAGE", "DONE_FILE", "ERROR_FILE", "EXIT_FILE", "FETCHED_FILE", "HOLDER",
           "MANIFESTS", "PERMISSIONS", "RUN_LABEL", "SUITE", "SUITE_IMAGE_ENV",
           "WORKER_POD_PERMISSIONS", "JobError", "JobSpec", "Outcome", "Permission", "Stuck",
           "access_checks", "check_worker_pod_rule", "cli", "container_state", "describe",
           "diagnose", "extract", "in_cluster_config", "load_manifests",
           "missing_permissions_error", "raw_config", "read_exit_code", "render", "run_job",
           "suite_main", "tar_command"]
