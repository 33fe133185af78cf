"""The recorded evidence: requests, Kubernetes observations and markers on one clock.

Every timestamp is wall-clock seconds since the epoch (``time.time()``), taken by
the process that saw the thing happen: the load process stamps requests, the
watcher stamps Kubernetes changes when they arrive (an Event that a list delivered, at
its own time: see ``EventObserved.happened``), the engine stamps markers.
One clock is what lets an outage be explained by the change that caused it.

Requests are stored column-wise because a run can hold millions of them and
verdicts must stay fast; everything else is a short list of small records.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

T = TypeVar("T")


class ErrorKind(StrEnum):
    """Why a request did not succeed. ``NONE`` means it succeeded."""

    NONE = ""
    HTTP = "http"  # a response arrived, with a status the profile counts as failure
    CONNECT = "connect"  # refused: a host answered that nothing listens there
    # No host took the connection attempt: no route, or no ARP answer for the address
    # (a vanished pod IP; a Service address kube-proxy did not translate).
    UNREACHABLE = "unreachable"
    RESET = "reset"  # the connection broke mid-request
    TIMEOUT = "timeout"  # connected (or unknown), but no response in time
    # Nothing answered the connection attempt (the SYN) in time: no listening socket saw
    # it. Told apart from TIMEOUT because the target cannot have caused it while it is
    # up; the network path did (a blackholed or stale NAT entry, a vanished pod IP).
    CONNECT_TIMEOUT = "connect_timeout"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the load generator saw it."""

    start: float
    latency_ms: float
    status: int  # 0 when no HTTP response arrived
    error: ErrorKind = ErrorKind.NONE
    new_connection: bool | None = None  # None when the client cannot tell
    name: str = ""
    pod: str = ""  # the pod that answered, from a response header (load.pod_header); "" unknown

    @property
    def ok(self) -> bool:
        return self.error is ErrorKind.NONE


# Every per-request column of Requests, for the operations that treat them alike.
_COLUMNS = ("starts", "latency_ms", "statuses", "errors", "new_connection", "names", "pods")


class Requests:
    """Requests in start order, column-wise. Append-only while recording."""

    __slots__ = ("_sorted", "errors", "latency_ms", "names", "new_connection", "pods", "starts",
                 "statuses")

    def __init__(self) -> None:
        self.starts = array("d")
        self.latency_ms = array("d")
        self.statuses = array("H")
        self.errors: list[ErrorKind] = []
        self.new_connection: list[bool | None] = []
        self.names: list[str] = []
        self.pods: list[str] = []
        self._sorted = True

    def append(self, r: Request) -> None:
        if self.starts and r.start < self.starts[-1]:
            self._sorted = False
        self.starts.append(r.start)
        self.latency_ms.append(r.latency_ms)
        self.statuses.append(r.status)
        self.errors.append(r.error)
        self.new_connection.append(r.new_connection)
        self.names.append(r.name)
        self.pods.append(r.pod)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> Request:
        return Request(self.starts[i], self.latency_ms[i], self.statuses[i], self.errors[i],
                       self.new_connection[i], self.names[i], self.pods[i])

    def sort(self) -> None:
        """Order by start time; several load processes interleave their records."""
        if self._sorted:
            return
        order = sorted(range(len(self.starts)), key=self.starts.__getitem__)
        for name in _COLUMNS:
            col = getattr(self, name)
            picked = (col[i] for i in order)
            setattr(self, name, array(col.typecode, picked) if isinstance(col, array)
                    else list(picked))
        self._sorted = True

    @classmethod
    def merged(cls, *parts: Requests) -> Requests:
        """Several load processes' requests as one, sorted by start."""
        out = cls()
        for p in parts:
            for name in _COLUMNS:
                getattr(out, name).extend(getattr(p, name))
        out._sorted = len(parts) < 2 and all(p._sorted for p in parts)
        out.sort()
        return out

    @classmethod
    def of(cls, requests: list[Request]) -> Requests:
        out = cls()
        for r in requests:
            out.append(r)
        out.sort()
        return out


@dataclass(frozen=True, slots=True)
class PodObserved:
    """A target pod as one watch event showed it."""

    at: float
    name: str
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    ready: bool
    deleting: bool  # metadata.deletionTimestamp is set
    restarts: int  # sum of container restartCounts
    node: str = ""
    gone: bool = False  # the watch said DELETED
    ip: str = ""  # status.podIP; "" unknown (or in timelines recorded before it was kept)
    # metadata.deletionGracePeriodSeconds once deleting, else the spec's grace period
    grace_s: float | None = None


