"""results/report.html from recorded runs: offline, within its size budget, every outage drawn.

The demo_run fixture is two experiments of a real `make demo` run (node-drain: a cordoned
node, evictions, pods replaced; probes-dependency-outage: one 17.6 s outage window) with
their results.json entries and the posture findings; the timelines are gzipped.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from aftershock import cli, html_report
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import EventObserved
from aftershock.checks.verdict import evaluate
from aftershock.results import Results
from tests.unit.verdict_helpers import T0, experiment

FIXTURES = Path(__file__).parent / "fixtures"
DEMO_RUN = FIXTURES / "demo_run"
PLOTLY = FIXTURES.parents[2] / "aftershock" / "report_assets" / "plotly-basic.min.js"


def _demo_run(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    (out / "timelines").mkdir(parents=True)
    shutil.copy(DEMO_RUN / "results.json", out / "results.json")
    for gz in (DEMO_RUN / "timelines").glob("*.jsonl.gz"):
        with gzip.open(gz) as src, open(out / "timelines" / gz.name.removesuffix(".gz"),
                                        "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


class _Tags(HTMLParser):
    """Every tag and its attributes; script bodies are data to the parser, not tags."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, attrs))


def _figures(page: str) -> list[dict[str, Any]]:
    found = re.findall(r'<script type="application/json" id="figure-(\d+)">(.*?)</script>',
                       page, re.S)
    return [json.loads(body) for _, body in found]


def _outage_shapes(fig: dict[str, Any]) -> int:
    return sum(1 for s in fig["layout"]["shapes"] if s["name"] == "outage")


def test_the_report_of_a_recorded_run_is_offline_within_budget_and_draws_every_outage(
        tmp_path: Path) -> None:
    results = _demo_run(tmp_path)
    path, took = html_report.write_report(results)
    page = path.read_text("utf-8")
    assert path == results / "report.html" and took >= 0
    # Nothing to fetch: every src/href points inside the page, no <link>, no url() import,
    # and the page's own policy forbids any request.
    tags = _Tags()
    tags.feed(page)
    refs = [v for _, attrs in tags.seen for k, v in attrs
            if k in ("src", "href", "srcset", "action", "poster", "data")]
    assert refs and all(r and r.startswith("#") for r in refs), refs
    assert "link" not in {t for t, _ in tags.seen}
    assert "default-src 'none'" in page
    # Outside the inlined library's own strings (SVG namespaces, its licence header), the
    # page holds no URL at all.
    assert not re.search(r"https?://", page.replace(PLOTLY.read_text("utf-8"), ""))
    # plotly.js inline, once.
    assert page.count("plotly.js (basic - minified) v4.1.1") == 1
    # The size budget of a whole demo run (ten experiments): plotly.js plus each
    # experiment's share; these two must leave room for eight more of their kind.
    size = path.stat().st_size
    per_experiment = (size - PLOTLY.stat().st_size) / 2
    assert size < html_report.SIZE_BUDGET
    assert PLOTLY.stat().st_size + 10 * per_experiment < html_report.SIZE_BUDGET, per_experiment
    # One outage-window shape per window results.json has, in the experiment's figure.
    data = json.loads((results / "results.json").read_text())
    figures = _figures(page)
    assert [len(e["outages"]) for e in data["experiments"]] == [0, 1]
    assert [_outage_shapes(f) for f in figures] == [0, 1]
    sections = re.findall(r'data-name="([^"]+)" data-outages="(\d+)"', page)
    assert sections == [("node-drain", "0"), ("probes-dependency-outage", "1")]


def test_the_report_shows_verdicts_thresholds_checks_lanes_and_posture(tmp_path: Path) -> None:
    results = _demo_run(tmp_path)
    page = html_report.write_report(results)[0].read_text("utf-8")
    drain, probes = _figures(page)
    names = {t["name"] for t in drain["data"]}
    assert {"succeeded", "req/s (per 1 s)", "p50 ms (per 100 ms)", "p99 ms (per 100 ms)",
            "pod Ready", "pod Terminating", "EndpointSlice ready", "node cordoned",
            "suite actions", "Kubernetes events"} <= names
    assert any(n.startswith("ReplicaSet ") for n in names)
    actions = next(t for t in drain["data"] if t["name"] == "suite actions")
    assert any("eviction of aftershock-demo/web-" in h and ": evicted" in h
               for h in actions["hovertext"])
    assert any(h.startswith("fault start") for h in actions["hovertext"])
    assert [s["name"] for s in drain["layout"]["shapes"]].count("phase") == 3
    outage = next(s for s in probes["layout"]["shapes"] if s["name"] == "outage")
    note = next(a for a in probes["layout"]["annotations"] if a["x"] == outage["x0"]
                and a["text"] == "outage")
    assert "starting 577 ms after pod web-86f854c799-8j7r6 left the endpoints" in note["hovertext"]
    assert {t["name"] for t in probes["data"]} >= {"failed: connect", "failed: connect_timeout"}
    # Above the charts: verdicts, thresholds against the measured values, the checks.
    assert "<td>during</td><td>max_error_rate</td><td>0.0</td><td>0.745691</td>" \
           "<td>over the limit</td>" in page
    assert "Check <b>drain</b>" in page and "drained node node-1 in 11.4 s" in page
    assert "AS-POSTURE-NETWORK-POLICY-MISSING" in page  # the posture findings table


