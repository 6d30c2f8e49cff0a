"""The weekly monitoring job: every province and task, one ISO week against the champion.

For each province with recorded scores and each task: the champion answering that
province (its own, else the national one), the champion's reference, the week's
records, labels where they have matured; Evidently's drift report and the four-dimension
data-quality report. Out:

* ``<workdir>/monitoring/reports/<week>/<PROV>/<task>.html`` and ``.json`` (and
  ``data_quality.html``/``.json``), ``summary.md``/``summary.csv`` across provinces and
  tasks, ``alerts.json``; every alert is also appended to ``monitoring/alerts.jsonl``;
* an Evidently workspace (``monitoring/workspace``) with a project per province and
  task and one per province's data quality, each with a dashboard (``monitoring.dashboards``);
* an MLflow run per province and task in the ``telcoml/monitoring`` experiment, tagged with
  the province, task, week and champion version, described in words, with the summary as
  metrics and the reports attached.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from core.errors import NotReadyError
from core.io import atomic_write_text
from core.logs import get_logger
from core.settings import Settings
from core.tasks import TASKS, Task
from features.provinces import load_province
from monitoring.dashboards import REPORT_MODE, EvidentlyProjects
from monitoring.data_quality import QualityResult, quality_report
from monitoring.drift import TaskDrift, Thresholds, breaches, drift_report
from monitoring.journal import recover_journal
from monitoring.model_quality import QualityChange, RateChange, outcome_rate_change, quality_change
from monitoring.record import (
    customer_keys,
    iso_week,
    monitoring_dir,
    read_week,
    recorded_weeks,
    week_bounds,
)
from monitoring.reference import load_reference
from training.reference import reference_columns, tested_probabilities
from training.registry import champion_version, load_task_model

log = get_logger("telcoml.monitoring")
#: A label is known this long after its snapshot month ends (churn is next month's closing).
LABEL_DELAY = timedelta(days=31)
#: Below this many matured labels a week's quality is not judged (and, for churn, below
#: this many churners or stayers: an AUC on a dozen churners is noise).
MIN_LABELS = 200
MIN_PER_CLASS = 30
#: Every weekly monitoring run goes here, tagged with province, task, week and champion version
#: (the training experiments keep training runs only).
MONITORING_EXPERIMENT = "telcoml/monitoring"
MONITORING_EXPERIMENT_DESCRIPTION = (
    "Weekly monitoring: one run per province, task and ISO week, against the champion answering "
    "that province (tags province, task, week, model_name, model_version, alert). Metrics: drift "
    "of indicators and prediction, quality once labels mature; the week's reports are attached. "
    "Written by `telcoml monitor`."
)
#: Exit code of ``telcoml monitor`` when an alert was raised (errors exit 1).
ALERT_EXIT_CODE = 3


def thresholds_for(settings: Settings, province: str) -> Thresholds:
    """The platform's thresholds, overridden by the province file's ``drift_thresholds``."""
    values = {
        "drifted_feature_share": settings.drifted_feature_share,
        "prediction_drift_score": settings.prediction_drift_score,
        "quality_drop": settings.quality_drop,
        "indicator_drift_score": settings.indicator_drift_score,
        "outcome_rate_change": settings.outcome_rate_change,
        "confidence": settings.alert_confidence,
    }
    config = load_province(settings, province)
    if config is not None and config.drift_thresholds:
        values.update(config.drift_thresholds)
    return Thresholds(**values)


@dataclass(frozen=True)
class Champion:
    task: Task
    model_name: str
    version: str


def champion_for(client: MlflowClient, t: Task, province: str) -> Champion | None:
    """The champion answering ``province``: its own if registered, else the national one.
    (Its national test score is not what a province is judged against: ``_judged``.)"""
    for name in (t.model_name(province), t.model_name()):
        found = champion_version(client, name)
        if found is not None:
            return Champion(t, name, str(found.version))
    return None


def matured_labels(settings: Settings, province: str, today: date) -> pd.DataFrame:
    """The province's labels known by ``today``, keyed like the records (read once per week and province)."""
    from training.data import load_truth

    try:
        labels = load_truth(settings, "labels", province)
    except NotReadyError:
        return pd.DataFrame(columns=["customer_key", "snapshot"])
    month_end = pd.to_datetime(labels["event_timestamp"], utc=True).dt.date
    labels = labels[[d + LABEL_DELAY <= today for d in month_end]]
    keyed = labels.drop(columns=["msisdn", "event_timestamp", "month", "province"], errors="ignore")
    keyed.insert(0, "customer_key", customer_keys(settings, labels["msisdn"]))
    keyed.insert(1, "snapshot", labels["month"].astype(str).to_numpy())
    return keyed.drop_duplicates(["customer_key", "snapshot"])


