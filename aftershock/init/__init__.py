"""``aftershock init``: a commented config for a target, from its live objects.

It reads the Deployment, the Services, pods, PDBs and HPAs of its namespace, sends a few GET
requests to the Service, and writes what it found (:mod:`aftershock.init.propose`), each
guess named as one, as a config that ``aftershock run`` accepts unchanged. It changes
nothing in the cluster.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aftershock.errors import EXIT_PASS, UsageError
from aftershock.init.propose import candidate_paths, pick_service, propose
from aftershock.init.render import render


@dataclass(frozen=True)
class InitRequest:
    namespace: str
    deployment: str
    service: str | None
    kubeconfig: str | None
    context: str | None
    output: str  # a file, or "-" for stdout
    force: bool = False


def run_init(req: InitRequest) -> int:
    from aftershock.config import load_config
    from aftershock.kube.cluster import connect_to, service_url
    from aftershock.kube.discover import ask, read_observed

    out = None if req.output == "-" else Path(req.output)
    if out is not None and out.exists() and not req.force:
        raise UsageError(f"{out} exists: pass --force to replace it, or -o another file")
    cluster = connect_to(req.kubeconfig, req.context, [req.namespace])
    try:
        observed = read_observed(cluster, req.namespace, req.deployment)
        choice = pick_service(observed, req.service)
        url = service_url(cluster, req.namespace, choice.service.name)
        _say(f"asking {url} {', '.join(candidate_paths(observed.deployment))} ...")
        answers = ask(url, candidate_paths(observed.deployment))
    finally:
        cluster.close()
    text = render(propose(observed, choice, answers),
                  {"kubeconfig": req.kubeconfig, "context": req.context})
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as check:
        check.write(text)
        check.flush()
        load_config(check.name)  # what run will read: a ConfigError here is init's bug
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        _say(f"wrote {out}: check the lines marked guess, then `aftershock run --config {out}`")
    return EXIT_PASS


def _say(text: str) -> None:
    print(f"aftershock init: {text}", file=sys.stderr)
