"""The restore ledger: what a run changed, written on the changed object itself.

A fault's rollback runs on success, failure, exception, Ctrl-C and SIGTERM, but not when the
suite is SIGKILLed, OOM-killed, or its Job pod is deleted with ``--grace-period=0``. So
before each change the suite writes an annotation on the object it changes (no local state:
it works in the Job as well as on a workstation), and removes it once the change is undone:

    node        aftershock.dev/cordon     before the drain's cordon
    Deployment  aftershock.dev/template   before the rollout's pod template change
    Deployment  aftershock.dev/scale      before the dependency outage's scale to 0
    pod         aftershock.dev/worker     on each load worker pod, with the label
                aftershock.dev/run=<run id>

Each value is one :class:`Entry` as JSON: the run id, who runs it (:class:`Owner`), the
original value and when the entry expires. A template entry also holds a fingerprint of the
template the run put in place, so that a template changed again after the run (a later deploy)
is reported instead of reverted. Every ``aftershock run`` / ``check`` / ``job run``
and ``aftershock restore`` look for entries left behind (:func:`decide`): one whose run is
still alive is reported and never touched; one whose run is gone is undone.

Alive is known this way (:func:`judge`), the first that applies:

- the entry is this process's own run: alive;
- the run is a Job's suite (``pod`` set): alive while that pod exists and its suite
  container has not terminated (a pod deleted with grace 0 is gone at once);
- the run is a process on this host: alive while that pid runs with the same start
  (boot id and start ticks, so a reused pid is not taken for it);
- a process on another host cannot be asked: presumed alive until the entry expires (the
  run's own load bound), gone after.

This module is pure: it decides from plain objects. The API calls are
:mod:`aftershock.kube.ledger`'s.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

Raw = Mapping[str, Any]

PREFIX = "aftershock.dev/"
#: The label on every load worker pod: the run that made it.
RUN_LABEL = PREFIX + "run"
#: The Job's suite container (aftershock.job.pod.SUITE): the run lives as long as it runs.
SUITE_CONTAINER = "suite"


class Change(StrEnum):
    """What a run changed; the value names its annotation (``aftershock.dev/<value>``)."""

    CORDON = "cordon"  # node spec.unschedulable; original: bool
    TEMPLATE = "template"  # Deployment spec.template; original: the template
    SCALE = "scale"  # Deployment spec.replicas; original: int
    WORKER = "worker"  # a load worker pod the run created; original: None (delete it)

    @property
    def key(self) -> str:
        return PREFIX + self.value

    @property
    def kind(self) -> str:
        """The kind of object this change is recorded on."""
        return {Change.CORDON: "Node", Change.WORKER: "Pod"}.get(self, "Deployment")


@dataclass(frozen=True)
class Owner:
    """Who made a change: enough to tell later whether it is still running."""

    run: str  # the run id
    host: str = ""
    pid: int = 0
    started: str = ""  # "<boot id>:<start ticks>" of the process; "" when unknown
    pod: str = ""  # "namespace/name" of the Job's pod; "" outside the cluster


@dataclass(frozen=True)
class Entry:
    """One change, as written in its annotation."""

    change: Change
    owner: Owner
    original: Any
    at: float  # wall time the entry was written
    expires: float  # wall time after which the run must have ended
    #: TEMPLATE: the :func:`fingerprint` of the template the run put in place; "" until then.
    changed_to: str = ""

    def encode(self) -> str:
        data = asdict(self)
        data["change"] = self.change.value
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @staticmethod
    def decode(change: Change, text: str) -> Entry | None:
        """The entry an annotation holds; None when it is not one (edited, truncated)."""
        try:
            data = json.loads(text)
            owner = Owner(**data["owner"])
            entry = Entry(change, owner, data.get("original"), float(data["at"]),
                          float(data["expires"]), str(data.get("changed_to", "")))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return entry if _valid(entry) else None


def _valid(entry: Entry) -> bool:
    o = entry.original
    if entry.change is Change.CORDON:
        return isinstance(o, bool)
    if entry.change is Change.SCALE:
        return isinstance(o, int) and not isinstance(o, bool) and o >= 0
    if entry.change is Change.TEMPLATE:
        return isinstance(o, dict) and isinstance(o.get("spec"), dict)
    return True


def fingerprint(template: Any) -> str:
    """A digest of a pod template as the API serialises it; nulls are dropped, because one
    client writes ``creationTimestamp: null`` where another leaves the key out."""
    def bare(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: bare(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [bare(v) for v in value]
        return value
    text = json.dumps(bare(template), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Ref:
    """The object an entry is written on."""

    kind: str  # Node, Deployment, Pod
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.lower()} {where}{self.name}"


@dataclass(frozen=True)
class Leftover:
    """An entry found on an object: a change some run made and has not undone.

    ``entry`` None: the annotation is there but unreadable; it is reported, not undone.
    ``raw`` is the annotation's text as found (an undo checks it is still the same).
    ``current`` is the :func:`fingerprint` of the Deployment's template as found (TEMPLATE)."""

    ref: Ref
    change: Change
    entry: Entry | None
    raw: str
    current: str = ""

    def __str__(self) -> str:
        if self.entry is None:
            return f"{self.ref}: unreadable {self.change.key} annotation {self.raw[:80]!r}"
        return f"{self.ref}: {describe(self.change, self.entry.original)} by run " \
               f"{self.entry.owner.run}"


