"""The README's params table states params.yaml's defaults: a row naming one key shows that key's value."""

from __future__ import annotations

import re

import yaml

from tests.stage_runner import REPO

ROW = re.compile(r"^\| `([a-z_]+\.[a-z_.]+)` \| ([^|]+) \|", re.M)


def value_of(params: dict, key: str):
    node = params
    for part in key.split("."):
        node = node[part]
    return node


def test_single_key_rows_show_the_params_yaml_default():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = (REPO / "README.md").read_text().split("## Params that matter", 1)[1].split("\n## ", 1)[0]
    rows = ROW.findall(section)
    assert len(rows) >= 10
    for key, shown in rows:
        shown = shown.strip().strip("`").replace(",", "")
        expected = value_of(params, key)
        assert yaml.safe_load(shown or "''") == expected or (shown == '""' and expected == ""), \
            f"README says {key} = {shown!r}, params.yaml has {expected!r}"
