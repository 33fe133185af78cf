"""From a results.json document to the history's rows (a run and its experiments).

The same for a run that just finished and for an old results directory being imported,
so the history holds what results.json says and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

from aftershock.checks.learn import FIGURES
from aftershock.history.store import dumps

#: results.json's top-level entry with what files a run in the history (written at the
#: end of every run that keeps a history; an older results directory has none).
SECTION = "history"


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def figures(entry: dict[str, Any]) -> dict[str, float | None]:
    """The learned figures of one results.json experiment entry."""
    phases: dict[str, Any] = entry["phases"] if isinstance(entry.get("phases"), dict) else {}
    out: dict[str, float | None] = {}
    for name, _, _ in FIGURES:
        if "." in name:
            phase, field = name.split(".", 1)
            ph: dict[str, Any] = phases[phase] if isinstance(phases.get(phase), dict) else {}
            out[name] = _num(ph.get(field))
        else:
            out[name] = _num(entry.get(name))
    return out


def experiment_row(entry: dict[str, Any]) -> dict[str, Any]:
    aborted = entry.get("aborted") if isinstance(entry.get("aborted"), dict) else None
    outages = [{"start": o.get("start"), "duration_ms": o.get("duration_ms"),
                "phase": o.get("phase"), "failed": o.get("failed"),
                "explanation": o.get("explanation")}
               for o in entry.get("outages") or [] if isinstance(o, dict)]
    phases = {p: {k: v for k, v in ph.items() if k not in ("violations", "reasons")}
              for p, ph in (entry.get("phases") or {}).items() if isinstance(ph, dict)}
    learned = entry.get("learned")
    return {
        "experiment": str(entry["name"])[:300],
        "verdict": str(entry["verdict"]),
        "aborted": aborted is not None,
        "aborted_at_s": _num(aborted.get("at_s")) if aborted else None,
        "aborted_reason": str(aborted.get("reason")) if aborted else None,
        "fault": str(entry.get("fault") or "")[:100],
        "reason": str(entry.get("reason") or ""),
        **{name.replace(".", "_"): value for name, value in figures(entry).items()},
        "phases": dumps(phases),
        "outages": dumps(outages),
        "learned": dumps(learned) if isinstance(learned, dict) else None,
    }


def run_row(doc: dict[str, Any], *, source: str, target: str, profile: str,
            facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's row; ``facts`` (namespace, deployment, images, kubernetes_version, nodes,
    aftershock_version) as far as they are known."""
    f = facts or {}
    uid = hashlib.sha256(json.dumps(
        {k: doc.get(k) for k in ("started", "finished", "experiments")},
        sort_keys=True, default=str).encode()).hexdigest()
    return {
        "uid": uid, "started": doc.get("started"), "finished": doc.get("finished"),
        "recorded_at": time.time(), "source": source, "target": target[:200],
        "namespace": f.get("namespace"), "deployment": f.get("deployment"),
        "images": dumps(f.get("images") or {}), "profile": profile[:200],
        "kubernetes_version": f.get("kubernetes_version"), "nodes": f.get("nodes"),
        "aftershock_version": f.get("aftershock_version"), "verdict": doc.get("verdict"),
    }
