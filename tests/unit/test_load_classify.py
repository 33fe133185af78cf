"""Mapping what the load clients raise to error kinds."""

from __future__ import annotations

import errno
import socket

from loopback_server import unanswering_listener

from aftershock.checks.timeline import ErrorKind
from aftershock.load.classify import classify, format_statuses, parse_statuses


class HTTPConnectionClosed(Exception):  # geventhttpclient's name
    pass


class ConnectionError_(Exception):  # requests wraps urllib3's errors in messages
    pass


def test_statuses() -> None:
    assert classify(None, 200) is ErrorKind.NONE
    assert classify(None, 503) is ErrorKind.HTTP
    assert classify(Exception("404 Client Error"), 404) is ErrorKind.NONE  # not in 5xx
    assert classify(None, 429, frozenset({429})) is ErrorKind.HTTP
    assert classify(None, 503, frozenset({429})) is ErrorKind.NONE
    # a locustfile's response.failure("bad body") on a 200
    assert classify(Exception("bad body"), 200) is ErrorKind.OTHER


def test_transport_errors() -> None:
    assert classify(ConnectionRefusedError(errno.ECONNREFUSED, "refused"), 0) is ErrorKind.CONNECT
    assert classify(OSError(errno.EHOSTUNREACH, "no route"), 0) is ErrorKind.UNREACHABLE
    assert classify(OSError(errno.ENETUNREACH, "unreachable"), 0) is ErrorKind.UNREACHABLE
    assert classify(socket.gaierror(-2, "Name or service not known"), 0) is ErrorKind.CONNECT
    assert classify(ConnectionResetError(errno.ECONNRESET, "reset"), 0) is ErrorKind.RESET
    assert classify(BrokenPipeError(errno.EPIPE, "pipe"), 0) is ErrorKind.RESET
    assert classify(HTTPConnectionClosed("closed"), 0) is ErrorKind.RESET
    assert classify(TimeoutError("timed out"), 0) is ErrorKind.TIMEOUT
    assert classify(TimeoutError("timed out"), 0) is ErrorKind.TIMEOUT
    assert classify(ValueError("weird"), 0) is ErrorKind.OTHER
    assert classify(None, 0) is ErrorKind.OTHER


def test_wrapped_errors_follow_the_cause_chain_and_text() -> None:
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")
        except OSError as inner:
            raise RuntimeError("wrapper") from inner
    except RuntimeError as outer:
        assert classify(outer, 0) is ErrorKind.CONNECT
    assert classify(ConnectionError_("Max retries exceeded: [Errno 111] Connection refused"),
                    0) is ErrorKind.CONNECT
    assert classify(ConnectionError_("Max retries exceeded: [Errno 113] No route to host"),
                    0) is ErrorKind.UNREACHABLE
    assert classify(ConnectionError_("('Connection aborted.', RemoteDisconnected())"),
                    0) is ErrorKind.RESET


def test_status_ranges_round_trip() -> None:
    codes = frozenset({*range(500, 600), 429, 418})
    assert format_statuses(codes) == "418,429,500-599"
    assert parse_statuses("418,429,500-599") == codes


def _connect_socket() -> None:  # named like geventhttpclient's connect step
    raise TimeoutError("timed out")


class ConnectTimeout(Exception):  # requests' class for a connect timeout
    pass


def test_a_timeout_while_connecting_is_a_connect_timeout() -> None:
    try:
        _connect_socket()
    except TimeoutError as e:
        assert classify(e, 0) is ErrorKind.CONNECT_TIMEOUT
    assert classify(ConnectTimeout("Max retries exceeded (connect timeout=2)"),
                    0) is ErrorKind.CONNECT_TIMEOUT
    try:
        raise TimeoutError("timed out")  # raised outside any connect call
    except TimeoutError as e:
        assert classify(e, 0) is ErrorKind.TIMEOUT


def test_real_client_timeouts_are_told_apart() -> None:
    """geventhttpclient, the client locust's FastHttpUser uses, against real sockets: a
    listener whose accept queue is full gives a connect timeout, one that accepts and
    never answers a response timeout."""
    from geventhttpclient import HTTPClient

    kinds = []
    for full in (True, False):
        with unanswering_listener(accept_queue_full=full) as (host, port):
            client = HTTPClient(host, port, connection_timeout=0.3, network_timeout=0.3)
            try:
                client.get("/")
            except Exception as e:
                kinds.append(classify(e, 0))
            finally:
                client.close()
    assert kinds == [ErrorKind.CONNECT_TIMEOUT, ErrorKind.TIMEOUT]