def record_labels(matured: pd.DataFrame, t: Task, records: pd.DataFrame) -> pd.Series:
    """The true label of each record whose label has matured (NaN otherwise)."""
    if t.label not in matured:
        return pd.Series(np.nan, index=records.index, dtype=object)
    snapshot = pd.to_datetime(records["features_as_of"], utc=True).dt.strftime("%Y-%m")
    lookup = pd.DataFrame(
        {"customer_key": records["customer_key"].to_numpy(), "snapshot": snapshot.to_numpy()}
    )
    joined = lookup.merge(
        matured[["customer_key", "snapshot", t.label]], on=["customer_key", "snapshot"], how="left"
    )
    return pd.Series(joined[t.label].to_numpy(), index=records.index)


def province_reference(reference: pd.DataFrame, province: str) -> pd.DataFrame:
    """The province's own rows of a champion's reference (its test month, topped up from its
    earlier months where that is small: ``training.reference``); empty when it has none.
    Never the national mix: a province's customers differ from it by design."""
    own = reference[reference["province"].astype(str) == province].reset_index(drop=True)
    if "reference_part" not in own:  # a reference logged before parts were kept: all test rows
        own = own.assign(reference_part="test")
    return own


def _judged(
    champion: Champion, reference: pd.DataFrame, current: pd.DataFrame, target: pd.Series, confidence: float
) -> tuple[QualityChange | None, RateChange | None, dict[str, float]]:
    """What this week's matured labels say against the province's held-out reference rows (the
    champion's test month, never rows it was fitted on): the headline metric's change with its
    interval, for an event model the event rate against the model's expectation, and the
    business's rates of the week (the kind's metrics). None (empty) where the held-out rows
    cannot judge (too few, or one class). The model reads its own inputs from the records,
    ``province`` included."""
    t = champion.task
    held_out = reference[(reference["reference_part"] == "test") & reference["target"].notna()]
    known = target.notna().to_numpy()
    if len(held_out) < MIN_LABELS or known.sum() < MIN_LABELS:
        return None, None, {}
    model = load_task_model(f"models:/{champion.model_name}/{champion.version}")
    y_reference = t.kind.encode_label(held_out["target"].reset_index(drop=True))
    # the tested model's outputs: the served one was refit on these rows (older references: the served)
    tested = tested_probabilities(held_out)
    p_reference = tested if tested is not None else model.probabilities(held_out)
    y_current = t.kind.encode_label(pd.Series(target[known].to_numpy()))
    p_current = model.probabilities(current.loc[known])
    change = (
        quality_change(t, y_reference, p_reference, y_current, p_current, confidence)
        if t.kind.judgeable(held_out["target"], MIN_PER_CLASS) and t.kind.judgeable(target, MIN_PER_CLASS)
        else None
    )
    rates = t.kind.metrics(y_current, p_current) if t.kind.judgeable(target, MIN_PER_CLASS) else {}
    rates = {k: round(float(v), 4) for k, v in rates.items() if np.isfinite(v)}
    return change, outcome_rate_change(t, y_reference, p_reference, y_current, p_current), rates


