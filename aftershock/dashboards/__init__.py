"""What a run gives dashboards: metrics (OpenMetrics, a Pushgateway) and Grafana annotations.

:mod:`.metrics` and :mod:`.annotations` shape them from results.json's document (pure);
:mod:`.write` writes results/metrics.prom and results/annotations.json and pushes.
"""
