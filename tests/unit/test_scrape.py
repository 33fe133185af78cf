"""The metrics scraper's own logic: where the endpoint is, what a page says, what a scrape
records. Pods are httpx.MockTransport handlers; no cluster."""

from __future__ import annotations

import threading

import httpx
import pytest
from pydantic import ValidationError

from aftershock.checks.timeline import CounterScraped, PodObserved, Timeline
from aftershock.config.load import LoadConfig
from aftershock.config.metrics import MetricsConfig
from aftershock.kube.scrape import (
    MetricsScraper,
    ScrapeTarget,
    probe_paths,
    read_counter,
    scrape_target,
)

PAGE = """# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",path="/"} 120
http_requests_total{code="503",path="/"} 7
http_requests_total{code="500",path="/work"} 3
# TYPE other_total counter
other_total 99
"""
ANNOTATED = {"prometheus.io/scrape": "true", "prometheus.io/port": "9102",
             "prometheus.io/path": "/stats"}


def test_the_endpoint_comes_from_config_then_annotations() -> None:
    assert scrape_target(None, None) is None
    assert scrape_target(None, {"prometheus.io/port": "9102"}) is None  # scrape not "true"
    assert scrape_target(None, ANNOTATED) == ScrapeTarget(9102, "/stats")
    assert scrape_target(None, {**ANNOTATED, "prometheus.io/path": ""}) == ScrapeTarget(9102)
    assert scrape_target(None, {**ANNOTATED, "prometheus.io/port": "web"}) is None
    mine = MetricsConfig(port=8080, counter="reqs_total", interval_s=0.5)
    assert scrape_target(mine, ANNOTATED, {503}) == ScrapeTarget(8080, "/stats", "reqs_total",
                                                                 0.5, frozenset({503}))
    assert scrape_target(MetricsConfig(counter="x"), None) is None  # no port anywhere


def test_load_metrics_is_validated() -> None:
    c = LoadConfig.model_validate({"metrics": {"port": 9090, "path": "/m"}})
    assert c.metrics == MetricsConfig(port=9090, path="/m")
    assert LoadConfig().metrics is None
    for bad in ({"port": 0}, {"path": "metrics"}, {"interval_s": 0}, {"prot": 1}):
        with pytest.raises(ValidationError):
            MetricsConfig.model_validate(bad)


def test_the_counter_is_summed_and_its_failures_told_by_status() -> None:
    assert read_counter(PAGE, "http_requests_total", range(500, 600)) == (130.0, 10.0)
    assert read_counter(PAGE, "http_requests", {503}) == (130.0, 7.0)
    assert read_counter(PAGE, "other_total", {503}) == (99.0, None)  # no status label
    assert read_counter(PAGE, "missing_total", {503}) == (None, None)


def scraper(handler: httpx.MockTransport, interval_s: float = 1.0) -> tuple[MetricsScraper,
                                                                            Timeline]:
    tl = Timeline()
    times = iter(float(t) for t in range(1000))
    s = MetricsScraper(tl, ScrapeTarget(8080, interval_s=interval_s), transport=handler,
                       clock=lambda: next(times), allowed=lambda ip: ip.startswith("198.18."))
    return s, tl


def test_a_scrape_records_the_value_at_the_middle_of_its_round_trip() -> None:
    seen: list[str] = []

    def pod(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, text=PAGE)
    s, _ = scraper(httpx.MockTransport(pod))
    assert s.scrape("web-1", "198.18.1.5") == CounterScraped(0.5, "web-1", "http_requests_total",
                                                             130.0, 10.0)
    assert seen == ["http://198.18.1.5:8080/metrics"]


@pytest.mark.parametrize(("answer", "error"), [
    (httpx.Response(404), "HTTP 404"),
    (httpx.Response(200, text="other_total 1\n"), "no counter http_requests_total"),
    (httpx.Response(200, text="this is { not the format\n"), "unparsable"),
])
def test_a_scrape_that_says_nothing_is_recorded_with_why(answer: httpx.Response,
                                                         error: str) -> None:
    s, _ = scraper(httpx.MockTransport(lambda request: answer))
    got = s.scrape("web-1", "198.18.1.5")
    assert got.value is None and got.error.startswith(error), got