@dataclass
class WeekResult:
    week: str
    report_dir: Path
    drift: list[TaskDrift] = field(default_factory=list)
    quality: list[QualityResult] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """The manager's table: one row per province and task."""
        rows = []
        quality = {q.province: q for q in self.quality}
        alerted = {(a["province"], a["task"]) for a in self.alerts}
        for d in self.drift:
            q = quality.get(d.province)
            national = d.model == TASKS[d.task].model_name()
            rows.append(
                {
                    "province": d.province,
                    "task": d.task,
                    "champion": f"{'national' if national else 'province'} v{d.version}",
                    "customers": d.rows_current,
                    "drifted": f"{d.drifted_features}/{d.features}",
                    "prediction_drift": d.prediction_drift_score,
                    "quality": "—"
                    if d.quality_current is None
                    else f"{d.quality_metric} {d.quality_current:.3f} vs {d.quality_champion:.3f} held out: "
                    f"{-d.quality_drop:+.1%} [{-d.quality_drop_high:+.1%}, {-d.quality_drop_low:+.1%}]",
                    "outcome": "—"
                    if d.outcome_observed is None
                    else f"{d.outcome_observed:.2%} vs {d.outcome_expected:.2%} expected",
                    "business_rates": _business_rates(d),
                    "data_quality": "—"
                    if q is None
                    else (
                        "pass"
                        if q.passed
                        else "fail: " + ", ".join(k for k, v in q.dimensions.items() if v["failed"])
                    ),
                    "top_moved": ", ".join(m.indicator for m in d.moved[:3]) or "—",
                    "status": "ALERT" if (d.province, d.task) in alerted else "ok",
                }
            )
        return pd.DataFrame(rows)


def _business_rates(d) -> str:
    """The week's business rates in the kind's words (``Kind.summary``), or a dash."""
    if not d.business_rates:
        return "—"
    try:
        return TASKS[d.task].kind.summary({f"test_{k}": v for k, v in d.business_rates.items()})
    except KeyError:  # a rate the week could not compute
        return "—"


def _atomic_text(path: Path, text: str) -> None:
    atomic_write_text(text, path, mode=REPORT_MODE)


def _save_snapshot(snapshot, html: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=html.parent, prefix=f".{html.name}.", suffix=".html")
    os.close(fd)
    snapshot.save_html(tmp)
    os.chmod(tmp, REPORT_MODE)
    os.replace(tmp, html)


def run_description(d: TaskDrift, alert: dict | None) -> str:
    """What a monitoring run says in MLflow's description: which model, which week, the verdict."""
    scope = "national" if d.model == TASKS[d.task].model_name() else "province's own"
    lines = [
        f"Weekly monitoring of {d.task} in {d.province}, {d.week}: {d.rows_current:,} customers answered "
        f"by {d.model} v{d.version} ({scope} champion).",
        f"Indicators drifted: {d.drifted_features} of {d.features}; prediction drift "
        f"{d.prediction_drift_score} (p = {d.prediction_p_value}).",
    ]
    if d.quality_current is not None:
        lines.append(
            f"Quality: {d.quality_metric} {d.quality_current} against {d.quality_champion} on the province's "
            f"held-out customers ({d.labels_matured:,} labels matured)."
        )
    else:
        lines.append(f"Quality not judged: {d.labels_matured:,} labels matured.")
    if alert:
        crossed = "; ".join(f"{b['check']} {b['value']} ≥ {b['threshold']}" for b in alert["breaches"])
        lines.append(f"ALERT: {crossed}")
        lines.append(alert["action"])
    else:
        lines.append("No alert.")
    return "\n\n".join(lines)


def _monitoring_experiment(settings: Settings) -> str:
    """The one experiment of monitoring runs (apart from the training experiments), described."""
    from training.registry import configure_mlflow

    experiment_id = configure_mlflow(settings, MONITORING_EXPERIMENT)
    MlflowClient().set_experiment_tag(experiment_id, "mlflow.note.content", MONITORING_EXPERIMENT_DESCRIPTION)
    return experiment_id


