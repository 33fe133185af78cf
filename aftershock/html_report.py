"""results/report.html: every experiment's timeline as one self-contained page.

The data comes from what the run recorded (results.json and timelines/*.jsonl), shaped by
``aftershock.checks.timeline_view``; this module only turns views into plotly.js figures
and the page. plotly.js's basic bundle (report_assets/, MIT) is inlined, like every style,
so the file opens offline and asks no network for anything: it is a CI artifact that must
still work in a year.
"""

from __future__ import annotations

import json
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from aftershock.checks import timeline_view as tv
from aftershock.checks.codec import TimelineFormatError
from aftershock.errors import UsageError
from aftershock.results import RESULTS_FILE, _atomic_write, load_results, read_timeline

REPORT_FILE = "report.html"
PLOTLY_VERSION = "4.1.1"
#: The most a report of a whole ``make demo`` run may weigh (plotly.js alone is 1.2 MB).
SIZE_BUDGET = 3 * 1000 * 1000

_STATE_COLOURS = {
    "Ready": "#2ca02c", "Pending": "#bcbd22", "not Ready": "#ff7f0e",
    "Terminating": "#9467bd", "gone": "#7f7f7f",
    "cordoned": "#ff7f0e", "NotReady": "#d62728", "NotReady, cordoned": "#d62728",
}
_ERROR_COLOURS = {"http": "#d62728", "connect": "#ff7f0e", "unreachable": "#8c564b",
                  "reset": "#e377c2", "timeout": "#9467bd", "connect_timeout": "#17becf",
                  "other": "#7f7f7f"}
#: The suite's actions by what they did; Events by their reason stay dark grey.
_TICK_COLOURS = {"fault start": "#d62728", "fault end": "#2ca02c", "evicted": "#9467bd",
                 "refused": "#d62728", "eviction error": "#d62728", "gave up": "#d62728",
                 "rollback start": "#1f77b4", "rollback end": "#1f77b4",
                 "dependency down": "#d62728", "dependency restored": "#2ca02c"}
_SPAN_STYLE = {"phase": {"before": "rgba(31,119,180,0.05)", "during": "rgba(255,127,14,0.10)",
                         "after": "rgba(44,160,44,0.06)"},
               "outage": "rgba(214,39,40,0.25)", "kubernetes_gap": "rgba(90,90,90,0.22)",
               "load_gap": "rgba(140,86,75,0.22)"}

#: The height of one pod or node lane, in pixels.
_LANE_PX = 22


def _asset(name: str) -> str:
    return (resources.files("aftershock") / "report_assets" / name).read_text("utf-8")


def _script_json(obj: Any) -> str:
    """JSON that can sit inside <script>: no '<', '>' or '&' that could end it."""
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _lanes(segments: list[tv.Segment], yaxis: str, what: str) -> list[dict[str, Any]]:
    """One trace per state: each segment a thick line on its lane, hover text at its ends."""
    by_state: dict[str, tuple[list[Any], list[Any], list[Any]]] = {}
    for s in segments:
        xs, ys, texts = by_state.setdefault(s.state, ([], [], []))
        if s.state == "gone":
            xs += [s.start, None]
            ys += [s.lane, None]
            texts += [s.text, None]
        else:
            xs += [s.start, s.end, None]
            ys += [s.lane, s.lane, None]
            texts += [s.text, s.text, None]
    traces = []
    for state, (xs, ys, texts) in by_state.items():
        colour = _STATE_COLOURS.get(state, "#444")
        gone = state == "gone"
        traces.append({
            "type": "scatter", "mode": "markers" if gone else "lines", "name": f"{what} {state}",
            "x": xs, "y": ys, "yaxis": yaxis, "hovertext": texts, "hoverinfo": "x+text",
            "line": {"width": 12, "color": colour},
            "marker": {"symbol": "x", "size": 10, "color": colour},
            "connectgaps": False})
    return traces