@dataclass(frozen=True, slots=True)
class EndpointsObserved:
    """The ready and serving pods behind the target Service, from one EndpointSlice event."""

    at: float
    slice_name: str
    ready_pods: frozenset[str]  # pods whose endpoint has conditions.ready true
    serving_pods: frozenset[str] = frozenset()  # conditions.serving (terminating pods too)
    gone: bool = False
    port: int = 0  # the slice's first TCP port: where the pods serve; 0 unknown


class ServingStop(StrEnum):
    """How the suite's prober of a terminating pod ended (see :class:`ServingStopped`)."""

    REFUSED = "refused"  # a connect was refused: the pod answered that nothing listens
    UNREACHABLE = "unreachable"  # no route or no neighbour for the pod's address any more
    TIMEOUT = "timeout"  # connects went unanswered (several in a row, none succeeding)
    GONE = "gone"  # the pod was gone before any connect failed: stopped by then, at latest
    STILL_SERVING = "still_serving"  # the prober's bound or the recording's end came first
    ERROR = "error"  # a local failure (no socket, ...): says nothing about the pod

    @property
    def stopped(self) -> bool:
        """Whether ``at`` is a failed connect: the pod had stopped serving by then."""
        return self in (ServingStop.REFUSED, ServingStop.UNREACHABLE, ServingStop.TIMEOUT)


@dataclass(frozen=True, slots=True)
class ServingStopped:
    """When a terminating pod stopped accepting connections, measured directly.

    The load reaches pods through the Service, so once a pod leaves the endpoints no load
    request shows whether it still serves. From the moment the pod watch sees a target pod
    deleting, the recorder TCP-connects to its IP and serving port every few tens of ms.
    ``at`` is the start of the first failed connect (for ``how`` refused, unreachable or
    timeout) or when the prober ended (gone, still_serving, error); ``last_ok`` the start
    of the last connect that succeeded (None: none did). A timeout or unreachable with no
    success before it is recorded as such, but the termination check does not take it as
    a stop: the pod may never have been reachable from the suite.
    """

    at: float
    pod: str
    how: ServingStop
    last_ok: float | None = None
    ip: str = ""
    port: int = 0
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class WorkloadObserved:
    """The target Deployment's replica counts from one watch event."""

    at: float
    name: str
    desired: int
    ready: int
    updated: int
    available: int
    generation: int = 0
    observed_generation: int = 0
    total: int = -1  # status.replicas: every pod of every ReplicaSet; -1 when unknown

    @property
    def rolled_out(self) -> bool:
        """What `kubectl rollout status` waits for: only new, available pods remain."""
        return (self.observed_generation >= self.generation
                and self.updated == self.desired == self.available == self.ready
                and self.total in (-1, self.desired))


@dataclass(frozen=True, slots=True)
class ReplicaSetObserved:
    """One of the target Deployment's ReplicaSets (old or new) from one watch event.

    A rollout shows up as the new set growing while the old one shrinks; a separate
    type keeps these counts apart from the Deployment's own.
    """

    at: float
    name: str
    desired: int
    ready: int
    available: int
    revision: str = ""  # the deployment.kubernetes.io/revision annotation
    gone: bool = False


@dataclass(frozen=True, slots=True)
class NodeObserved:
    at: float
    name: str
    ready: bool
    unschedulable: bool


@dataclass(frozen=True, slots=True)
class EventObserved:
    """A Kubernetes Event (core/v1) about an object in the target namespace."""

    at: float
    kind: str  # involvedObject.kind
    name: str  # involvedObject.name
    reason: str
    message: str
    type: str = "Normal"
    # When the Event says it (last) happened: series.lastObservedTime, lastTimestamp,
    # eventTime or firstTimestamp, whichever is latest (``at`` is when the suite saw it).
    # None in timelines recorded before it was kept.
    happened: float | None = None


@dataclass(frozen=True, slots=True)
class ScalerObserved:
    """The target's HorizontalPodAutoscaler status from one watch event."""

    at: float
    name: str
    current_replicas: int
    desired_replicas: int
    min_replicas: int
    max_replicas: int
    able_to_scale: bool | None = None
    metric_available: bool | None = None  # condition ScalingActive
    message: str = ""


class EvictionOutcome(StrEnum):
    """What became of one eviction the suite asked for (policy/v1 Eviction)."""

    EVICTED = "evicted"  # the API accepted it: the pod is terminating
    REFUSED = "refused"  # HTTP 429: a PodDisruptionBudget (or API throttling) said not now
    GONE = "gone"  # HTTP 404: the pod was already gone
    ERROR = "error"  # any other answer (e.g. 500: more than one PDB selects the pod)
    DELETED = "deleted"  # the suite saw an evicted pod disappear from the API
    GAVE_UP = "gave_up"  # the deadline passed with the pod still not evicted / not deleted