def _log_mlflow(settings: Settings, d: TaskDrift, files: list[Path], alert: dict | None) -> str:
    _monitoring_experiment(settings)
    with mlflow.start_run(
        run_name=f"{d.week}-{d.province}-{d.task}", description=run_description(d, alert)
    ) as run:
        mlflow.set_tags(
            {
                "monitoring": "weekly",
                "week": d.week,
                "province": d.province,
                "task": d.task,
                "model_name": d.model,
                "model_version": d.version,
                "champion": f"{d.model}/{d.version}",
                "alert": "yes" if alert else "no",
            }
        )
        metrics = {
            "drifted_feature_share": d.drifted_feature_share,
            "drifted_features": d.drifted_features,
            "prediction_drift_score": d.prediction_drift_score,
            "rows_current": d.rows_current,
            "labels_matured": d.labels_matured,
        }
        for key in (
            "quality_current",
            "quality_drop",
            "quality_drop_low",
            "quality_drop_high",
            "outcome_observed",
            "outcome_expected",
            "target_drift_score",
        ):
            if getattr(d, key) is not None:
                metrics[key] = getattr(d, key)
        metrics.update({f"week_{k}": v for k, v in d.business_rates.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
        for f in files:
            mlflow.log_artifact(str(f), "monitoring")
    MlflowClient().set_model_version_tag(d.model, d.version, "monitoring.last_week", d.week)
    return run.info.run_id


def _alert(d: TaskDrift, found: list[dict]) -> dict:
    t = TASKS[d.task]
    province_flag = "" if d.model == t.model_name() else f" --province {d.province}"
    return {
        "province": d.province,
        "task": d.task,
        "week": d.week,
        "model": d.model,
        "version": d.version,
        "raised_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "breaches": found,
        "moved_indicators": [asdict(m) for m in d.moved],
        "action": (
            f"Retrain: `telcoml train --task {d.task}{province_flag}`. The champion/challenger gate "
            f"decides whether the new version replaces {d.model} v{d.version}; then `POST /reload` "
            "and `telcoml prepare`."
        ),
    }


def monitor_week(
    settings: Settings,
    week: str,
    provinces: list[str] | None = None,
    tasks: list[str] | None = None,
    today: date | None = None,
    progress: Callable[[str], None] | None = None,
    log_to_mlflow: bool = True,
) -> WeekResult:
    """Run the weekly job for ``week`` (``2026-W44``); a week without records is an error."""
    from training.registry import configure_mlflow

    monday, sunday = week_bounds(week)
    today = today or datetime.now(UTC).date()
    # answers journaled by a server that was killed before writing them are part of the week
    recover_journal(settings)
    records = read_week(settings, week)
    if records.empty:
        known = recorded_weeks(settings)
        raise NotReadyError(
            f"no scores recorded for week {week} ({monday}..{sunday}) under "
            f"{monitoring_dir(settings) / 'scores'}: serving and batch scoring record them "
            f"as they score; weeks with records: {', '.join(known[-8:]) or 'none'}"
        )
    wanted = [p.upper() for p in provinces] if provinces else sorted(records["province"].unique())
    missing = [p for p in wanted if p not in set(records["province"])]
    if missing:
        raise NotReadyError(f"no scores recorded for province(s) {', '.join(missing)} in week {week}")
    configure_mlflow(settings)  # the registry; the monitoring experiment is made when a run is logged
    client = MlflowClient()
    out_dir = monitoring_dir(settings) / "reports" / week
    projects = EvidentlyProjects(settings)
    stamp = datetime.combine(monday, time(), tzinfo=UTC)
    result = WeekResult(week, out_dir)
    for province in wanted:
        current_all = records[records["province"] == province].reset_index(drop=True)
        thresholds = thresholds_for(settings, province)
        known_labels = matured_labels(settings, province, today)
        snapshot, quality = quality_report(current_all, province, week, timestamp=stamp)
        folder = out_dir / province
        folder.mkdir(parents=True, exist_ok=True)
        _save_snapshot(snapshot, folder / "data_quality.html")
        _atomic_text(
            folder / "data_quality.json", json.dumps(quality.as_dict(), indent=2, ensure_ascii=False)
        )
        projects.add_quality_week(quality, snapshot, stamp)
        result.quality.append(quality)
        for name in tasks or list(TASKS):
            t = TASKS[name]
            if progress:
                progress(f"{province} {name}")
            champion = champion_for(client, t, province)
            if champion is None:
                result.skipped.append(f"{province} {name}: no champion registered")
                continue
            reference = province_reference(
                load_reference(settings, champion.model_name, champion.version), province
            )
            if reference.empty:
                result.skipped.append(
                    f"{province} {name}: {champion.model_name} v{champion.version} has no reference rows "
                    f"of {province} (trained before its data arrived); retrain it to monitor {province}"
                )
                continue
            indicators = [
                c
                for c in reference.columns
                if c not in (*reference_columns(reference), TASKS[name].prediction_column)
            ]
            unrecorded = [c for c in indicators if c not in current_all]
            if unrecorded:  # e.g. a custom indicator added to the province file after these records
                result.skipped.append(
                    f"{province} {name}: not recorded this week, not tested: " + ", ".join(unrecorded)
                )
                indicators = [c for c in indicators if c in current_all]
            # judge the champion on the rows it answered itself (not before a mid-week reload)
            uri = f"models:/{champion.model_name}/{champion.version}"
            answered = current_all.get(f"model_{name}", pd.Series(dtype=object)) == uri
            if not answered.any():  # records from before model URIs were kept: rows with a prediction
                answered = current_all[TASKS[name].prediction_column].notna()
            if not answered.any():
                result.skipped.append(f"{province} {name}: no customer answered by a {name} model this week")
                continue
            current = current_all[answered].reset_index(drop=True)
            target = record_labels(known_labels, t, current)
            matured = int(target.notna().sum())
            with_target = matured >= MIN_LABELS
            frame = current.assign(target=target) if with_target else current
            snap, drift = drift_report(
                reference,
                frame,
                name,
                indicators,
                thresholds,
                with_target,
                province=province,
                week=week,
                model=champion.model_name,
                version=champion.version,
                timestamp=stamp,
            )
            drift.labels_matured = matured
            change, rate, drift.business_rates = (
                _judged(champion, reference, current, target, thresholds.confidence)
                if with_target
                else (None, None, {})
            )
            if rate is not None:
                drift.outcome_expected, drift.outcome_observed = (
                    round(rate.expected, 4),
                    round(rate.observed, 4),
                )
                drift.outcome_p_value = float(f"{rate.p_value:.3g}")
            if change is not None:
                drift.quality_metric, drift.quality_current = change.metric, round(change.current, 4)
                drift.quality_champion, drift.quality_reference_rows = (
                    round(change.reference, 4),
                    change.reference_rows,
                )
                drift.quality_drop = round(change.drop, 4)
                drift.quality_drop_low, drift.quality_drop_high = round(change.low, 4), round(change.high, 4)
            drift.breaches = breaches(drift, thresholds)
            html, summary = folder / f"{name}.html", folder / f"{name}.json"
            _save_snapshot(snap, html)
            alert = _alert(drift, drift.breaches) if drift.breaches else None
            _atomic_text(
                summary,
                json.dumps(
                    {**drift.as_dict(), "thresholds": asdict(thresholds), "alert": alert},
                    indent=2,
                    ensure_ascii=False,
                    default=str,
                ),
            )
            projects.add_task_week(drift, thresholds, snap, stamp)
            if log_to_mlflow:
                _log_mlflow(settings, drift, [html, summary], alert)
            result.drift.append(drift)
            if alert:
                result.alerts.append(alert)
    _write_summary(settings, result)
    return result


def _write_summary(settings: Settings, result: WeekResult) -> None:
    table = result.table()
    result.report_dir.mkdir(parents=True, exist_ok=True)
    _atomic_text(result.report_dir / "summary.csv", table.to_csv(index=False))
    lines = [
        f"# telcoml weekly monitoring — {result.week}",
        "",
        f"{len(result.alerts)} alert(s); {len(result.drift)} model(s) checked in "
        f"{len({d.province for d in result.drift})} province(s).",
        "",
    ]
    if not table.empty:
        lines += ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    for a in result.alerts:
        moved = "; ".join(
            f"{m['indicator']} ({m['name_zh']}) {m['reference']} → {m['current']} ({m['change']})"
            for m in a["moved_indicators"]
        )
        lines += [
            "",
            f"**ALERT {a['province']} {a['task']}**: "
            + "; ".join(
                f"{b['check']} {b['value']} ≥ {b['threshold']} ({b['evidence']})" for b in a["breaches"]
            ),
            f"moved: {moved or '—'}",
            f"action: {a['action']}",
        ]
    for s in result.skipped:
        lines += ["", f"skipped: {s}"]
    _atomic_text(result.report_dir / "summary.md", "\n".join(lines) + "\n")
    _atomic_text(result.report_dir / "alerts.json", json.dumps(result.alerts, indent=2, ensure_ascii=False))
    if result.alerts:
        with open(monitoring_dir(settings) / "alerts.jsonl", "a", encoding="utf-8") as f:
            for a in result.alerts:
                f.write(json.dumps(a, ensure_ascii=False) + "\n")


def weeks_between(first: str, last: str) -> list[str]:
    """Every ISO week from ``first`` to ``last`` inclusive."""
    start, _ = week_bounds(first)
    end, _ = week_bounds(last)
    weeks, day = [], start
    while day <= end:
        weeks.append(iso_week(day))
        day += timedelta(days=7)
    return weeks
