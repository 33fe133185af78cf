"""Configuration: YAML < env < CLI, defaults, and errors that name the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from aftershock.config import (
    Config,
    RolloutMode,
    example_yaml,
    load_config,
)
from aftershock.errors import ConfigError

TARGET = "target:\n  namespace: shop\n  deployment: web\n  service: web\n"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "aftershock.yaml"
    p.write_text(text)
    return p


def test_minimal_file_gets_documented_defaults(tmp_path: Path) -> None:
    c = load_config(write(tmp_path, TARGET), environ={})
    assert c.target.namespace == "shop" and c.target.paths == ["/"]
    assert c.target.url is None and c.target.namespaces == ["shop"]
    assert c.slo.during.max_error_rate == 0 and c.slo.during.max_outage_ms == 0
    assert c.slo.during.p99_ms is None and c.slo.during.min_requests == 50
    assert c.load.rate == 200 and c.load.effective_users == 20 and c.load.workers == 1
    assert c.load.failure_status_set() == frozenset(range(500, 600))
    assert c.faults.pod_kill.grace_seconds is None
    assert c.faults.pod_kill.how_many(5) == 1
    assert c.faults.rollout.mode is RolloutMode.RESTART
    assert c.results_dir == Path("results")
    assert c.posture.waivers == []


def test_every_field_has_a_description() -> None:
    def walk(model: type, path: str) -> list[str]:
        missing = []
        for name, f in model.model_fields.items():  # type: ignore[attr-defined]
            if not f.description and not model.__module__.startswith("aftershock.checks.posture"):
                missing.append(f"{path}{name}")
            ann = f.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                missing += walk(ann, f"{path}{name}.")
        return missing
    assert walk(Config, "") == []


def test_example_yaml_is_valid_and_matches_defaults(tmp_path: Path) -> None:
    c = load_config(write(tmp_path, example_yaml()), environ={})
    d = load_config(write(tmp_path, TARGET), environ={})
    assert c.model_dump() == d.model_dump()


def test_env_overrides_file_and_cli_overrides_env(tmp_path: Path) -> None:
    f = write(tmp_path, TARGET + "slo:\n  during:\n    max_outage_ms: 100\n")
    env = {"AFTERSHOCK_SLO__DURING__MAX_OUTAGE_MS": "250", "AFTERSHOCK_TARGET__NAMESPACE": "env",
           "AFTERSHOCK_LOAD__FAILURE_STATUSES": "[5xx, 429]", "AFTERSHOCK_RESULTS_DIR": "/tmp/r",
           "AFTERSHOCK_LOCUST_RECORDS": "/ignored", "AFTERSHOCK_CONFIG": "/ignored.yaml",
           "AFTERSHOCK_FAULTS__POD_KILL__GRACE": "0", "AFTERSHOCK_TARGET__DEPLOYMENT": "2048"}
    c = load_config(f, environ=env)
    assert c.slo.during.max_outage_ms == 250
    assert c.target.namespace == "env" and c.target.deployment == "2048"
    assert 429 in c.load.failure_status_set()
    assert c.results_dir == Path("/tmp/r")
    assert c.faults.pod_kill.grace_seconds == 0
    c = load_config(f, environ=env, overrides={"target": {"namespace": "cli"}},
                    set_options=["slo.during.max_outage_ms=7", "target.paths=[/a, /b]"])
    assert c.target.namespace == "cli"
    assert c.slo.during.max_outage_ms == 7
    assert c.target.paths == ["/a", "/b"]


def test_config_file_from_env_and_default_location(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    f = write(tmp_path, TARGET)
    assert load_config(environ={"AFTERSHOCK_CONFIG": str(f)}).target.namespace == "shop"
    monkeypatch.chdir(tmp_path)
    assert load_config(environ={}).target.service == "web"


def problems(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    return str(excinfo.value)


def test_missing_required_fields_name_path_and_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "target:\n  namespace: shop\n"), environ={})
    text = problems(e)
    assert "invalid configuration (2 problems)" in text
    assert "target.deployment: required field is missing" in text
    assert "AFTERSHOCK_TARGET__DEPLOYMENT, --deployment or --set target.deployment=" in text
    assert e.value.exit_code == 2
    assert [p.split(":")[0] for p in e.value.problems] == ["target.deployment", "target.service"]


def test_unknown_key_says_did_you_mean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, TARGET + "slo:\n  during:\n    max_outage: 5\n"),
                    environ={})
    text = problems(e)
    assert "slo.during.max_outage: unknown key (from config file" in text
    assert "did you mean 'slo.during.max_outage_ms'?" in text


def test_the_hpa_defaults_ramp_the_apps_own_traffic_and_judge_scale_down(
        tmp_path: Path) -> None:
    c = load_config(write(tmp_path, TARGET), environ={})
    assert c.hpa.work_path is None and c.hpa.max_rate == 300
    assert c.hpa.scale_down_max_wait_s == 300


def test_the_old_scale_down_wait_key_names_what_replaced_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, TARGET + "hpa:\n  scale_down_wait_s: 120\n"), environ={})
    text = problems(e)
    assert "hpa.scale_down_wait_s: no longer taken (from config file" in text
    assert ("fix: hpa.scale_down_wait_s was replaced by hpa.scale_down_max_wait_s (default "
            "300)") in text


def test_unknown_env_variable_is_an_error_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, TARGET), environ={"AFTERSHOCK_TRAGET__NAMESPACE": "x"})
    text = problems(e)
    assert "traget: unknown key (from environment variable AFTERSHOCK_TRAGET__NAMESPACE)" in text
    assert "did you mean 'target'?" in text


def test_bad_values_name_path_value_and_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, TARGET + "slo:\n  during:\n    max_outage_ms: -5\n"
                                             "load:\n  failure_statuses: [5xx, 6xx]\n"),
                    environ={}, set_options=["faults.pod_kill.grace=soon"])
    text = problems(e)
    assert ("slo.during.max_outage_ms: Input should be greater than or equal to 0; got -5 "
            "(from config file") in text
    assert "load.failure_statuses: not a status or status class: ['6xx']" in text
    assert "faults.pod_kill.grace: grace must be \"default\"" in text
    assert "got 'soon' (from --set faults.pod_kill.grace=soon)" in text


def test_cross_field_rules(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mode image needs faults\.rollout\.image"):
        load_config(write(tmp_path, TARGET + "faults:\n  rollout:\n    mode: image\n"),
                    environ={})
    with pytest.raises(ConfigError, match="count or percent, not both"):
        load_config(write(tmp_path, TARGET + "faults:\n  pod_kill: {count: 1, percent: 50}\n"),
                    environ={})
    with pytest.raises(ConfigError, match="paths must start with '/'"):
        load_config(write(tmp_path, TARGET), environ={}, set_options=["target.paths=[api]"])


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", environ={})
    with pytest.raises(ConfigError, match="not valid YAML at line 3"):
        load_config(write(tmp_path, "target:\n  namespace: [\n"), environ={})
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(write(tmp_path, "- a\n"), environ={})
    with pytest.raises(ConfigError, match="expected PATH=VALUE"):
        load_config(write(tmp_path, TARGET), environ={}, set_options=["slo.during"])


def test_pod_kill_counts_and_percent() -> None:
    from aftershock.config import PodKillConfig
    assert PodKillConfig(count=3).how_many(2) == 2
    assert PodKillConfig(percent=50).how_many(3) == 2
    assert PodKillConfig(percent=1).how_many(3) == 1


def test_locustfile_relative_to_config_file(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("")
    c = load_config(write(tmp_path, TARGET + "load:\n  locustfile: mine.py\n"), environ={})
    assert c.load.locustfile == tmp_path / "mine.py"


def test_raw_config_merges_the_same_sources_unvalidated(tmp_path: Path) -> None:
    from aftershock.config import raw_config
    f = write(tmp_path, TARGET + "slo:\n  during:\n    max_outage_ms: 100\n")
    raw = raw_config(f, environ={"AFTERSHOCK_SLO__DURING__MAX_OUTAGE_MS": "250"},
                     overrides={"target": {"namespace": "cli"}},
                     set_options=["slo.during.p99_ms=300"])
    assert raw == {"target": {"namespace": "cli", "deployment": "web", "service": "web"},
                   "slo": {"during": {"max_outage_ms": 250, "p99_ms": 300}}}


def test_slo_only_sources_name_where_a_bad_value_came_from(tmp_path: Path) -> None:
    from aftershock.config import Layer, load_slo
    env = {"AFTERSHOCK_SLO__AFTER__P95_MS": "40", "AFTERSHOCK_TARGET__NAMESPACE": "ignored"}
    slo = load_slo(Layer(), environ=env, set_options=["slo.during.max_outage_ms=250"])
    assert slo.during.max_outage_ms == 250 and slo.after.p95_ms == 40
    with pytest.raises(ConfigError) as e:
        load_slo(Layer(), environ={"AFTERSHOCK_SLO__DURING__MAX_OUTAGE_MS": "-1"})
    assert ("slo.during.max_outage_ms: Input should be greater than or equal to 0; got -1 "
            "(from environment variable AFTERSHOCK_SLO__DURING__MAX_OUTAGE_MS)") in str(e.value)
    with pytest.raises(ConfigError, match=r"target: unknown key \(from --set target.namespace"):
        load_slo(Layer(), environ={}, set_options=["target.namespace=x"])


def test_in_cluster_settings_come_from_the_pods_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from aftershock.config import SUITE_IMAGE_ENV, InCluster
    outside = InCluster.from_environ({})
    assert outside.pod_ip is None and outside.own_pod is None
    pod = InCluster.from_environ({"POD_IP": "10.1.2.3", "POD_NAME": "suite-x",
                                  "POD_NAMESPACE": "shop", SUITE_IMAGE_ENV: "reg/a:1"})
    assert pod.pod_ip == "10.1.2.3" and pod.own_pod == ("shop", "suite-x")
    # The Job's renderer sets SUITE_IMAGE_ENV; InCluster must read the same variable.
    assert pod.suite_image == "reg/a:1" and SUITE_IMAGE_ENV == "SUITE_IMAGE"
    monkeypatch.setenv("POD_IP", "10.9.9.9")
    monkeypatch.setenv("NODE_NAME", "node-1")
    assert InCluster().pod_ip == "10.9.9.9" and InCluster().node_name == "node-1"
