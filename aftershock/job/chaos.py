"""``faults.chaostoolkit`` in the Job: the experiment file travels in the run's ConfigMap
beside the config, and the run's Role gets the rules its chaosk8s actions need beyond the
Job's own (docs/chaostoolkit.md, "RBAC"), for that run only.

In the pod the fault runs ``chaos run`` with the pod's service account
(``CHAOSTOOLKIT_IN_POD=true``, TLS verified: :func:`aftershock.faults.chaostoolkit.chaos_env`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aftershock.config import Config
from aftershock.errors import UsageError
from aftershock.job.pod import CONFIG_MOUNT

#: The ConfigMap key of the experiment, plus ``.json`` or ``.yaml``: the fault reads the
#: file as JSON or YAML by its suffix.
EXPERIMENT_KEY = "chaostoolkit-experiment"

Rule = dict[str, list[str]]


def _rule(group: str, resource: str, *verbs: str) -> Rule:
    return {"apiGroups": [group], "resources": [resource], "verbs": list(verbs)}


#: chaosk8s actions that need more than the Job's Role grants, and the namespaced rules
#: they need (their reads are in the Role already). The table of docs/chaostoolkit.md.
#: Cluster-scoped needs (``node.actions.drain_nodes``, ``delete_nodes``) are not added:
#: a Role cannot grant them, and the Job's ClusterRole stays as it is.
EXTRA_RULES: dict[str, tuple[Rule, ...]] = {
    "deployment.actions.create_deployment": (_rule("apps", "deployments", "create"),),
    "deployment.actions.delete_deployment": (_rule("apps", "deployments", "delete"),),
    "service.actions.create_service_endpoint": (_rule("", "services", "create"),),
    "service.actions.delete_service": (_rule("", "services", "delete"),),
    "pod.actions.exec_in_pods": (_rule("", "pods/exec", "create", "get"),),
    **{f"networking.actions.{f}": (_rule("networking.k8s.io", "networkpolicies", "create"),)
       for f in ("create_network_policy", "deny_all_ingress", "deny_all_egress",
                 "allow_dns_access")},
    **{f"networking.actions.{f}": (_rule("networking.k8s.io", "networkpolicies", "delete"),)
       for f in ("remove_network_policy", "remove_deny_all_ingress",
                 "remove_deny_all_egress", "remove_allow_dns_access")},
    "networking.actions.create_ingress": (_rule("networking.k8s.io", "ingresses", "create"),),
    "networking.actions.delete_ingress": (_rule("networking.k8s.io", "ingresses", "delete"),),
    "networking.actions.update_ingress": (_rule("networking.k8s.io", "ingresses", "patch"),),
}


@dataclass(frozen=True)
class Shipment:
    """What ``job run`` adds for ``faults.chaostoolkit``: ConfigMap entries and Role rules."""

    files: tuple[tuple[str, str], ...] = ()
    rules: tuple[Rule, ...] = ()
    actions: tuple[str, ...] = ()  # the chaosk8s actions the rules are for


def extra_rules(activities: Sequence[Mapping[str, Any]]) -> tuple[tuple[Rule, ...],
                                                                 tuple[str, ...]]:
    """The rules beyond the Job's Role that ``activities`` need, once each, and the
    chaosk8s actions that need them."""
    rules: list[Rule] = []
    actions: list[str] = []
    for activity in activities:
        provider = activity.get("provider") or {}
        module = str(provider.get("module", ""))
        if provider.get("type") != "python" or not module.startswith("chaosk8s."):
            continue
        action = f"{module.removeprefix('chaosk8s.')}.{provider.get('func', '')}"
        for rule in EXTRA_RULES.get(action, ()):
            if action not in actions:
                actions.append(action)
            if rule not in rules:
                rules.append(rule)
    return tuple(rules), tuple(actions)


def ship(config: Config, raw: Mapping[str, Any]) -> tuple[dict[str, Any], Shipment]:
    """The config to ship with ``faults.chaostoolkit.experiment`` pointing into the pod's
    config mount, and the experiment file and extra rules to go with it. Without the
    setting, the config as it is and nothing more."""
    path = config.faults.chaostoolkit.experiment
    if path is None:
        return dict(raw), Shipment()
    from aftershock.faults.chaostoolkit import ChaosExperiment

    experiment = ChaosExperiment.load(Path(path))  # a broken file fails here, not in the pod
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:  # pragma: no cover - load() read it a moment ago
        raise UsageError(f"faults.chaostoolkit.experiment {path}: {e.strerror}",
                         "point it at your Chaos Toolkit experiment") from None
    key = EXPERIMENT_KEY + (".json" if Path(path).suffix == ".json" else ".yaml")
    data = copy.deepcopy(dict(raw))
    faults = data.setdefault("faults", {})
    faults.setdefault("chaostoolkit", {})["experiment"] = f"{CONFIG_MOUNT}/{key}"
    rules, actions = extra_rules([*experiment.method, *experiment.rollbacks])
    return data, Shipment(((key, text),), rules, actions)


def add_rules(rules: list[Rule], extra: Sequence[Rule]) -> None:
    """Append each of ``extra`` that the Role does not hold as it is."""
    for rule in extra:
        if rule not in rules:
            rules.append(copy.deepcopy(rule))
