"""Deployment budgets: file size, mAP50 floor and INT8 drop of the final TFLite file."""

from __future__ import annotations

from typing import Any

from pipeline.stage_params import GateParams


def check_budgets(final: dict[str, Any], p: GateParams) -> dict[str, Any]:
    """Every figure, limit and verdict; `passed` is True only when all budgets hold."""
    checks = {
        "size_bytes": {"value": final["size_bytes"], "limit": p.max_bytes, "rule": "<=",
                       "passed": final["size_bytes"] <= p.max_bytes},
        "map50": {"value": final["map50"], "limit": p.min_map50, "rule": ">=",
                  "passed": final["map50"] >= p.min_map50},
        "int8_drop_map50": {"value": final["int8_drop_map50"], "limit": p.max_int8_drop, "rule": "<=",
                            "passed": final["int8_drop_map50"] <= p.max_int8_drop},
    }
    return {"passed": all(c["passed"] for c in checks.values()), "checks": checks}


def failure_message(verdict: dict[str, Any]) -> str:
    failed = [f"{name} = {c['value']:.4g} (limit {c['rule']} {c['limit']:.4g})"
              for name, c in verdict["checks"].items() if not c["passed"]]
    return "gate FAILED: " + "; ".join(failed)
