"""The commented example configuration that ``aftershock config example`` prints."""

from __future__ import annotations


def example_yaml() -> str:
    """A commented example configuration (``aftershock config example``)."""
    return _EXAMPLE


_EXAMPLE = """\
# aftershock configuration. Only target.* is required; every other value is the default.
target:
  namespace: shop            # required
  deployment: web            # required
  service: web               # required
  url: null                  # null: the Service's ClusterIP
  paths: ["/"]
  extra_namespaces: []
slo:
  before: {max_error_rate: 0, max_outage_ms: 0, p95_ms: null, p99_ms: null, min_requests: 50}
  during: {max_error_rate: 0, max_outage_ms: 0, p95_ms: null, p99_ms: null, min_requests: 50}
  after:  {max_error_rate: 0, max_outage_ms: 0, p95_ms: null, p99_ms: null, min_requests: 50}
  max_recovery_s: null
  max_recorder_gap_ms: 1000
  learn: null                # e.g. {runs: 20, min_runs: 5, quantile: 0.99, margin: 1.2,
                             #       floor_ms: 50}: limits learned from the run history
load:
  rate: 200                  # req/s, paced
  users: null                # null: ceil(rate / 10)
  locustfile: null           # null: loadtests/steady.py
  steady_seconds: 10
  after_seconds: 10
  timeout_s: 2
  failure_statuses: ["5xx"]
  workers: 1
  worker_pods: 0             # locust worker pods (master/worker mode), deleted afterwards
  worker_image: null         # null: the Job's image; required from a workstation
  master_host: null          # null: POD_IP in the Job; required from a workstation
  master_port: 5557
  pod_header: X-Pod-Name     # null: the answering pod is not recorded
  metrics: null              # or {port, path, counter}: each pod's request counter; null:
                             # the pods' prometheus.io/scrape annotations, if any
  new_connections: false     # true: Connection: close on every request
faults:
  pod_kill: {count: null, percent: null, grace: default, selection: random}
  rollout: {mode: restart, image: null, container: null, env: {}}
  drain:
    node: null               # null: the node running the most target pods
    pods: namespaces         # or target: only the target's pods are evicted
    timeout_s: 120           # 429s are retried until then; then "blocked"
    backoff_initial_s: 1
    backoff_max_s: 5
    min_ready_without_pdb: 1
  pdb: {hold_s: 3}
  recovery_timeout_s: 180
results_dir: results
kubeconfig: null
context: null
posture: {waivers: [], fail_on: high}
hpa:
  work_path: null            # null: ramp the steady traffic, sized from its CPU per request
  rate: 30                   # with work_path: its req/s at the top of the ramp
  max_rate: 300              # without work_path: the most req/s the ramp adds
  ramp_steps: 3
  step_seconds: 15
  expected_replicas: null    # null: one more than at the ramp's start
  scale_up_deadline_s: 180
  metric_grace_s: 60
  scale_down_max_wait_s: 300 # judge scale-down when the HPA's window is at most this
  flap_window_s: 60
  max_changes_in_window: 3
probes:
  new_connections: true      # the probe experiments' load opens a connection per request
  dependency: null           # a Deployment the target's readiness follows, e.g. dep
  dependency_outage_s: 20
  dependency_recovery_s: 60
  max_restarts: 0
  max_not_ready_requests: null
  min_termination_margin_s: null  # null: 3 x this run's slowest endpoint removal, >= 1 s
  lag_s: 1
abort:                       # stop conditions, watched while the fault runs
  max_error_rate: null       # e.g. 0.5: abort when half the window's requests failed
  max_outage_ms: null        # e.g. 10000: abort on an outage longer than 10 s
  window_s: 5
  min_requests: 20
history:
  enabled: true              # every run appends its results to the run history
  path: null                 # null: aftershock-history.sqlite next to results_dir
  url: null                  # e.g. postgresql://user:password@host/db instead of the file
  profile: default           # your label of the cluster; runs compare within a profile
  target: null               # null: namespace/deployment; one name for every release
"""
