"""The restructuring changed no answer: live and prepared ``/score`` answers, the CRM file and
the weekly report of a fixed world equal those captured before it (``tests/golden.py``)."""

from __future__ import annotations

import json
import math

import pytest

from tests.golden import GOLDEN, capture

pytestmark = pytest.mark.slow


def _diff(expected, actual, path="") -> list[str]:
    """Where two JSON values differ (floats to 1e-9 relative: the same arithmetic, reordered)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{path}: keys {sorted(set(expected) ^ set(actual))}"] if set(expected) != set(actual) else []
        return out + [
            d for k in expected if k in actual for d in _diff(expected[k], actual[k], f"{path}.{k}")
        ]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(expected)} items, now {len(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in _diff(e, a, f"{path}[{i}]")]
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return (
            []
            if math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12)
            else [f"{path}: {expected} -> {actual}"]
        )
    return [] if expected == actual else [f"{path}: {expected!r} -> {actual!r}"]


def test_answers_crm_file_and_weekly_report_are_unchanged(tmp_path):
    expected = json.loads(GOLDEN.read_text())
    actual = json.loads(json.dumps(capture(tmp_path / "work"), ensure_ascii=False))
    differences = _diff(expected, actual)
    assert not differences, f"{len(differences)} differences, first ones:\n" + "\n".join(differences[:20])
