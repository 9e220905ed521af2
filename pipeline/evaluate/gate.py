"""Deployment budgets of the final INT8 TFLite: file size, mAP50 floor, INT8 drop, the fraction of the FP32
mAP50 that INT8 keeps and the RAM (TensorFlow Lite Micro tensor arena) it needs.
Each check names the params.yaml key that sets its limit."""

from __future__ import annotations

from typing import Any

from pipeline.config.stages import GateParams


def _check(value: float, limit: float, rule: str, key: str) -> dict[str, Any]:
    passed = value <= limit if rule == "<=" else value >= limit
    return {"value": value, "limit": limit, "rule": rule, "key": key, "passed": bool(passed)}


def check_budgets(final: dict[str, Any], p: GateParams) -> dict[str, Any]:
    """Every figure, limit and verdict; `passed` is True only when all budgets hold."""
    missing = [k for k in ("size_bytes", "map50", "int8_drop_map50", "int8_retention", "tflm_arena_bytes") if k not in final]
    if missing:
        raise ValueError(f"the evaluate metrics have no final.{missing[0]} (written by an older version?); "
                         f"re-run `dvc repro evaluate`")
    checks = {
        "size_bytes": _check(final["size_bytes"], p.max_bytes, "<=", "gate.max_bytes"),
        "map50": _check(final["map50"], p.min_map50, ">=", "gate.min_map50"),
        "int8_drop_map50": _check(final["int8_drop_map50"], p.max_int8_drop, "<=", "gate.max_int8_drop"),
        "int8_retention": _check(final["int8_retention"], p.min_int8_retention, ">=", "gate.min_int8_retention"),
        "tflm_arena_bytes": _check(final["tflm_arena_bytes"], p.max_arena_bytes, "<=", "gate.max_arena_bytes"),
    }
    return {"passed": all(c["passed"] for c in checks.values()), "checks": checks}


def _number(x: float) -> str:
    """Byte counts in full with separators (747,656), fractions to 4 significant digits."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) >= 1000 else f"{x:.4g}"


def describe(name: str, c: dict[str, Any]) -> str:
    return f"{name} = {_number(c['value'])} ({c['key']}: {c['rule']} {_number(c['limit'])})"


def failure_message(verdict: dict[str, Any]) -> str:
    failed = [describe(name, c) for name, c in verdict["checks"].items() if not c["passed"]]
    return "gate FAILED: " + "; ".join(failed)
