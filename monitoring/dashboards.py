"""The Evidently workspace the operations team opens: a project per province and task and one
per province's data quality, each with a dashboard that answers the weekly questions.

Each week adds two snapshots to a task's project: the drift report (the detail, one click
from the dashboard) and the week's **figures**: one row holding the numbers the weekly job
judged by (its drifted share counts an indicator only when distance *and* p-value say so,
which Evidently's own drifted-columns count does not), the thresholds it judged them
against and the champion's held-out score. The panels read the figures, so the dashboard
shows what raised (or did not raise) the alert.

The installed UI (Evidently 0.7) gives panels no axis range and no reference line: a
threshold is drawn as a series constant at its value, and two constant series at 0 and 1
keep a share's axis at 0-1 (its automatic axis showed ticks "0" and "1" for 0.308 and 0.559).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import MeanValue
from evidently.sdk.models import DashboardModel, DashboardPanelPlot, DashboardTabModel, PanelMetric
from evidently.sdk.panels import bar_plot_panel, counter_panel, line_plot_panel

from core.io import atomic_write_text
from core.logs import get_logger
from core.settings import Settings
from core.tasks import TASKS
from monitoring.data_quality import DIMENSIONS, QualityResult
from monitoring.drift import TaskDrift, Thresholds
from monitoring.record import monitoring_dir

log = get_logger("telcoml.monitoring")
#: The tag of the figures snapshots: the panels read only these.
FIGURES_TAG = "weekly figures"
#: Marks the panels this module owns, so a re-run replaces them and leaves a user's own panels.
OWNER = "telcoml"
#: Titles of the panels earlier versions added (Evidently's own drift counts, unpinned axes).
LEGACY_TITLES = {"Share of drifted indicators", "Prediction drift"}
#: Reports are for the operations team to read.
REPORT_MODE = 0o644


def task_project(province: str, task: str) -> str:
    return f"{province} · {task}"


def quality_project(province: str) -> str:
    return f"{province} · data quality"


# -- the week's figures: pure, frames in, an Evidently snapshot out ----------------------------


def _figures_snapshot(figures: dict[str, float | None], name: str, tags: list[str], timestamp: datetime):
    """A one-row Evidently report whose ``MeanValue`` per column is the figure itself; a figure
    the week does not have (quality before labels mature) is left out, so its line has a gap."""
    known = {k: float(v) for k, v in figures.items() if v is not None and np.isfinite(v)}
    frame = pd.DataFrame([known])
    definition = DataDefinition(numerical_columns=list(frame.columns))
    return Report([MeanValue(column=c) for c in frame.columns]).run(
        Dataset.from_pandas(frame, data_definition=definition),
        timestamp=timestamp,
        name=name,
        tags=[*tags, FIGURES_TAG],
    )


def task_figures(drift: TaskDrift, thresholds: Thresholds) -> dict[str, float | None]:
    """What the weekly job judged a model by, and against what."""
    champion = drift.quality_champion
    return {
        "drifted_feature_share": drift.drifted_feature_share,
        "drifted_feature_share_threshold": thresholds.drifted_feature_share,
        "drifted_features": drift.drifted_features,
        "prediction_drift_score": drift.prediction_drift_score,
        "prediction_drift_threshold": thresholds.prediction_drift_score,
        "customers": drift.rows_current,
        "labels_matured": drift.labels_matured,
        "quality_current": drift.quality_current,
        "quality_champion": champion,
        # the score below which the drop reaches the alert's minimum effect
        "quality_alert_below": None if champion is None else champion * (1 - thresholds.quality_drop),
        "outcome_observed": drift.outcome_observed,
        "outcome_expected": drift.outcome_expected,
        "target_drift_score": drift.target_drift_score,
        "indicator_drift_threshold": thresholds.indicator_drift_score,
        "axis_0": 0.0,
        "axis_1": 1.0,
    }


def quality_figures(quality: QualityResult) -> dict[str, float | None]:
    """A week's data-quality checks passed and failed per dimension."""
    figures: dict[str, float | None] = {"customers": quality.rows}
    for dimension in DIMENSIONS:
        result = quality.dimensions.get(dimension, {"passed": 0, "failed": 0})
        figures[f"{dimension}_failed"] = result["failed"]
        figures[f"{dimension}_passed"] = result["passed"]
    return figures


def task_figures_snapshot(drift: TaskDrift, thresholds: Thresholds, timestamp: datetime):
    return _figures_snapshot(
        task_figures(drift, thresholds),
        f"{drift.province} {drift.task} {drift.week} figures",
        [drift.province, drift.task, drift.week],
        timestamp,
    )