def test_every_panel_of_an_experiment_zooms_and_pans_on_one_time_axis(tmp_path: Path) -> None:
    # The browser test drags on one panel and sees every lane follow; this is why: one x
    # axis for all panels, zoomable, and every y axis fixed so that a drag changes time only.
    page = html_report.write_report(_demo_run(tmp_path))[0].read_text("utf-8")
    for fig in _figures(page):
        layout = fig["layout"]
        assert layout["dragmode"] == "zoom"
        assert [k for k in layout if k.startswith("xaxis")] == ["xaxis"]
        assert not layout["xaxis"].get("fixedrange")
        yaxes = [k for k in layout if k.startswith("yaxis")]
        assert len(yaxes) == 7 and all(layout[k]["fixedrange"] for k in yaxes), yaxes
        assert {t.get("xaxis", "x") for t in fig["data"]} == {"x"}
        assert {t["yaxis"] for t in fig["data"]} <= {a.replace("yaxis", "y") for a in yaxes}
        assert {s["xref"] for s in layout["shapes"]} == {"x"}


def test_a_report_of_the_recorded_outage_fixture_has_its_one_window(tmp_path: Path) -> None:
    from aftershock.results import read_timeline
    timeline, _ = read_timeline(FIXTURES / "recorded_outage.jsonl")
    slo = SLO()
    res = Results(tmp_path)
    res.record("recorded outage", evaluate(timeline, slo), slo, timeline=timeline)
    page = html_report.write_report(tmp_path)[0].read_text("utf-8")
    (fig,) = _figures(page)
    assert _outage_shapes(fig) == len(res.experiments[0]["outages"]) == 1


def test_recorded_text_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    tl = experiment()
    evil = "</script><script>alert(1)</script>"
    tl.observations.append(EventObserved(T0 + 11, "Pod", "web-a", "Killing", evil))
    slo = SLO()
    Results(tmp_path).record("<b>name</b>", evaluate(tl, slo), slo, timeline=tl)
    page = html_report.write_report(tmp_path)[0].read_text("utf-8")
    assert evil not in page and "<b>name</b>" not in page
    assert "&lt;b&gt;name&lt;/b&gt;" in page
    (fig,) = _figures(page)  # the JSON still holds the text as it was
    events = next(t for t in fig["data"] if t["name"] == "Kubernetes events")
    assert events["hovertext"] == [f"Normal Pod/web-a Killing: {evil}"]


def test_an_experiment_without_a_readable_timeline_still_has_its_verdict(
        tmp_path: Path) -> None:
    res = Results(tmp_path)
    slo = SLO()
    res.record("kill", evaluate(experiment(), slo), slo, timeline=experiment())
    res.record_inconclusive("drain", "target web not found in namespace shop")
    (tmp_path / res.experiments[0]["timeline"]).write_text("not json\n{}\n")
    page = html_report.write_report(tmp_path)[0].read_text("utf-8")
    assert "could not be read" in page and "no timeline was recorded" in page
    assert "target web not found in namespace shop" in page


def test_report_html_flag_writes_the_page_and_keeps_the_exit_code(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _demo_run(tmp_path)
    assert cli.main(["report", str(results), "--html"]) == 0
    out = capsys.readouterr().out
    assert f"report: {results / 'report.html'} (" in out and "overall: pass" in out
    assert (results / "report.html").is_file()
    assert cli.main(["report", str(tmp_path / "none"), "--html"]) == 2


def test_the_inlined_plotly_is_the_pinned_npm_file_with_its_license() -> None:
    assets = PLOTLY.parent
    head = PLOTLY.read_text("utf-8")[:200]
    assert f"plotly.js (basic - minified) v{html_report.PLOTLY_VERSION}" in head
    assert f"plotly.js-basic-dist-min@{html_report.PLOTLY_VERSION}" in \
        (assets / "README.md").read_text()
    assert "MIT License" in (assets / "LICENSE-plotly.js.txt").read_text()
