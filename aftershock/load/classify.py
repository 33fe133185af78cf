"""Map what a load client raised to a :class:`aftershock.checks.timeline.ErrorKind`.

Runs inside the locust processes, so it imports nothing but the standard library and
the pure core. Exceptions are matched by class name along their cause chain, because
locust's two clients (geventhttpclient for FastHttpUser, requests for HttpUser) wrap
the socket error differently and neither is importable from here without gevent.
"""

from __future__ import annotations

import errno

from aftershock.checks.timeline import ErrorKind

_UNREACHABLE_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
                                 errno.ENETDOWN})
_CONNECT_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EADDRNOTAVAIL}) | _UNREACHABLE_ERRNOS
_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})

_TIMEOUT_NAMES = ("timeout", "timedout")
_CONNECT_TIMEOUT_NAMES = ("connecttimeout",)  # requests' and urllib3's own classes
# Functions a timeout raised while connecting passes through: the socket call itself and
# the clients' connect steps (geventhttpclient's pool, urllib3's connection).
_CONNECT_FRAMES = frozenset({"connect", "connect_ex", "create_connection", "_connect_socket",
                             "_new_conn"})
_CONNECT_NAMES = ("connectionrefused", "newconnectionerror", "gaierror", "nameresolution",
                  "maxretryerror")
_RESET_NAMES = ("connectionreset", "brokenpipe", "connectionaborted", "remotedisconnected",
                "httpconnectionclosed", "connectionclosed", "httpparseerror",
                "incompleteread", "protocolerror", "chunkedencodingerror")
_UNREACHABLE_TEXT = ("no route to host", "network is unreachable", "host is down",
                     "network is down")
_CONNECT_TEXT = ("connection refused", "no route to host", "network is unreachable",
                 "name or service not known", "failed to establish a new connection")
_RESET_TEXT = ("connection reset", "broken pipe", "connection aborted", "remote end closed",
               "connection closed", "connection was closed", "eof occurred")


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen or len(out) > 10:
            continue
        seen.add(id(e))
        out.append(e)
        todo += [e.__cause__, e.__context__]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        # urllib3 keeps the cause in ``reason``, geventhttpclient's RetriesExceeded in
        # ``original``.
        todo += [w for w in (getattr(e, "reason", None), getattr(e, "original", None))
                 if isinstance(w, BaseException)]
    return out


def _while_connecting(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in _CONNECT_FRAMES:
            return True
        tb = tb.tb_next
    return False


def _timeout_kind(chain: list[BaseException]) -> ErrorKind:
    """A timeout is a connect timeout when any error in the chain says so, by class or by
    having been raised inside a connect call."""
    for e in chain:
        name = type(e).__name__.lower()
        if any(n in name for n in _CONNECT_TIMEOUT_NAMES) or _while_connecting(e):
            return ErrorKind.CONNECT_TIMEOUT
    return ErrorKind.TIMEOUT


def _connect_kind(chain: list[BaseException]) -> ErrorKind:
    """A failed connect is ``UNREACHABLE`` when no host took the SYN (no route, no ARP
    answer), else ``CONNECT`` (refused: a host answered that nothing listens)."""
    if any(isinstance(e, OSError) and e.errno in _UNREACHABLE_ERRNOS for e in chain):
        return ErrorKind.UNREACHABLE
    text = " ".join(str(e) for e in chain).lower()
    return (ErrorKind.UNREACHABLE if any(t in text for t in _UNREACHABLE_TEXT)
            else ErrorKind.CONNECT)


def classify(exc: BaseException | None, status: int,
             failure_statuses: frozenset[int] | None = None) -> ErrorKind:
    """The error kind of one request.

    ``status`` is the HTTP status (0 when no response arrived). A response with a status
    in ``failure_statuses`` (default 5xx) is ``HTTP``; any other response is a success,
    unless the locustfile marked it failed itself (``response.failure(...)`` on a status
    below 400), which is ``OTHER``. Without a response the exception decides: refused is
    ``CONNECT``, no route or no ARP answer ``UNREACHABLE``, broken mid-request ``RESET``, a
    timeout ``CONNECT_TIMEOUT`` when it struck while connecting and ``TIMEOUT`` otherwise,
    anything else ``OTHER``.
    """
    failing = failure_statuses if failure_statuses is not None else _FIVE_XX
    if status:
        if status in failing:
            return ErrorKind.HTTP
        if exc is not None and status < 400:
            return ErrorKind.OTHER
        return ErrorKind.NONE
    if exc is None:
        return ErrorKind.OTHER  # no response and no exception: nothing to trust
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, OSError) and e.errno is not None:
            if e.errno in _CONNECT_ERRNOS:
                return _connect_kind(chain)
            if e.errno in _RESET_ERRNOS:
                return ErrorKind.RESET
            if e.errno == errno.ETIMEDOUT:
                return _timeout_kind(chain)
        if isinstance(e, TimeoutError):
            return _timeout_kind(chain)
        name = type(e).__name__.lower()
        if any(n in name for n in _TIMEOUT_NAMES):
            return _timeout_kind(chain)
        if any(n in name for n in _CONNECT_NAMES):
            return _connect_kind(chain)
        if any(n in name for n in _RESET_NAMES):
            return ErrorKind.RESET
    text = " ".join(str(e) for e in chain).lower()
    if "timed out" in text or "timeout" in text:
        return _timeout_kind(chain)
    if any(t in text for t in _CONNECT_TEXT):
        return _connect_kind(chain)
    if any(t in text for t in _RESET_TEXT):
        return ErrorKind.RESET
    return ErrorKind.OTHER


_FIVE_XX = frozenset(range(500, 600))


def parse_statuses(text: str) -> frozenset[int]:
    """``"500-599,429"`` (the recorder's environment encoding) to a set of codes."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(out)


def format_statuses(codes: frozenset[int]) -> str:
    """The inverse of :func:`parse_statuses`, as compact ranges."""
    out: list[str] = []
    run: list[int] = []
    for c in sorted(codes):
        if run and c != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(c)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)
