"""`params.yaml` is the one source of settings: each section parsed into a typed dataclass at the edge.

A missing, unknown or mistyped key fails at once with its full name (`prune.sparsity`) and what was expected.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ParamsError(ValueError):
    """A params.yaml problem; the message names the file and the key."""


def read_params(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 text ({exc}); expected a YAML file") from None
    except (yaml.YAMLError, RecursionError) as exc:  # RecursionError: nested deeper than Python's stack
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return data


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(hint, value, key)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ParamsError as exc:
                errors.append(str(exc))
        raise ParamsError(errors[0] if errors else f"{key}: unexpected value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {value!r}")
        number = float(value) if isinstance(value, float) or abs(value) < 2**1023 else math.inf
        if not math.isfinite(number):  # .nan / .inf in YAML pass every range check (nan <= 0 is False)
            raise ParamsError(f"{key}: expected a finite number, got {value!r}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported field type {hint!r}")


def from_dict(cls: type[T], data: dict[str, Any], prefix: str, source: str | None = None) -> T:
    """Build dataclass `cls` from `data`; unknown keys are rejected.

    With `source` (the params file's name) every field, nested ones included, must be present: params.yaml is
    the one source of the stage's settings, and a missing key fails as `gate.min_map50 is missing from
    params.yaml` instead of silently taking a code default. Without it, fields with defaults may be left out.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParamsError(f"{prefix}: unknown key(s) {[f'{prefix}.{k}' for k in unknown]}; "
                          f"expected some of {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}"
        if name not in data:
            if source is not None:
                raise ParamsError(f"{key} is missing from {source}")
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ParamsError(f"missing required key {key}")
            continue
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(data[name], dict):
                raise ParamsError(f"{key}: expected a mapping, got {data[name]!r}")
            kwargs[name] = from_dict(hint, data[name], key, source)
        else:
            kwargs[name] = _coerce(data[name], hint, key)
    try:
        return cls(**kwargs)
    except ParamsError:
        raise
    except ValueError as exc:  # range checks in __post_init__ start with the bare field name
        raise ParamsError(f"{prefix}.{exc}") from exc


def load_section(path: str | Path, section: str, cls: type[T]) -> T:
    """Parse `section` of the params file into `cls`, every key required; the error names the file and the key."""
    return section_from(read_params(path), path, section, cls)


def section_from(params: dict[str, Any], path: str | Path, section: str, cls: type[T]) -> T:
    """`load_section` on params already read from `path` (for checks that parse several sections at once)."""
    if section not in params:
        raise ParamsError(f"section {section!r} is missing from {path}")
    if not isinstance(params[section] or {}, dict):
        raise ParamsError(f"{path}: section {section!r}: expected a mapping of keys, got {params[section]!r}")
    try:
        return from_dict(cls, params[section] or {}, section, source=Path(path).name)
    except ParamsError as exc:
        if str(Path(path).name) in str(exc):
            raise
        raise ParamsError(f"{path}: {exc}") from exc
