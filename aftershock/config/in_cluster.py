"""What the suite's pod learns from the Job's manifest (k8s-job.yaml): the downward API
and the suite's own image. Every field is None outside the Job."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class InCluster(BaseSettings):
    """Read from the environment variables named after the fields (``POD_IP``, ...)."""

    model_config = SettingsConfigDict(case_sensitive=False, env_prefix="", extra="ignore",
                                      env_ignore_empty=True, frozen=True)

    pod_ip: str | None = Field(
        default=None,
        description="POD_IP: the pod's IP, where load worker pods reach the locust master.")
    pod_name: str | None = Field(
        default=None,
        description="POD_NAME: the suite's pod, which owns the load worker pods and is "
                    "never drained away from under the suite.")
    pod_namespace: str | None = Field(default=None,
                                      description="POD_NAMESPACE: the suite pod's namespace.")
    node_name: str | None = Field(default=None,
                                  description="NODE_NAME: the node the suite's pod runs on.")
    suite_image: str | None = Field(
        default=None,
        description="SUITE_IMAGE: the suite's own image, run by the load worker pods.")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> InCluster:
        """From ``environ`` (default: the process environment)."""
        if environ is None:
            return cls()
        return cls.model_validate({name: environ[name.upper()] for name in cls.model_fields
                                   if environ.get(name.upper())})

    @property
    def own_pod(self) -> tuple[str, str] | None:
        """(namespace, name) of the suite's pod inside the Job, else None."""
        if self.pod_namespace and self.pod_name:
            return self.pod_namespace, self.pod_name
        return None