def quality_figures_snapshot(quality: QualityResult, timestamp: datetime):
    return _figures_snapshot(
        quality_figures(quality),
        f"{quality.province} data quality {quality.week} figures",
        [quality.province, "data_quality", quality.week],
        timestamp,
    )


# -- the panels ---------------------------------------------------------------------------------


def _series(column: str, legend: str) -> PanelMetric:
    return PanelMetric(
        legend=legend, metric="MeanValue", metric_labels={"column": column}, tags=[FIGURES_TAG]
    )


def _share_panel(
    title: str, column: str, legend: str, threshold: str, threshold_legend: str, description: str
) -> DashboardPanelPlot:
    """A line over the weeks on a 0-1 axis with its alert threshold drawn."""
    return line_plot_panel(
        title,
        [
            _series(column, legend),
            _series(threshold, threshold_legend),
            _series("axis_0", "0 (axis)"),
            _series("axis_1", "1 (axis)"),
        ],
        description=description,
        size="half",
    )


def task_panels(task: str) -> list[DashboardPanelPlot]:
    """A task's dashboard: this week's counts, drift of indicators and prediction against the
    alert thresholds, quality against the champion's held-out score, target drift."""
    t = TASKS[task]
    metric = t.kind.headline_label
    panels = [
        counter_panel(
            "This week",
            [
                _series("drifted_features", "indicators drifted"),
                _series("customers", "customers answered"),
                _series("labels_matured", "labels matured"),
            ],
            description="the last week's figures; the drift report of each week is under Reports",
        ),
        _share_panel(
            "Indicators drifted (share of the model's indicators)",
            "drifted_feature_share",
            "drifted share",
            "drifted_feature_share_threshold",
            "alert threshold",
            "an indicator drifted when its distance reaches the minimum effect and its p-value is "
            "significant",
        ),
        _share_panel(
            "Prediction drift (distance from the reference)",
            "prediction_drift_score",
            f"{t.prediction_column} drift",
            "prediction_drift_threshold",
            "alert threshold",
            "alerted when the distance reaches the threshold and its p-value is significant",
        ),
        line_plot_panel(
            f"Model quality ({metric}) once labels mature",
            [
                _series("quality_current", f"{metric} this week"),
                _series("quality_champion", f"{metric} of the champion, held-out customers"),
                _series("quality_alert_below", "alert below (drop threshold)"),
                _series("axis_0", "0 (axis)"),
                _series("axis_1", "1 (axis)"),
            ],
            description="a gap: labels of that week have not matured (a month after the snapshot)",
            size="half",
        ),
        _share_panel(
            "Target drift (shown, not alerted)",
            "target_drift_score",
            "target drift",
            "indicator_drift_threshold",
            "an indicator's minimum effect",
            "the matured labels against the reference's labels",
        ),
    ]
    if t.kind.expected_rate(np.zeros(1)) is not None:  # an event model: its rate, observed against expected
        panels.append(
            line_plot_panel(
                "Event rate once labels mature",
                [_series("outcome_observed", "observed"), _series("outcome_expected", "the model expected")],
                description="alerted when observed/expected moves by the outcome threshold, beyond the "
                "model's record on the held-out customers",
                size="half",
            )
        )
    return panels


def quality_panels() -> list[DashboardPanelPlot]:
    """A province's data-quality dashboard: the checks' results per dimension of the documents."""
    failed = [_series(f"{d}_failed", d) for d in DIMENSIONS]
    return [
        counter_panel("Failed checks this week, per dimension", failed, description="0 everywhere: pass"),
        counter_panel(
            "Checks passed this week, per dimension",
            [_series(f"{d}_passed", d) for d in DIMENSIONS],
            description="checks come from the indicator library (nullability, ranges and code lists)",
        ),
        bar_plot_panel("Failed checks per dimension, by week", failed, size="half", stacked=True),
        bar_plot_panel("Customers recorded, by week", [_series("customers", "customers")], size="half"),
    ]


def _owned(panel: DashboardPanelPlot) -> bool:
    return panel.plot_params.get("owner") == OWNER or panel.title in LEGACY_TITLES


def _signature(panels: list[DashboardPanelPlot]) -> list[str]:
    return [json.dumps(p.dict(exclude={"id"}), sort_keys=True, default=str) for p in panels]


