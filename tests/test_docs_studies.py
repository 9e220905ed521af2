"""docs/studies/: one dated write-up per study script, each listed in the index, and every figure a write-up states
copied from a report it links (a figure typed by hand would go stale)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "studies"
NUMBER = re.compile(r"[-+]?\d[\d,]*\.\d+(?:e[-+]\d+)?|\d{1,3}(?:,\d{3})+")  # decimals and 1,234,567
REPORT_LINK = re.compile(r"\]\(((?:\.\./)+(?:studies|bench)/results/[\w.]+\.md)\)")
WRITE_UPS = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")


def test_every_study_has_a_write_up_listed_in_the_index():
    scripts = sorted(p.stem for p in (REPO / "studies").glob("*.py") if p.name != "__init__.py")
    assert [Path(w).stem for w in WRITE_UPS] == scripts
    index = (DOCS / "README.md").read_text()
    assert [w for w in WRITE_UPS if f"]({w})" not in index] == []


@pytest.mark.parametrize("write_up", WRITE_UPS)
def test_every_figure_of_a_write_up_is_in_a_report_it_links(write_up):
    text = (DOCS / write_up).read_text()
    reports = [(DOCS / link).resolve() for link in REPORT_LINK.findall(text)]
    assert reports, f"docs/studies/{write_up} links no report"
    source = "\n".join(p.read_text() for p in reports)
    missing = sorted({n for n in NUMBER.findall(text) if n not in source})
    assert missing == [], f"docs/studies/{write_up}: {missing} are in none of the reports it links"
