"""Sizing the generic HPA ramp from hand-built figures: the HPA's CPU target from its spec
and the pod template's requests, the CPU per request over the metrics' own window, the cap,
the reasons it cannot be sized, and when scale-down is waited for."""

from __future__ import annotations

import pytest

from aftershock.checks.hpa_load import (
    CpuTarget,
    PodCpu,
    RampPlan,
    answered_rate,
    cpu_cores,
    cpu_target,
    scale_down_wait,
    scale_down_window_s,
    size_ramp,
)
from aftershock.checks.timeline import ErrorKind, Request, Requests

T0 = 1_700_000_000.0


def hpa(*metrics: dict[str, object], behavior: dict[str, object] | None = None
        ) -> dict[str, object]:
    spec: dict[str, object] = {"metrics": list(metrics)}
    if behavior is not None:
        spec["behavior"] = behavior
    return {"spec": spec}


def cpu(target: dict[str, object], container: str | None = None) -> dict[str, object]:
    if container is None:
        return {"type": "Resource", "resource": {"name": "cpu", "target": target}}
    return {"type": "ContainerResource",
            "containerResource": {"name": "cpu", "container": container, "target": target}}


def steady(rate: float, seconds: float, since: float = T0, status: int = 200) -> Requests:
    return Requests.of([Request(since + i / rate, 1.0, status) for i in range(int(rate
                                                                                   * seconds))])


def test_cpu_quantities() -> None:
    assert cpu_cores("250m") == 0.25
    assert cpu_cores("1") == 1.0 and cpu_cores(2) == 2.0 and cpu_cores("0.5") == 0.5
    assert cpu_cores("1500000n") == pytest.approx(0.0015)
    assert cpu_cores("20u") == pytest.approx(0.00002)


def test_utilization_target_is_a_share_of_every_containers_request() -> None:
    t = cpu_target(hpa(cpu({"type": "Utilization", "averageUtilization": 60})),
                   {"app": "40m", "sidecar": "10m"})
    assert t.cores_per_pod == pytest.approx(0.03)
    assert t.described == "60 % of 50m requested = 30m per pod"


def test_a_container_resource_target_counts_its_container_only() -> None:
    t = cpu_target(hpa(cpu({"type": "Utilization", "averageUtilization": 50}, "app")),
                   {"app": "100m", "sidecar": None})
    assert t.cores_per_pod == pytest.approx(0.05)


def test_an_average_value_target_is_taken_as_it_is() -> None:
    t = cpu_target(hpa(cpu({"type": "AverageValue", "averageValue": "120m"})), {"app": None})
    assert t.cores_per_pod == pytest.approx(0.12)
    assert t.described == "averageValue 120m per pod"


def test_no_metrics_listed_is_autoscaling_v2s_default_80_percent() -> None:
    t = cpu_target({"spec": {}}, {"app": "100m"})
    assert t.cores_per_pod == pytest.approx(0.08)


def test_a_container_without_a_cpu_request_leaves_no_target() -> None:
    t = cpu_target(hpa(cpu({"type": "Utilization", "averageUtilization": 60})),
                   {"app": "40m", "sidecar": None})
    assert t.cores_per_pod is None
    assert "requests no CPU" in t.described and "resources.requests.cpu" in t.described


def test_an_hpa_on_memory_only_has_no_cpu_target() -> None:
    memory = {"type": "Resource", "resource": {
        "name": "memory", "target": {"type": "Utilization", "averageUtilization": 70}}}
    t = cpu_target(hpa(memory), {"app": "100m"})
    assert t.cores_per_pod is None
    assert t.described.startswith("it scales on memory, not on CPU")
    assert "hpa.work_path" in t.described


def test_answered_requests_leave_out_those_without_an_http_answer() -> None:
    reqs = Requests.of([Request(T0 + i, 1.0, 200 if i % 2 else 0,
                                ErrorKind.NONE if i % 2 else ErrorKind.CONNECT)
                        for i in range(10)])
    assert answered_rate(reqs, T0, T0 + 10) == (5, 0.5)


TARGET = CpuTarget(0.03, "60 % of 50m requested = 30m per pod")


def test_the_ramp_adds_what_the_expected_replicas_need_beyond_the_steady_rate() -> None:
    # 50 req/s on 3 pods use 15 m in all: 0.3 ms per request. 4 x 30 m = 120 m: 400 req/s.
    pods = [PodCpu(f"p{i}", 0.005, T0 + 30, 15.0) for i in range(3)]
    plan = size_ramp(TARGET, pods, steady(50, 30), (T0, T0 + 30), 4, 1000)
    assert isinstance(plan, RampPlan)
    assert plan.cpu_per_request_s == pytest.approx(0.0003)
    assert plan.needed_rate == pytest.approx(400)
    assert plan.steady_rate == pytest.approx(50, rel=0.01)
    assert plan.rate == 350 and not plan.capped
    assert plan.describe() == (
        "the ramp adds up to 350 req/s of the steady traffic: the steady phase measured 0.30 "
        "ms of CPU per request (3 pods, 50.0 answered req/s, metrics.k8s.io); the HPA's "
        "target is 60 % of 50m requested = 30m per pod, so 4 replicas need ~400 req/s in "
        "all (hpa.max_rate 1000 req/s)")