def figure(v: tv.View) -> dict[str, Any]:
    """One experiment's plotly figure: panels stacked on one shared time axis."""
    pods = list(dict.fromkeys(s.lane for s in v.pods))
    nodes = list(dict.fromkeys(s.lane for s in v.nodes))
    marks = ["suite actions", "Kubernetes events"]
    # (axis, height in px) from the top; every panel shares the x axis, so zoom and pan on
    # any of them move all.
    panels = [("y", 90), ("y2", 60), ("y3", 90), ("y4", max(1, len(pods)) * _LANE_PX + 10),
              ("y5", 100), ("y6", max(1, len(nodes)) * _LANE_PX + 10), ("y7", 2 * _LANE_PX + 10)]
    gap = 14
    total = sum(h for _, h in panels) + gap * (len(panels) - 1)
    domains: dict[str, list[float]] = {}
    top = total
    for axis, h in panels:
        domains[axis] = [round((top - h) / total, 4), round(top / total, 4)]
        top -= h + gap
    strip = v.requests
    traces: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines", "name": "succeeded", "x0": strip.x0,
        "dx": strip.step_s, "y": strip.ok, "stackgroup": "req", "line": {"width": 0},
        "fillcolor": "rgba(44,160,44,0.6)", "yaxis": "y",
        "hovertemplate": "%{x:.3f} s: %{y} succeeded<extra></extra>"}]
    for kind, counts in strip.failed.items():
        traces.append({
            "type": "scatter", "mode": "lines", "name": f"failed: {kind}", "x0": strip.x0,
            "dx": strip.step_s, "y": counts, "stackgroup": "req", "line": {"width": 0},
            "fillcolor": _ERROR_COLOURS.get(kind, "#7f7f7f"), "yaxis": "y",
            "hovertemplate": f"%{{x:.3f}} s: %{{y}} failed ({kind})<extra></extra>"})
    traces.append({"type": "scatter", "mode": "lines", "name": "req/s (per 1 s)",
                   "x0": v.rps.x0 + v.rps.step_s / 2, "dx": v.rps.step_s, "y": v.rps.values,
                   "yaxis": "y2", "line": {"color": "#1f77b4", "shape": "hvh"}})
    for name, s, colour in (("p50 ms", v.p50_ms, "#1f77b4"), ("p99 ms", v.p99_ms, "#d62728")):
        traces.append({"type": "scatter", "mode": "lines", "name": f"{name} (per 100 ms)",
                       "x0": s.x0 + s.step_s / 2, "dx": s.step_s, "y": s.values, "yaxis": "y3",
                       "line": {"color": colour, "width": 1}, "connectgaps": False})
    traces += _lanes(v.pods, "y4", "pod")
    for step in v.steps:
        xs = [p[0] for p in step.points] + [v.end]
        ys = [p[1] for p in step.points] + [step.points[-1][1]]
        traces.append({"type": "scatter", "mode": "lines", "name": step.name, "x": xs, "y": ys,
                       "yaxis": "y5", "line": {"shape": "hv", "width": 2}})
    traces += _lanes(v.nodes, "y6", "node")
    for ticks, lane in ((v.actions, marks[0]), (v.events, marks[1])):
        if ticks:
            traces.append({
                "type": "scatter", "mode": "markers", "name": lane,
                "x": [t.at for t in ticks], "y": [lane] * len(ticks),
                "hovertext": [t.text for t in ticks], "hoverinfo": "x+text", "yaxis": "y7",
                "marker": {"symbol": "line-ns-open", "size": 16, "line": {"width": 2},
                           "color": [_TICK_COLOURS.get(t.label, "#333") for t in ticks]}})
    shapes, annotations = [], []
    for span in v.spans:
        style = _SPAN_STYLE[span.kind]
        fill = style[span.label] if isinstance(style, dict) else style
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": span.start,
                       "x1": max(span.end, span.start + 0.001), "y0": 0, "y1": 1,
                       "fillcolor": fill, "line": {"width": 0}, "layer": "below",
                       "name": span.kind})
        annotations.append({"x": span.start, "xref": "x", "xanchor": "left",
                            "y": 1.0 if span.kind == "phase" else 0.0, "yref": "paper",
                            "yanchor": "bottom" if span.kind == "phase" else "top",
                            "text": span.label, "hovertext": span.text or span.label,
                            "showarrow": False, "font": {"size": 10}})
    layout: dict[str, Any] = {
        "height": total + 80, "margin": {"l": 190, "r": 20, "t": 20, "b": 50},
        "hovermode": "closest", "dragmode": "zoom", "showlegend": True,
        # Traces in the order of the panels (stacked traces would reverse it by default).
        "legend": {"orientation": "v", "x": 1.0, "xanchor": "left", "font": {"size": 10},
                   "traceorder": "normal"},
        "xaxis": {"title": {"text": "seconds since the load started"}, "anchor": "y7",
                  "range": [v.start, v.end], "showspikes": True, "spikemode": "across",
                  "zeroline": False},
        "shapes": shapes, "annotations": annotations,
    }
    titles = {"y": "requests / bucket", "y2": "req/s", "y3": "latency ms", "y4": "",
              "y5": "count", "y6": "", "y7": ""}
    for axis, _ in panels:
        key = "yaxis" + axis[1:]
        layout[key] = {"domain": domains[axis], "fixedrange": True,
                       "title": {"text": titles[axis], "font": {"size": 10}}}
    for key, cats in (("yaxis4", pods), ("yaxis6", nodes), ("yaxis7", marks)):
        layout[key].update({"type": "category", "categoryarray": cats[::-1],
                            "categoryorder": "array", "range": [-0.5, len(cats) - 0.5]})
    return {"data": traces, "layout": layout}


