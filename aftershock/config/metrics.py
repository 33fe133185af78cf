"""``load.metrics``: where each target pod exports its request counter (the second source
of which pod answered, for apps that send no pod header)."""

from __future__ import annotations

from pydantic import Field, field_validator

from aftershock.config.base import Section


class MetricsConfig(Section):
    """Each target pod's own Prometheus metrics endpoint, scraped at its pod IP about once a
    second while an experiment records. Without this section, the pod template's
    ``prometheus.io/scrape: "true"`` annotation (with ``prometheus.io/port`` and
    ``prometheus.io/path``) turns scraping on."""

    port: int | None = Field(
        default=None, ge=1, le=65535,
        description="The metrics port on each pod. Default None: the pod template's "
                    "prometheus.io/port annotation (no scraping without one).")
    path: str | None = Field(
        default=None,
        description="The metrics path. Default None: the prometheus.io/path annotation, or "
                    "/metrics.")
    counter: str = Field(
        default="http_requests_total",
        description="The counter of requests the app answered; its samples are summed, and "
                    "those whose code or status label is a failure status "
                    "(load.failure_statuses) count as failed, and those whose path label "
                    "(handler, path, route, uri, url, endpoint) is one of the pods' probe "
                    "paths, and not one of target.paths, are left out. A counter with no "
                    "path label must count the load's requests only: probe requests counted "
                    "too would read as traffic. Default http_requests_total.")
    interval_s: float = Field(
        default=1.0, ge=0.1, le=60,
        description="Between two scrapes of one pod, in seconds (0.1 to 60): the resolution "
                    "of the attribution. Default 1.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError(f"{v!r} is not an absolute path (write /{v})")
        return v
