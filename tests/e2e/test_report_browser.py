"""results/report.html in a real browser: headless Debian chromium, driven by playwright.

A short real run (pod kill, and the dependency outage that empties web's endpoints for
some seconds: at least one outage window) on the sample app in a scratch namespace writes
the report; chromium (`make browser`, /usr/bin/chromium; playwright never downloads one)
opens it from disk. The page must render every chart with no console error and no network
request, draw as many outage-window shapes per experiment as results.json has, and zoom
and pan on the shared time axis with every lane of the experiment following. The screenshot
goes to results/ for the CI artifacts.

``REPORT_RESULTS=results`` checks a results directory already written instead (the demo's,
after ``make demo``) and runs nothing itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.conftest import AFTERSHOCK, ROOT, Scratch, results_of, write_config

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = ROOT / "results" / "report-browser.png"
LOAD = {"rate": 200, "steady_seconds": 6, "after_seconds": 6}
RUN = ["experiments/test_pod_kill.py", "experiments/test_probes.py", "-k",
       "pod_kill or dependency_outage"]
#: How long the page may take to draw every chart (two cores shared by the whole test tier).
RENDER_TIMEOUT_MS = 90_000


#: Each subplot of a chart (one per panel) and the x axis it draws on, with its range.
_SUBPLOT_RANGES = """c => Object.fromEntries(Object.entries(c._fullLayout._plots)
    .map(([k, p]) => [k, [p.xaxis._id, p.xaxis.range.slice()]]))"""
#: The time axis of every chart but the first.
_OTHER_CHARTS = """() => Array.from(document.querySelectorAll('.chart')).slice(1)
    .map(c => c.layout.xaxis.range.slice())"""


def _drag(page: Page, chart: Locator, subplot: str, start: float, end: float,
          shift: bool = False) -> None:
    """A mouse drag across one subplot of chart, between fractions of its width; with
    shift held, plotly pans instead of zooming. The chart is scrolled into view first, as a
    user would: the demo's first chart starts below the fold, and a mouse outside the
    viewport reaches nothing."""
    layer = chart.locator(f".nsewdrag[data-subplot={subplot}]")
    layer.scroll_into_view_if_needed()
    box = layer.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] * start, box["y"] + box["height"] / 2
    # What the mouse presses on must be that subplot's drag layer, nothing laid over it.
    hit = chart.evaluate("""(c, [x, y]) => { const e = document.elementFromPoint(x, y);
        return e && c.contains(e) ? e.getAttribute('data-subplot') : String(e && e.outerHTML)
          .slice(0, 200); }""", [x, y])
    assert hit == subplot, (subplot, box, hit)
    if shift:
        page.keyboard.down("Shift")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end, y, steps=5)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")
    page.wait_for_timeout(500)


def _one_range(ranges: dict[str, Any]) -> tuple[float, float]:
    """The x range all subplots share (they must share one)."""
    found = {tuple(r) for _, r in ranges.values()}
    assert len(found) == 1, ranges
    start, end = found.pop()
    return start, end


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return (f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n"
            f"{proc.stderr[-4000:]}")


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results directory written by a real run, report.html included."""
    given = os.environ.get("REPORT_RESULTS")
    if given:
        return (ROOT / given).resolve()
    scratch: Scratch = request.getfixturevalue("scratch")
    scratch.apply("web")
    cfg = write_config(tmp_path_factory.mktemp("report") / "web.yaml", scratch.name, "web",
                       load=LOAD, probes={"dependency": "dep"})
    proc = subprocess.run([AFTERSHOCK, "run", "--config", str(cfg), *RUN],
                          capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)
    assert proc.returncode in (0, 1), _show(proc)  # a verdict, whichever: not a broken run
    results = results_of(cfg)
    names = [e["name"] for e in results["experiments"]]
    assert names == ["pod-kill", "probes-dependency-outage"], _show(proc)
    assert "[aftershock] report: " in proc.stderr, _show(proc)
    return cfg.parent / "results"


def test_the_report_renders_offline_in_chromium(run: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), f"no {CHROMIUM}: run `make browser`"
    report = run / "report.html"
    results = json.loads((run / "results.json").read_text())
    expected = {e["name"]: len(e["outages"]) for e in results["experiments"]}
    if not os.environ.get("REPORT_RESULTS"):  # our own run has one: else the count proves nothing
        assert sum(expected.values()) >= 1, expected
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        # As root (the testbed's hosts) chromium needs --no-sandbox.
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            t0 = time.monotonic()
            page.goto(report.as_uri())
            page.wait_for_function(
                "window.aftershockRendered === "
                "document.querySelectorAll('script[id^=figure-]').length",
                timeout=RENDER_TIMEOUT_MS)
            render_s = time.monotonic() - t0
            drawn: dict[str, Any] = page.evaluate("""() =>
                Object.fromEntries(Array.from(document.querySelectorAll('section.experiment'))
                  .map(s => { const c = s.querySelector('.chart');
                    return [s.dataset.name, {
                      outages: c.layout.shapes.filter(x => x.name === 'outage').length,
                      shapes: c.layout.shapes.length,
                      paths: c.querySelectorAll('.shapelayer path').length,
                      declared: Number(s.dataset.outages)}]; }))""")
            # Zoom and pan on the first chart's shared time axis, and only on it: each
            # experiment has its own clock.
            chart = page.locator(".chart").first
            others = page.evaluate(_OTHER_CHARTS)
            before = chart.evaluate(_SUBPLOT_RANGES)
            _drag(page, chart, "xy", 0.3, 0.6)  # across the request strip
            zoomed = chart.evaluate(_SUBPLOT_RANGES)
            _drag(page, chart, "xy4", 0.6, 0.3, shift=True)  # along the pod lanes
            panned = chart.evaluate(_SUBPLOT_RANGES)
            others_after = page.evaluate(_OTHER_CHARTS)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    shutil.copy(report, SCREENSHOT.with_name("report-browser.html"))
    print(f"report {report.stat().st_size / 1e6:.2f} MB rendered in {render_s:.1f} s; "
          f"screenshot {SCREENSHOT}")
    assert errors == [], errors
    assert requests == [report.as_uri()], requests  # the file itself, nothing else
    assert {n: d["outages"] for n, d in drawn.items()} == expected, drawn
    assert all(d["declared"] == d["outages"] for d in drawn.values()), drawn
    assert all(d["paths"] == d["shapes"] > 0 for d in drawn.values()), drawn
    # Every panel (request strip, latency, pod, count, node and event lanes) draws on the
    # one x axis, so a drag on one panel moves them all.
    assert set(before) == {f"xy{n}" for n in ("", 2, 3, 4, 5, 6, 7)}, before
    assert all(axis == "x" for axis, _ in (*before.values(), *zoomed.values(),
                                           *panned.values())), (before, zoomed, panned)
    start, end = _one_range(before)
    z0, z1 = _one_range(zoomed)  # the drag zoomed every lane alike
    assert start <= z0 < z1 <= end and z1 - z0 < (end - start) * 0.5, (before, zoomed)
    p0, p1 = _one_range(panned)  # and the pan moved every lane alike
    assert p0 > z0 and p1 - p0 == pytest.approx(z1 - z0, rel=1e-6), (zoomed, panned)
    assert others_after == others, (others, others_after)
    assert SCREENSHOT.stat().st_size > 10_000
