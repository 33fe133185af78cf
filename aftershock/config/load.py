"""``load``: the steady load sent during an experiment."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from aftershock.config.base import Section
from aftershock.config.metrics import MetricsConfig

#: The default profile's users each send at most this many requests per second, so a
#: response as slow as 1 / MAX_USER_RATE s does not yet lower the achieved rate.
MAX_USER_RATE = 10.0

_STATUS_RE = re.compile(r"^[1-5]xx$|^[1-5][0-9][0-9]$")


class LoadConfig(Section):
    """The steady load sent during an experiment (locust, as a subprocess)."""

    rate: float = Field(default=200.0, gt=0, le=100_000,
                        description="Target request rate in req/s across all users, paced; "
                                    "above 0, at most 100,000. "
                                    "Default 200: one request every 5 ms, the outage "
                                    "resolution.")
    users: int | None = Field(
        default=None, ge=1, le=100_000,
        description="Concurrent simulated users, 1 to 100,000. Default None: ceil(rate / 10), so "
                    "each user "
                    "sends at most 10 req/s and responses up to 100 ms do not lower the rate.")
    locustfile: Path | None = Field(
        default=None,
        description="Your own locustfile. Default None: the shipped loadtests/steady.py. "
                    "Every request it makes is recorded either way.")
    steady_seconds: float = Field(
        default=10.0, gt=0, le=86_400,
        description="Load before the fault (the steady-state phase), in seconds; above 0, "
                    "at most 86,400 (a day). Default 10.")
    after_seconds: float = Field(
        default=10.0, ge=0, le=86_400,
        description="Load kept after the fault ends, to observe recovery, in seconds; 0 to "
                    "86,400. Default 10.")
    timeout_s: float = Field(default=2.0, gt=0, le=300,
                             description="Per-request timeout in seconds; above 0, at most "
                                         "300. Default 2.")
    failure_statuses: list[str] = Field(
        default_factory=lambda: ["5xx"], min_length=0,
        description="HTTP statuses that count as failed: a code (\"429\") or a class "
                    "(\"5xx\"). Default [\"5xx\"]. Transport errors and timeouts always fail.")
    workers: int = Field(default=1, ge=1, le=256,
                         description="locust worker processes (locust --processes), 1 to "
                                     "256. One FastHttpUser process reaches ~5k req/s. "
                                     "Default 1.")
    worker_pods: int = Field(
        default=0, ge=0, le=1000,
        description="locust worker pods in the target's namespace, 0 to 1,000 (locust's "
                    "master/worker "
                    "mode: this process is the master). They run the suite's image, are "
                    "labelled so no fault or drain touches them, and are deleted when the "
                    "load stops. Needs pod create/delete (the opt-in Role rule in "
                    "k8s-job.yaml). Cannot be combined with workers > 1. Default 0.")
    worker_image: str | None = Field(
        default=None,
        description="Image of the worker pods: an image of this suite. Default None: the "
                    "Job's own image in the cluster (SUITE_IMAGE); required from a "
                    "workstation.")
    master_host: str | None = Field(
        default=None,
        description="Address the worker pods connect to (this process, the locust master). "
                    "Default None: the pod's IP in the Job (POD_IP); required from a "
                    "workstation.")
    master_port: int = Field(default=5557, ge=1, le=65535,
                             description="Port the locust master listens on for worker "
                                         "pods. Default 5557.")
    pod_header: str | None = Field(
        default="X-Pod-Name",
        description="Response header that names the pod which answered; recorded with each "
                    "request so the probe checks can tell which pod served it. Default "
                    "\"X-Pod-Name\" (the sample app sends it). None: not recorded; the "
                    "checks that need it are then inconclusive.")
    metrics: MetricsConfig | None = Field(
        default=None,
        description="Each pod's request counter on its Prometheus metrics endpoint: "
                    "{port, path, counter, interval_s}. The probe checks attribute requests to "
                    "pods by it when no response names its pod. Default None: the pods' "
                    "prometheus.io/scrape annotations, if any.")
    new_connections: bool = Field(
        default=False,
        description="Open a new connection for every request (the shipped profile sends "
                    "Connection: close), so each request is routed by the Service as it is at "
                    "that moment. Default false: kept-alive connections, as most clients use. "
                    "The probe experiments turn it on (probes.new_connections).")

    @field_validator("failure_statuses", mode="before")
    @classmethod
    def _statuses(cls, v: Any) -> Any:
        if isinstance(v, str | int):
            v = [v]
        if isinstance(v, list):
            out = [str(s).strip().lower() for s in v]
            bad = [s for s in out if not _STATUS_RE.match(s)]
            if bad:
                raise ValueError(f"not a status or status class: {bad} (write 503 or \"5xx\")")
            return out
        return v

    @property
    def effective_users(self) -> int:
        return self.users if self.users is not None else max(1, math.ceil(self.rate
                                                                          / MAX_USER_RATE))

    def failure_status_set(self) -> frozenset[int]:
        """Every status code that counts as failure."""
        out: set[int] = set()
        for s in self.failure_statuses:
            if s.endswith("xx"):
                base = int(s[0]) * 100
                out.update(range(base, base + 100))
            else:
                out.add(int(s))
        return frozenset(out)