def describe(change: Change, original: Any) -> str:
    """The change and what undoing it restores, for a person."""
    if change is Change.CORDON:
        return "cordoned (was schedulable)" if original is False else "cordoned"
    if change is Change.SCALE:
        return f"scaled (was {original} replicas)"
    if change is Change.TEMPLATE:
        return "pod template changed (the original is recorded)"
    return "load worker pod"


def found_on(kind: str, objects: Sequence[Raw]) -> list[Leftover]:
    """Every ledger entry on these objects (Nodes, Deployments or Pods as the API lists them)."""
    out: list[Leftover] = []
    changes = [c for c in Change if c.kind == kind]
    for obj in objects:
        meta = obj.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        ref = Ref(kind, str(meta.get("name", "")), str(meta.get("namespace", "") or ""))
        for change in changes:
            text = annotations.get(change.key)
            if text is None and change is Change.WORKER and RUN_LABEL in (
                    meta.get("labels") or {}):
                text = ""  # a worker pod whose annotation is gone: still the run's
            if text is None:
                continue
            current = fingerprint((obj.get("spec") or {}).get("template")) \
                if change is Change.TEMPLATE else ""
            out.append(Leftover(ref, change, Entry.decode(change, str(text)), str(text),
                                current))
    return out


@dataclass(frozen=True)
class Facts:
    """What :func:`judge` needs to know beyond the entry; gathered by the adapter."""

    me: Owner  # this process's run
    now: float  # wall time
    host: str  # this host's name
    #: The start ("<boot id>:<ticks>") of a pid on this host, None when no such process.
    process_start: Callable[[int], str | None]
    #: Owner pods read from the API: "ns/name" -> the pod, or None when it does not exist.
    #: A pod missing from the map could not be read (no permission): liveness by expiry.
    pods: Mapping[str, Raw | None]


def pod_alive(pod: Raw) -> tuple[bool, str]:
    """Is the suite in this Job pod still running (so it will still roll back)?"""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return False, f"its pod has ended ({phase})"
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == SUITE_CONTAINER and "terminated" in (status.get("state") or {}):
            return False, "its pod's suite container has terminated"
    return True, "its Job pod is running"


def judge(owner: Owner, expires: float, facts: Facts) -> tuple[bool, str]:
    """Whether the run that made a change is still alive, and how that is known;
    ``expires`` is the entry's lease, for a run that cannot be asked."""
    if owner.run == facts.me.run:
        return True, "it is this run"
    if owner.pod:
        if owner.pod in facts.pods:
            pod = facts.pods[owner.pod]
            if pod is None:
                return False, f"its Job pod {owner.pod} no longer exists"
            alive, why = pod_alive(pod)
            return alive, why.replace("its pod", f"its pod {owner.pod}")
    elif owner.host and owner.host == facts.host and owner.pid > 0:
        start = facts.process_start(owner.pid)
        if start is not None and (not owner.started or start == owner.started):
            return True, f"its process {owner.pid} on this host still runs"
        return False, f"its process {owner.pid} on this host has ended"
    where = f"pod {owner.pod}" if owner.pod else f"host {owner.host or '?'}"
    if facts.now < expires:
        return True, (f"presumed alive: it runs on {where}, which cannot be asked; its lease "
                      f"ends in {expires - facts.now:.0f} s")
    return False, f"it ran on {where}, which cannot be asked, and its lease expired " \
                  f"{facts.now - expires:.0f} s ago"


@dataclass(frozen=True)
class Decision:
    """What to do about one leftover: undo it, or leave it and say why."""

    leftover: Leftover
    undo: bool
    why: str

    def __str__(self) -> str:
        return f"{self.leftover} ({self.why})"


def decide(leftovers: Sequence[Leftover], facts: Facts, restore: bool = True
           ) -> list[Decision]:
    """For each leftover: undo it when its run is gone (and ``restore``), else leave it."""
    out: list[Decision] = []
    for left in leftovers:
        entry = left.entry
        if entry is None:
            out.append(Decision(left, False, "cannot be undone: not a ledger entry; "
                                             "undo it by hand and remove the annotation"))
            continue
        alive, why = judge(entry.owner, entry.expires, facts)
        if alive:
            out.append(Decision(left, False, f"left alone: its run is alive: {why}"))
        elif not restore:
            out.append(Decision(left, False, f"not restored (--no-restore): {why}"))
        elif changed_since(left):
            out.append(Decision(left, False, (
                f"left alone: the pod template changed again after run {entry.owner.run} "
                "set it (a later deploy?), and restoring the recorded original would revert "
                f"that; check the Deployment, then remove the {left.change.key} annotation")))
        else:
            out.append(Decision(left, True, why))
    return out


def changed_since(left: Leftover) -> bool:
    """Whether a template entry's Deployment no longer has the template the run set."""
    return (left.change is Change.TEMPLATE and left.entry is not None
            and bool(left.entry.changed_to) and left.current != left.entry.changed_to)
