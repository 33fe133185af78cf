"""Posture fixture helpers: good.yaml, and variants that each change one thing in it.

A variant file says what to change and which check ids it must trigger, exactly:

    expect: [AS-POSTURE-PDB-MISSING]      # the set of ids, nothing more, nothing less
    delete: [PodDisruptionBudget/web]     # Kind/name of documents to drop
    patch:                                # JSON merge patch (RFC 7386) per document, except
      Deployment/web:                     # that lists of named items (containers, env)
        spec: {replicas: 1}               # merge item by item on "name"
    add: [ ... ]                          # whole documents to add
    settings: {drain_seconds: 10}         # PostureSettings overrides
    service: web                          # the Service named as target (default web)
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from aftershock.checks.posture import PostureInput, PostureSettings

FIXTURES = Path(__file__).parent / "fixtures"
VARIANTS = sorted((FIXTURES / "variants").glob("*.yaml"))


def merge(base: Any, patch: Any) -> Any:
    """RFC 7386 merge patch, with lists of named mappings merged by name."""
    if isinstance(patch, dict) and isinstance(base, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(base.get(key), value)
        return out
    if (isinstance(patch, list) and isinstance(base, list) and patch
            and all(isinstance(i, dict) and "name" in i for i in patch + base)):
        out_list = [copy.deepcopy(i) for i in base]
        for item in patch:
            at = next((n for n, b in enumerate(out_list) if b["name"] == item["name"]), None)
            if at is None:
                out_list.append(copy.deepcopy(item))
            elif item.get("$delete"):
                del out_list[at]
            else:
                out_list[at] = merge(out_list[at], item)
        return out_list
    return copy.deepcopy(patch)


def _key(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def good_documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((FIXTURES / "good.yaml").read_text()) if d]


def variant_documents(case: dict[str, Any]) -> list[dict[str, Any]]:
    docs = good_documents()
    keys = {_key(d) for d in docs}
    for name in list(case.get("delete", [])) + list(case.get("patch", {})):
        assert name in keys, f"variant refers to {name}, which good.yaml does not have"
    docs = [d for d in docs if _key(d) not in case.get("delete", [])]
    patches = case.get("patch", {})
    docs = [merge(d, patches[_key(d)]) if _key(d) in patches else d for d in docs]
    return docs + list(case.get("add", []))


def load_variant(path: Path) -> tuple[dict[str, Any], PostureInput, PostureSettings]:
    case = yaml.safe_load(path.read_text())
    docs = variant_documents(case)
    inp = PostureInput.from_documents(docs, "web", case.get("service", "web"))
    return case, inp, PostureSettings(**case.get("settings", {}))

