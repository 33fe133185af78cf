"""The Kubernetes adapter: the only package that imports the Kubernetes client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aftershock.kube.cluster import Cluster, connect_to

if TYPE_CHECKING:
    from aftershock.config import Config

__all__ = ["Cluster", "connect"]


def connect(config: Config) -> Cluster:
    """A client for the configured cluster, allowed to act only in the target's namespaces."""
    return connect_to(str(config.kubeconfig) if config.kubeconfig else None, config.context,
                      config.target.namespaces)