@dataclass(frozen=True, slots=True)
class EvictionObserved:
    """One step of an eviction the suite made, stamped when the answer arrived.

    Recorded by the fault itself (there is no watch for evictions), so a drain's blocked
    pods and the PodDisruptionBudget that refused them are part of the evidence.
    """

    at: float
    pod: str
    namespace: str
    outcome: EvictionOutcome
    target: bool  # the pod is one of the target Deployment's
    node: str = ""
    budget: str = ""  # the PodDisruptionBudget named by a refusal, when known
    message: str = ""  # the API's message for refused / error


@dataclass(frozen=True, slots=True)
class BudgetObserved:
    """A PodDisruptionBudget in the target namespace as read when a fault started.

    ``min_available``/``max_unavailable`` are as written (an int or a percentage like
    "50%"); the status fields are the disruption controller's at that moment.
    """

    at: float
    name: str
    selects_target: bool  # its selector matches the target's pods
    selector: str = ""  # the selector in label-query syntax, for messages
    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    disruptions_allowed: int = 0
    current_healthy: int = 0
    desired_healthy: int = 0
    expected_pods: int = 0


@dataclass(frozen=True, slots=True)
class WatchGap:
    """A stretch in which one watched stream could not see the Kubernetes API.

    Recorded once per outage of one stream, however many reconnect attempts it took.
    ``at`` is its start: the stream's last successful contact with the API (an event, a
    list, a watch that ended normally), or its first failure when it had no contact yet,
    so the gap covers everything the stream may have missed. ``end`` is when the stream
    was listed again (the relist's changes are stamped then). A gap still open when the
    recording stopped ends at the stop, with ``open`` set.
    """

    at: float
    end: float
    stream: str  # "pods", "events", ...
    error: str = ""  # the first failure, e.g. "MaxRetryError: ... Connection refused"
    attempts: int = 0  # reconnect attempts that failed
    open: bool = False

    @property
    def duration_s(self) -> float:
        return self.end - self.at


@dataclass(frozen=True, slots=True)
class CounterScraped:
    """One scrape of a target pod's own Prometheus metrics endpoint: its request counter.

    The second source of which pod answered, for apps that send no pod header: the suite
    scrapes every target pod about once a second, and the counter's increase between two
    scrapes is the requests the pod answered in between (see
    :mod:`aftershock.checks.attribution`). ``at`` is halfway between sending the scrape and
    its answer: when the app read its counter, to within half the scrape's round trip.
    """

    at: float
    pod: str
    counter: str  # the counter's name, e.g. http_requests_total
    value: float | None  # the sum of its samples; None: the scrape failed (see error)
    #: The samples whose ``code``/``status`` label is a failure status (load.failure_statuses);
    #: None when the counter has no such label: failures cannot be told from it.
    failed: float | None = None
    error: str = ""  # why value is None: the scrape's error, or the counter was missing


class MarkerKind(StrEnum):
    LOAD_START = "load_start"
    LOAD_END = "load_end"
    FAULT_START = "fault_start"
    FAULT_END = "fault_end"
    ROLLBACK_START = "rollback_start"
    ROLLBACK_END = "rollback_end"
    #: A dependency the target needs was taken away, and given back (the dependency-outage
    #: fault); the detail says how. Timelines written before these kinds existed carry them
    #: as notes, which the codec reads as these kinds.
    DEPENDENCY_DOWN = "dependency_down"
    DEPENDENCY_RESTORED = "dependency_restored"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Marker:
    at: float
    kind: MarkerKind
    detail: str = ""


Observation = (PodObserved | EndpointsObserved | WorkloadObserved | ReplicaSetObserved
               | NodeObserved | EventObserved | ScalerObserved | EvictionObserved
               | BudgetObserved | WatchGap | ServingStopped | CounterScraped)


@dataclass
class Timeline:
    """Everything one experiment recorded. Verdicts are pure functions of this plus the SLO."""

    requests: Requests = field(default_factory=Requests)
    observations: list[Observation] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)

    def marker(self, kind: MarkerKind) -> Marker | None:
        """The first marker of a kind, or None when it was never set."""
        return next((m for m in self.markers if m.kind is kind), None)

    def of_type(self, kind: type[T]) -> list[T]:
        """Observations of one type, in arrival order."""
        return [o for o in sorted(self.observations, key=lambda o: o.at) if isinstance(o, kind)]
