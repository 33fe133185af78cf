"""results/report.html in a real browser: headless Debian chromium, driven by playwright.

A short real run (pod kill, and the dependency outage that empties web's endpoints for
some seconds: at least one outage window) on the sample app in a scratch namespace writes
the report; chromium (`make browser`, /usr/bin/chromium; playwright never downloads one)
opens it from disk. The page must render every chart with no console error and no network
request, draw as many outage-window shapes per experiment as results.json has, and zoom
on the shared time axis. The screenshot goes to results/ for the CI artifacts.

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
from typing import Any

import pytest

from tests.e2e.conftest import AFTERSHOCK, ROOT, Scratch, results_of, write_config

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("AFTERSHOCK_E2E_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = ROOT / "results" / "report-browser.png"
LOAD = {"rate": 200, "steady_seconds": 6, "after_seconds": 6}
RUN = ["experiments/test_pod_kill.py", "experiments/test_probes.py", "-k",
       "pod_kill or dependency_outage"]
#: How long the page may take to draw every chart (two cores shared by the whole test tier).
RENDER_TIMEOUT_MS = 90_000


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
            # Zoom: a drag across the first chart narrows the shared time axis.
            before = page.evaluate("() => document.querySelector('.chart').layout.xaxis.range")
            box = page.locator(".chart .nsewdrag").first.bounding_box()
            assert box is not None
            y = box["y"] + box["height"] / 2
            page.mouse.move(box["x"] + box["width"] * 0.3, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
            page.mouse.up()
            page.wait_for_timeout(500)
            after = page.evaluate("() => document.querySelector('.chart').layout.xaxis.range")
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
    assert after[1] - after[0] < (before[1] - before[0]) * 0.5, (before, after)
    assert SCREENSHOT.stat().st_size > 10_000