def test_a_refused_scrape_is_recorded_as_failed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)
    s, _ = scraper(httpx.MockTransport(refuse))
    got = s.scrape("web-1", "198.18.1.5")
    assert got.value is None and got.error == "ConnectError: refused"


def test_each_pod_is_followed_from_its_ip_until_gone() -> None:
    calls: dict[str, int] = {}
    third = threading.Event()

    def pod(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        calls[host] = calls.get(host, 0) + 1
        if calls[host] >= 3:
            third.set()
        return httpx.Response(200, text=PAGE)
    s, tl = scraper(httpx.MockTransport(pod), interval_s=0.01)
    s.seen(PodObserved(0, "web-1", "Pending", False, False, 0))  # no IP yet
    s.seen(PodObserved(0, "lo", "Running", True, False, 0, ip="127.0.0.1"))  # not a pod address
    s.seen(PodObserved(1, "web-1", "Running", True, False, 0, ip="198.18.1.5"))
    s.seen(PodObserved(2, "web-1", "Running", True, False, 0, ip="198.18.1.5"))  # one thread
    assert third.wait(5)
    s.seen(PodObserved(3, "web-1", "Running", False, True, 0, gone=True))
    s.followers.threads[0].join(5)
    assert not s.followers.threads[0].is_alive() and len(s.followers.threads) == 1
    n = len(tl.observations)
    assert n >= 3 and all(o.pod == "web-1" for o in tl.of_type(CounterScraped))
    s.stop()
    assert len(tl.observations) == n  # nothing after the pod was gone


PROBED = """# TYPE http_requests_total counter
http_requests_total{code="200",handler="/"} 120
http_requests_total{code="200",handler="/healthz"} 40
http_requests_total{code="503",handler="/readyz"} 9
http_requests_total{code="200",uri="/readyz?full=1"} 2
http_requests_total{code="500",path="/work"} 3
"""


def test_the_kubelets_probe_requests_are_left_out_by_their_path_label() -> None:
    probes = frozenset({"/healthz", "/readyz"})
    assert read_counter(PROBED, "http_requests_total", range(500, 600), probes) == (123.0, 3.0)
    # Without the probe paths every sample counts, as before.
    assert read_counter(PROBED, "http_requests_total", range(500, 600)) == (174.0, 12.0)


def test_probe_paths_come_from_the_containers_http_probes() -> None:
    from kubernetes.client import (
        V1Container,
        V1ExecAction,
        V1HTTPGetAction,
        V1Probe,
        V1TCPSocketAction,
    )
    app = V1Container(name="app",
                      readiness_probe=V1Probe(http_get=V1HTTPGetAction(path="/ready?x=1",
                                                                       port=8080)),
                      liveness_probe=V1Probe(http_get=V1HTTPGetAction(path="/healthz",
                                                                      port=8080)),
                      startup_probe=V1Probe(tcp_socket=V1TCPSocketAction(port=8080)))
    sidecar = V1Container(name="sidecar",
                          liveness_probe=V1Probe(_exec=V1ExecAction(command=["true"])))
    assert probe_paths([app, sidecar]) == {"/ready", "/healthz"}
    assert probe_paths(None) == frozenset()
    # A path the load requests too stays counted: it holds the load's own requests.
    assert probe_paths([app], ["/", "/healthz?deep=1"]) == {"/ready"}
    target = scrape_target(None, ANNOTATED, skip_paths=probe_paths([app]))
    assert target is not None and target.probe_paths == {"/ready", "/healthz"}
    assert target.describe() == ("metrics counter http_requests_total at :9102/stats every 1 s "
                                 "(not counting the kubelet's probes of /healthz, /ready)")
