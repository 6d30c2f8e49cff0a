"""The champion's reference: the held-out month it was tested on, logged with the model.

Training logs ``monitoring/reference.parquet`` in the model's run: the indicators the
model reads, the province, the label and the model's own prediction on those rows, in
the same columns serving records, and the part of the split each row comes from
(``reference_part``). The weekly job (``monitoring.reference``) judges each province
against its own rows of it.

The rows carry the tested model's outputs too (``tested_p_*``): the served model is refit
on every labelled row of the split, so on these rows it is no longer held out, and the
weekly quality check reads the tested model's quality here instead of the served one's.

Why the test month: it is the latest data the champion was judged on, so a week that
looks like it is a week the test score still describes. A province whose customers are
few in the test month (fewer than ``PROVINCE_ROWS``) gets more of its own months, the
validation month and then the training months, newest first, so that its drift is
judged against its own customers and never against the national mix. Only ``test``
rows are held out from fitting: the weekly quality check reads only those.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from training.model import TaskModel

REFERENCE_ARTIFACT = "monitoring/reference.parquet"
#: Rows kept from the test month: enough for stable drift tests, small in the registry.
REFERENCE_ROWS = 50_000
#: A province with fewer test-month rows than this gets more of its own months.
PROVINCE_ROWS = 2_000
#: Where a reference row comes from; only ``test`` rows may judge the model's quality.
PARTS = ("test", "valid", "train")
#: Prefix of the columns holding the tested model's outputs (``tested_p_0``, ...): the served
#: model is refit on every labelled row, the held-out rows included, so its quality there is
#: read from the model that was tested on them.
TESTED = "tested_p_"


def _rows_for(
    model: TaskModel, rows: pd.DataFrame, label: str, part: str, tested: TaskModel | None = None
) -> pd.DataFrame:
    indicators = model.feature_names
    frame = rows[list(dict.fromkeys(["province", *indicators]))].reset_index(drop=True).copy()
    frame["target"] = rows[label].to_numpy()
    # the served model's predictions, as the weeks will record them (what prediction drift compares)
    # the rules over the model (the black list caps the credit grade) as the served answers apply them
    frame[model.task.prediction_column] = model.task.kind.decide(
        model.probabilities(rows[indicators]), None, rows
    )
    frame["reference_part"] = part
    p = (tested or model).probabilities(rows[indicators])
    for k, column in enumerate(np.asarray(p).reshape(len(frame), -1).T):
        frame[f"{TESTED}{k}"] = column
    return frame


def tested_probabilities(reference: pd.DataFrame) -> np.ndarray | None:
    """The tested model's outputs on reference rows (one column, or one per class), as logged;
    None for a reference logged before they were kept."""
    columns = sorted(
        (c for c in reference.columns if c.startswith(TESTED)), key=lambda c: int(c[len(TESTED) :])
    )
    if not columns:
        return None
    values = reference[columns].to_numpy(dtype=float)
    return values[:, 0] if len(columns) == 1 else values


def reference_columns(reference: pd.DataFrame) -> list[str]:
    """The columns of a reference that are not indicators: what drift tests leave out."""
    return ["province", "target", "reference_part", *(c for c in reference.columns if c.startswith(TESTED))]


def reference_frame(
    model: TaskModel,
    parts: Mapping[str, pd.DataFrame],
    label: str,
    max_rows: int = REFERENCE_ROWS,
    province_rows: int = PROVINCE_ROWS,
    seed: int = 0,
    tested: TaskModel | None = None,
) -> pd.DataFrame:
    """Indicators, province, label (as ``target``), prediction and ``reference_part`` of a
    sample of the test month, topped up per small province from its validation and then
    training rows (newest months first) to ``province_rows``.

    ``parts`` maps ``test``/``valid``/``train`` to the split's raw rows (``Dataset.frames``);
    only ``test`` is required. ``tested``: the model tested on the held-out rows, when the
    served ``model`` was refit on them (its outputs go to ``tested_p_*``)."""
    test = parts["test"]
    if len(test) > max_rows:
        test = test.sample(max_rows, random_state=seed)
    pieces = [_rows_for(model, test, label, "test", tested)] if len(test) else []
    have = test["province"].astype(str).value_counts()
    provinces = sorted(
        set(have.index) | {str(p) for part in parts.values() for p in part["province"].unique()}
    )
    for province in provinces:
        missing = province_rows - int(have.get(province, 0))
        for part in PARTS[1:]:
            if missing <= 0 or part not in parts:
                break
            own = parts[part][parts[part]["province"].astype(str) == province]
            # a random sample of the newest months (rows come in the order lines opened)
            own = own.sample(frac=1.0, random_state=seed)
            if "month" in own:
                own = own.sort_values("month", ascending=False, kind="stable")
            own = own.head(missing)
            if len(own):
                pieces.append(_rows_for(model, own, label, part, tested))
                missing -= len(own)
    return pd.concat(pieces, ignore_index=True)


def log_reference(
    model: TaskModel, parts: Mapping[str, pd.DataFrame], label: str, tested: TaskModel | None = None
) -> None:
    """Log the reference into the active MLflow run (call inside the training run)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        reference_frame(model, parts, label, tested=tested).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(REFERENCE_ARTIFACT).parent))
