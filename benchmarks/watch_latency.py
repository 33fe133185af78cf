"""Watch latency: from a Kubernetes change to the suite's timeline stamp, against pollers.

Needs the testbed (make testbed-up). In a scratch namespace it creates a Deployment with
no replicas, then changes its spec N times. Each change is timed from just before the
PATCH is sent until:
  - the suite's Recorder (a watch) stamps the new generation on the timeline;
  - a poller that GETs the Deployment every 1 s sees it (OpenShift's disruption monitor
    samples at 1 s, Krkn at 2 s);
  - a poller at 100 ms sees it.
All three run at once against the same changes, so the ratios are fair within the run.

    .venv/bin/python benchmarks/watch_latency.py [--changes 30]
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import threading
import time
from pathlib import Path

from kubernetes import client, config

from aftershock.checks.timeline import Timeline, WorkloadObserved
from aftershock.kube.cluster import Cluster
from aftershock.kube.observe import workload
from aftershock.kube.watch import Recorder, Stream

KUBECONFIG = Path(__file__).resolve().parents[1] / ".testbed" / "kubeconfig"


def poller(apps: client.AppsV1Api, ns: str, period_s: float, seen: dict[int, float],
           stop: threading.Event) -> None:
    # Phase-shifted at random so the poller is not accidentally in step with the changes.
    stop.wait(random.uniform(0, period_s))
    while not stop.is_set():
        gen = apps.read_namespaced_deployment("bench", ns).metadata.generation
        seen.setdefault(gen, time.time())
        stop.wait(period_s)


def stats(name: str, lat_ms: list[float]) -> str:
    lat_ms.sort()
    p95 = lat_ms[max(0, round(0.95 * len(lat_ms)) - 1)]
    return (f"{name:<16} n={len(lat_ms):>3}  median {statistics.median(lat_ms):7.1f} ms  "
            f"p95 {p95:7.1f} ms  max {lat_ms[-1]:7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=30)
    ap.add_argument("--kubeconfig", default=str(KUBECONFIG))
    args = ap.parse_args()

    api_client = config.new_client_from_config(config_file=args.kubeconfig)
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    ns = f"bench-watch-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": ns}})
    try:
        labels = {"app": "bench"}
        apps.create_namespaced_deployment(ns, {
            "metadata": {"name": "bench"},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "c", "image": "aftershock.local/sampleapp:0.1.0"}]}}}})
        cluster = Cluster(api_client, frozenset({ns}))
        timeline = Timeline()
        stream = Stream("deployment", cluster.apps.list_namespaced_deployment,
                        {"namespace": ns},
                        lambda at, raw, gone: None if gone else workload(at, raw))
        polled_1s: dict[int, float] = {}
        polled_100ms: dict[int, float] = {}
        stop = threading.Event()
        threads = [threading.Thread(target=poller, args=(apps, ns, p, seen, stop), daemon=True)
                   for p, seen in ((1.0, polled_1s), (0.1, polled_100ms))]
        sent: dict[int, float] = {}
        with Recorder(timeline, [stream]):
            for t in threads:
                t.start()
            for i in range(args.changes):
                t0 = time.time()
                dep = apps.patch_namespaced_deployment(
                    "bench", ns, {"spec": {"minReadySeconds": i + 1}})
                sent[dep.metadata.generation] = t0
                time.sleep(random.uniform(1.2, 1.8))  # let the 1 s poller see each change
            time.sleep(1.5)
            stop.set()
        watched: dict[int, float] = {}
        for obs in timeline.of_type(WorkloadObserved):
            watched.setdefault(obs.generation, obs.at)

        def latencies(seen: dict[int, float]) -> list[float]:
            return [(seen[g] - t0) * 1000 for g, t0 in sent.items() if g in seen]

        print(f"watch latency over {len(sent)} Deployment changes "
              f"(from before the PATCH to the stamp):")
        for name, seen in (("watch (suite)", watched), ("poller 100 ms", polled_100ms),
                           ("poller 1 s", polled_1s)):
            print(stats(name, latencies(seen)))
        missed = [g for g in sent if g not in polled_1s]
        print(f"changes the 1 s poller never saw as such: {len(missed)}")
    finally:
        core.delete_namespace(ns)
        api_client.close()


if __name__ == "__main__":
    main()
