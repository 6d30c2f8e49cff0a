"""How labelled rows are split: by month with three or more months, by customer with fewer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.tasks import TASKS
from training.data import CUSTOMER_SHARES, choose_split, customer_parts


def _table(months: list[str], customers: int = 2_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for month in months:
        rows.append(
            pd.DataFrame(
                {
                    "msisdn": [f"1380000{k:04d}" for k in range(customers)],
                    "month": month,
                    "churned_next_month": (rng.random(customers) < 0.1).astype(int),
                    "tariff_sensitivity": rng.uniform(0, 100, customers),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_three_months_split_by_month_fewer_by_customer():
    assert choose_split(["2025-01", "2025-02", "2025-03"]).method == "time"
    one = choose_split(["2025-03"])
    assert one.method == "customer" and one.months == ("2025-03",)
    assert choose_split(["2025-02", "2025-03"]).describe()["split"].startswith("customer")
    with pytest.raises(Exception, match="test month"):
        choose_split(["2025-02", "2025-03"], test_month="2025-03")  # a month split needs earlier months


@pytest.mark.parametrize("task", ["churn", "tariff_sensitivity"])
def test_no_customer_on_both_sides_and_strata_in_proportion(task):
    t = TASKS[task]
    frame = _table(["2025-02", "2025-03"])
    split = choose_split(["2025-02", "2025-03"])
    parts = split.parts(frame, t)
    owners = {name: set(part["msisdn"]) for name, part in parts.items()}
    assert not (owners["train"] & owners["valid"]) and not (owners["train"] & owners["test"])
    assert not (owners["valid"] & owners["test"])
    assert sum(len(p) for p in parts.values()) == len(frame)  # every labelled row is used once
    for name, share in zip(("train", "valid", "test"), CUSTOMER_SHARES, strict=True):
        assert len(owners[name]) / 2_000 == pytest.approx(share, abs=0.01)
    # each part keeps the label's strata in proportion (churners, or the score's quintiles)
    stratum = pd.Series(t.kind.strata(t.kind.encode_label(frame[t.label])), index=frame.index)
    overall = np.bincount(stratum) / len(frame)
    for part in parts.values():
        share = np.bincount(stratum[part.index], minlength=len(overall)) / len(part)
        assert np.abs(share - overall).max() < 0.03


def test_the_customer_split_is_repeatable_and_seeded():
    t = TASKS["churn"]
    frame = _table(["2025-03"], 500)
    a, b = customer_parts(frame, t, CUSTOMER_SHARES, 7), customer_parts(frame, t, CUSTOMER_SHARES, 7)
    assert (a == b).all() and not (a == customer_parts(frame, t, CUSTOMER_SHARES, 8)).all()