def test_the_rate_is_measured_over_the_metrics_own_window() -> None:
    # The window began 10 s before the load: CPU and requests are both averaged over it.
    pods = [PodCpu("p", 0.01, T0 + 10, 20.0)]
    plan = size_ramp(TARGET, pods, steady(100, 10), (T0, T0 + 10), 2, 10_000)
    assert isinstance(plan, RampPlan)
    assert plan.steady_rate == pytest.approx(50, rel=0.02)
    assert plan.cpu_per_request_s == pytest.approx(0.0002, rel=0.02)


def test_a_window_before_the_load_falls_back_to_the_steady_average() -> None:
    pods = [PodCpu("p", 0.001, T0 - 5, 15.0)]
    plan = size_ramp(TARGET, pods, steady(20, 10), (T0, T0 + 10), 2, 10_000)
    assert isinstance(plan, RampPlan)
    assert plan.steady_rate == pytest.approx(20, rel=0.02)


def test_the_ramp_adds_at_least_one_more_steady_rate_and_at_most_max_rate() -> None:
    busy = [PodCpu("p", 0.5, T0 + 30, 15.0)]  # already far above the target
    plan = size_ramp(TARGET, busy, steady(50, 30), (T0, T0 + 30), 4, 1000)
    assert isinstance(plan, RampPlan) and plan.rate == 50  # one steady rate more
    idle = [PodCpu("p", 0.0001, T0 + 30, 15.0)]
    plan = size_ramp(TARGET, idle, steady(50, 30), (T0, T0 + 30), 4, 300)
    assert isinstance(plan, RampPlan) and plan.rate == 300 and plan.capped
    assert "capped by hpa.max_rate (300 req/s)" in plan.describe()


def test_what_cannot_be_sized_says_why() -> None:
    pods = [PodCpu("p", 0.005, T0 + 30, 15.0)]
    no_cpu = size_ramp(CpuTarget(None, "it scales on memory, not on CPU"), pods,
                       steady(50, 30), (T0, T0 + 30), 4, 300)
    assert no_cpu == "the HPA cannot be driven by CPU: it scales on memory, not on CPU"
    no_metric = size_ramp(TARGET, [], steady(50, 30), (T0, T0 + 30), 4, 300)
    assert isinstance(no_metric, str) and no_metric.startswith("a missing metric: ")
    zero = size_ramp(TARGET, [PodCpu("p", 0.0, T0 + 30, 15.0)], steady(50, 30),
                     (T0, T0 + 30), 4, 300)
    assert isinstance(zero, str) and zero.startswith("a missing metric: ")
    unanswered = size_ramp(TARGET, pods, steady(50, 30, status=0), (T0, T0 + 30), 4, 300)
    assert isinstance(unanswered, str) and unanswered.startswith(
        "no requests: the steady phase had no answered request")


def test_scale_down_is_waited_for_when_the_window_fits() -> None:
    assert scale_down_window_s(hpa()) == 300
    assert scale_down_window_s(hpa(behavior={"scaleDown": {
        "stabilizationWindowSeconds": 15}})) == 15
    assert scale_down_window_s(hpa(behavior={"scaleDown": {
        "stabilizationWindowSeconds": 0}})) == 0
    assert scale_down_wait(15, 300).wait_s == 105 and scale_down_wait(15, 300).skipped == ""
    assert scale_down_wait(300, 300).wait_s == 390
    long = scale_down_wait(600, 300, "HPA web")
    assert long.wait_s == 0 and long.skipped.startswith(
        "scale-down not judged: HPA web's scale-down stabilization window is 600 s, longer "
        "than hpa.scale_down_max_wait_s (300 s)")
    off = scale_down_wait(15, 0)
    assert off.wait_s == 0 and "hpa.scale_down_max_wait_s is 0" in off.skipped


def test_metrics_server_windows_are_go_durations() -> None:
    from aftershock.kube.workload import _seconds
    assert _seconds("15.021s") == pytest.approx(15.021)
    assert _seconds("1m0.5s") == pytest.approx(60.5)
    assert _seconds("30s") == 30 and _seconds("") == 0 and _seconds("junk") == 0