def with_panels(dashboard: DashboardModel, panels: list[DashboardPanelPlot]) -> DashboardModel | None:
    """``dashboard`` with this module's panels replaced by ``panels`` (a user's own panels and
    tabs kept); None when it already holds exactly these, so a re-run writes nothing."""
    panels = [p.copy(update={"plot_params": {**p.plot_params, "owner": OWNER}}) for p in panels]
    mine = [p for p in dashboard.panels if _owned(p)]
    if _signature(mine) == _signature(panels):
        return None
    dropped = {p.id for p in mine}
    others = [p for p in dashboard.panels if p.id not in dropped]
    tabs = [t.copy(update={"panels": [i for i in t.panels if i not in dropped]}) for t in dashboard.tabs]
    if tabs:  # the UI shows a tab's panels: ours go to the first tab
        tabs[0].panels.extend(p.id for p in panels)
    else:
        tabs = [DashboardTabModel(title="Weekly", panels=[p.id for p in panels])]
    return DashboardModel(tabs=tabs, panels=[*panels, *others])


# -- the workspace -------------------------------------------------------------------------------


class EvidentlyProjects:
    """The Evidently workspace: projects with their dashboards, two snapshots per project and week."""

    def __init__(self, settings: Settings):
        from evidently.ui.workspace import Workspace

        self.path = monitoring_dir(settings) / "workspace"
        self.workspace = Workspace(str(self.path))
        self.index_path = self.path / "telcoml_index.json"
        self.index = json.loads(self.index_path.read_text()) if self.index_path.exists() else {}

    def project_id(self, name: str, panels: list[DashboardPanelPlot]) -> str:
        """The project called ``name`` (created if new), its dashboard holding ``panels``."""
        found = self.workspace.search_project(name)
        project = (
            found[0]
            if found
            else self.workspace.create_project(name, description=f"telcoml weekly monitoring: {name}")
        )
        updated = with_panels(self.workspace.get_dashboard(project.id), panels)
        if updated is not None:
            self.workspace.save_dashboard(project.id, updated)
        return str(project.id)

    def _replace(self, project_id: str, key: str, snapshot, name: str) -> None:
        if key in self.index:
            try:
                self.workspace.delete_run(project_id, self.index[key])
            except Exception:  # already gone
                pass
        self.index[key] = str(self.workspace.add_run(project_id, snapshot, name=name).id)
        atomic_write_text(json.dumps(self.index, indent=1), self.index_path, mode=REPORT_MODE)

    def add_task_week(self, drift: TaskDrift, thresholds: Thresholds, report, timestamp: datetime) -> None:
        """The week's drift report and figures, replacing those of an earlier run of the same week."""
        name = task_project(drift.province, drift.task)
        pid = self.project_id(name, task_panels(drift.task))
        self._replace(pid, f"{name}|{drift.week}", report, drift.week)
        figures = task_figures_snapshot(drift, thresholds, timestamp)
        self._replace(pid, f"{name}|{drift.week}|figures", figures, f"{drift.week} figures")

    def add_quality_week(self, quality: QualityResult, report, timestamp: datetime) -> None:
        """The week's data-quality test report and its per-dimension figures."""
        name = quality_project(quality.province)
        pid = self.project_id(name, quality_panels())
        self._replace(pid, f"{name}|{quality.week}", report, quality.week)
        figures = quality_figures_snapshot(quality, timestamp)
        self._replace(pid, f"{name}|{quality.week}|figures", figures, f"{quality.week} figures")


def dashboard_data(workspace: Path) -> dict[str, dict[str, dict[str, list[float | None]]]]:
    """What ``evidently ui`` draws, read through its own storage: per project, per panel, per
    legend, the values over the weeks. For checks and notebooks; the UI needs none of it."""
    from evidently.legacy.utils.sync import async_to_sync
    from evidently.ui.service.base import SeriesFilter
    from evidently.ui.service.storage.local import create_local_project_manager
    from evidently.ui.service.type_aliases import ZERO_UUID
    from evidently.ui.workspace import Workspace

    manager = create_local_project_manager(str(workspace), False)
    out: dict[str, dict[str, dict[str, list[float | None]]]] = {}
    for project in Workspace(str(workspace)).list_projects():
        dashboard = async_to_sync(manager.get_project_dashboard(ZERO_UUID, project.id))
        panels = out.setdefault(project.name, {})
        for panel in dashboard.panels:
            filters = [
                SeriesFilter(tags=v.tags, metadata=v.metadata, metric=v.metric, metric_labels=v.metric_labels)
                for v in panel.values
            ]
            data = async_to_sync(manager.get_data_series(ZERO_UUID, project.id, filters, None, None))
            panels[panel.title] = {panel.values[s.filter_index].legend: s.values for s in data.series}
    return out
