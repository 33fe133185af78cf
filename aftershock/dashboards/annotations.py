"""Grafana annotations from results.json's document (pure): each fault's span and each
outage window with its explanation, in the shape Grafana's annotation API takes
(``POST /api/annotations``: ``time`` and ``timeEnd`` in ms since the epoch, ``tags``,
``text``). Experiments that judged one shared run (the probe checks of one pod kill) have
one annotation per span, naming them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TAG = "aftershock"


def _ms(t: Any) -> int | None:
    return round(float(t) * 1000) if isinstance(t, int | float) and not isinstance(t, bool) \
        else None


def grafana_annotations(doc: Mapping[str, Any], namespace: str, deployment: str
                        ) -> list[dict[str, Any]]:
    """Every fault span and outage window in ``doc``, by start time."""
    target = f"{namespace}/{deployment}" if namespace or deployment else ""
    spans: dict[tuple[str, int, int], list[Mapping[str, Any]]] = {}
    windows: dict[tuple[int, int], tuple[Mapping[str, Any], list[Mapping[str, Any]]]] = {}
    for e in doc.get("experiments") or []:
        markers = e.get("markers") or {}
        start = _ms(markers.get("fault_start"))
        end = _ms(markers.get("fault_end")) or _ms(markers.get("load_end"))
        if start is not None:
            spans.setdefault((str(e.get("fault") or ""), start, end or start), []).append(e)
        for w in e.get("outages") or []:
            ws, we = _ms(w.get("start")), _ms(w.get("end"))
            if ws is not None:
                windows.setdefault((ws, we or ws), (w, []))[1].append(e)
    out: list[dict[str, Any]] = []
    on = f" on {target}" if target else ""
    for (fault, start, end), es in spans.items():
        names = ", ".join(str(e.get("name")) for e in es)
        verdicts = ", ".join(f"{e.get('name')}: {e.get('verdict')}" for e in es)
        out.append({"time": start, "timeEnd": end,
                    "tags": _tags("fault", fault, target, es),
                    "text": f"{fault or 'fault'}{on} ({names}); {verdicts}"})
    for (start, end), (w, es) in windows.items():
        names = ", ".join(str(e.get("name")) for e in es)
        why = w.get("explanation") or "no Kubernetes change explains it"
        out.append({"time": start, "timeEnd": end,
                    "tags": _tags("outage", str(es[0].get("fault") or ""), target, es),
                    "text": f"outage{on}: {w.get('failed')} failed requests over "
                            f"{w.get('duration_ms')} ms in the {w.get('phase')} phase "
                            f"({names}); {why}"})
    return sorted(out, key=lambda a: (a["time"], a["timeEnd"]))


def _tags(what: str, fault: str, target: str, es: list[Mapping[str, Any]]) -> list[str]:
    tags = [TAG, what]
    if fault:
        tags.append(f"fault:{fault}")
    if target:
        tags.append(f"target:{target}")
    tags += sorted({f"verdict:{e.get('verdict')}" for e in es})
    return tags
