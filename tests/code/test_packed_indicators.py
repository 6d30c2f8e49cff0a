"""The indicators kept beside a prepared answer: as the online store gives them."""

import numpy as np

from serving.online import Features
from serving.prepared import packed_indicators, unpack


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def test_an_integer_indicator_stays_an_integer_in_a_chunk_with_a_missing_value():
    # a province's own integer indicator, empty for one customer of the chunk
    features = Features(
        {
            "msisdn": _objects(["13800000001", "13800000002", "13800000003"]),
            "province": _objects(["GD", "GD", "GD"]),
            "night_calls_3m": _objects([3, None, 12]),
            "monthly_consumption": _objects([58.5, None, 120.0]),
        },
        ["2026-04-30T23:59:59+00:00"] * 3,
    )
    records = [unpack(p) for p in packed_indicators(features)]
    assert [r["night_calls_3m"] for r in records] == [3, None, 12]
    assert [type(r["night_calls_3m"]) for r in records] == [int, type(None), int]
    assert [r["monthly_consumption"] for r in records] == [58.5, None, 120.0]
    assert records[0]["features_as_of"] == "2026-04-30T23:59:59+00:00"
