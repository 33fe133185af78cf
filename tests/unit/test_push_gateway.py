"""`aftershock run --push-gateway` against a real Prometheus Pushgateway, built from its Go
module by `make pushgateway` (pushgateway.mk), started on a loopback port for this test and
read back through its HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pushgateway_server import free_port, pushed, running_pushgateway

from aftershock import cli
from aftershock.dashboards.write import PUSH_JOB, push

DOC = {"experiments": [
    {"name": "pod-kill", "fault": "pod_kill", "verdict": "fail", "recovery_s": 4.25,
     "outages": [{"start": 1.0, "end": 1.3, "duration_ms": 300.0}],
     "phases": {"during": {"error_rate": 0.02, "p99_ms": 120.0}},
     "load": {"requests": 2000}}]}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    with running_pushgateway(tmp_path) as url:
        yield url


def test_the_pushed_series_read_back_from_the_gateway(gateway: str) -> None:
    push(gateway, DOC, "shop", "web")
    got = pushed(gateway)
    [requests] = got["aftershock_requests"]
    assert requests["labels"] == {"experiment": "pod-kill", "namespace": "shop",
                                  "deployment": "web", "fault": "pod_kill", "job": PUSH_JOB,
                                  "target": "shop/web", "instance": ""}
    assert float(requests["value"]) == 2000.0
    assert float(got["aftershock_longest_outage_seconds"][0]["value"]) == pytest.approx(0.3)
    assert float(got["aftershock_recovery_seconds"][0]["value"]) == 4.25
    assert float(got["aftershock_latency_p99_seconds"][0]["value"]) == pytest.approx(0.12)
    states = {m["labels"]["aftershock_verdict"]: float(m["value"])
              for m in got["aftershock_verdict"]}
    assert states == {"pass": 0.0, "fail": 1.0, "inconclusive": 0.0}


def test_a_gateway_that_is_not_there_is_said_with_where_the_metrics_are(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aftershock.config import Config, TargetConfig
    from aftershock.results import Results
    config = Config(target=TargetConfig(namespace="shop", deployment="web", service="web"))
    cli._push(f"http://127.0.0.1:{free_port()}", Results(tmp_path), config)
    err = capsys.readouterr().err
    assert "could not push the metrics to http://127.0.0.1:" in err
    assert "results/metrics.prom has them" in err