def _thresholds(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Each SLO threshold that is set, against what was measured, per phase."""
    slo, phases = entry.get("slo") or {}, entry.get("phases") or {}
    # The verdict's violations, and each phase's own (an experiment whose check expects an
    # outage passes with its during phase over the limits).
    found = [*(entry.get("violations") or []),
             *(v for p in phases.values() for v in (p or {}).get("violations") or [])]
    violated = {(v.get("phase"), v.get("threshold")) for v in found}
    measures = {"max_error_rate": "error_rate", "max_outage_ms": "longest_outage_ms",
                "p95_ms": "p95_ms", "p99_ms": "p99_ms", "min_requests": "requests"}
    rows = []
    for phase in ("before", "during", "after"):
        limits = slo.get(phase) or {}
        for threshold, measure in measures.items():
            if limits.get(threshold) is None:
                continue
            rows.append({"phase": phase, "threshold": threshold, "limit": limits[threshold],
                         "measured": (phases.get(phase) or {}).get(measure),
                         "violated": (phase, threshold) in violated})
    if slo.get("max_recovery_s") is not None:
        rows.append({"phase": "after", "threshold": "max_recovery_s",
                     "limit": slo["max_recovery_s"], "measured": entry.get("recovery_s"),
                     "violated": (None, "max_recovery_s") in violated
                     or ("after", "max_recovery_s") in violated})
    return rows


def render(data: dict[str, Any], results_dir: Path) -> str:
    """The page for a results.json document; timelines are read from results_dir."""
    experiments = []
    for i, entry in enumerate(data.get("experiments") or []):
        fig, note = None, ""
        rel = entry.get("timeline")
        if rel:
            try:
                timeline, _ = read_timeline(results_dir / rel)
                fig = figure(tv.view(timeline, entry))
            except (OSError, TimelineFormatError) as e:
                note = f"timeline {rel} could not be read: {e}"
        else:
            note = "no timeline was recorded"
        experiments.append({"i": i, "e": entry, "thresholds": _thresholds(entry),
                            "figure": _script_json(fig) if fig else None, "note": note,
                            "outages": len(entry.get("outages") or [])})
    # Optional keys of results.json (check, actions, ...) read as empty when absent.
    env = jinja2.Environment(autoescape=True, keep_trailing_newline=True)
    page = env.from_string(_asset("report.html.j2"))
    return page.render(data=data, experiments=experiments, posture=data.get("posture"),
                       plotly=markupsafe.Markup(_asset("plotly-basic.min.js")),
                       plotly_version=PLOTLY_VERSION)


def write_report(results_dir: Path) -> tuple[Path, float]:
    """Write results_dir/report.html from its results.json; returns the path and the
    seconds it took. A results.json that is not aftershock's raises UsageError."""
    t0 = time.monotonic()
    data = load_results(Path(results_dir) / RESULTS_FILE)
    path = Path(results_dir) / REPORT_FILE
    _atomic_write(path, render(data, Path(results_dir)))
    return path, time.monotonic() - t0


def write_session_report(results_dir: Path) -> Path | None:
    """The report at the end of a run: written, and said where; a report that cannot be
    written is said too, but changes neither the verdicts nor the exit code (results.json
    is the record; the page is a view of it)."""
    try:
        path, took = write_report(results_dir)
    except (OSError, UsageError, TimelineFormatError, ValueError) as e:
        print(f"[aftershock] report.html not written: {e}", file=sys.__stderr__, flush=True)
        return None
    size = path.stat().st_size
    print(f"[aftershock] report: {path} ({size / 1e6:.1f} MB, {took:.1f} s)",
          file=sys.__stderr__, flush=True)
    return path
