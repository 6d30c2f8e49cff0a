"""`telcoml campaign report`, `wave` and `simulate`: the wiring around ``serving.campaign_response``.

A report reads the campaign's export (``<workdir>/campaigns/<name>/``: the contacted list with its
wave plan, the control group, the definition) and the campaign's events in the feedback store,
measures them, and writes beside the weekly monitoring reports
(``<workdir>/monitoring/campaigns/<name>/<as-of>/``: ``report.json``, ``report.html``, the tables as
CSV and ``campaign_response.png``) and to MLflow (experiment ``telcoml/campaigns``, one run per
report, the uplift and its interval as metrics). ``wave`` writes the list of a later wave: the
customers whose earlier waves drew no closing answer. ``simulate`` is for the synthetic world only: the
world's customers answer the exported campaign by their hidden truth (``features.responses``), and
the answers arrive as the CRM's nightly feedback file would, through the same validation and store.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.errors import TelcomlError
from core.io import atomic_write_text
from core.settings import Settings
from features.feedback import FeedbackStore, ingest_feedback_files
from features.responses import simulate_responses, snapshot_oracle
from features.schemas import partition_path
from monitoring.record import monitoring_dir
from serving.campaign_config import Campaign
from serving.campaign_response import HARM_WEIGHT, due_for_wave, measure, waves_of
from serving.campaign_run import campaign_dir
from serving.campaigns import active_do_not_disturb

EXPERIMENT = "telcoml/campaigns"
_TABLES = ("by_best_channel", "by_wave", "by_channel", "by_contact_number")


@dataclass
class CampaignExport:
    """What ``telcoml campaign plan --export`` wrote, read back."""

    campaign: Campaign
    month: str
    contacted: pd.DataFrame
    control: pd.DataFrame


@dataclass
class CampaignReport:
    campaign: Campaign
    report: dict
    directory: Path
    run_id: str | None = None


def read_export(settings: Settings, name: str) -> CampaignExport:
    """The exported campaign ``name``, or TelcomlError naming the missing file."""
    directory = campaign_dir(settings, name)
    files = {
        "definition": directory / f"campaign_{name}.json",
        "list": directory / f"campaign_{name}.parquet",
        "control": directory / f"control_{name}.parquet",
    }
    for path in files.values():
        if not path.exists():
            raise TelcomlError(
                f"{path} is missing: run `telcoml campaign plan ... --export` for campaign {name} first"
            )
    campaign = Campaign.model_validate_json(files["definition"].read_text())
    contacted = pd.read_parquet(files["list"])
    control = pd.read_parquet(files["control"])
    if "best_channel" not in contacted and "wave_1_channel" in contacted:
        contacted["best_channel"] = contacted["wave_1_channel"]  # wave 1 is on the best channel
    month = next((str(f["snapshot_month"].iat[0]) for f in (control, contacted) if len(f)), "")
    return CampaignExport(campaign, month, contacted, control)


def report_campaign(
    settings: Settings, name: str, as_of: dt.date | None = None, log_to_mlflow: bool = True
) -> CampaignReport:
    """Measure campaign ``name`` on the answers received (as of ``as_of``, default: today or the
    latest answer's day, whichever is later) and write the report (see the module's text)."""
    export = read_export(settings, name)
    events = FeedbackStore(settings.feedback_store).campaign_events(name, export.campaign.province)
    if as_of is None:
        latest = events["time"].max().date() if len(events) else dt.date.min
        as_of = max(dt.date.today(), latest)
    report = measure(export.contacted, export.control, events, as_of)
    directory = monitoring_dir(settings) / "campaigns" / name / as_of.isoformat()
    _write(export, report, directory)
    out = CampaignReport(export.campaign, report, directory)
    if log_to_mlflow:
        out.run_id = _log(settings, export, report, directory)
    return out


def plain(report: dict) -> dict:
    """The report with its tables as lists of records (JSON)."""
    return {k: (v.to_dict("records") if isinstance(v, pd.DataFrame) else v) for k, v in report.items()}


def _write(export: CampaignExport, report: dict, directory: Path) -> None:
    from core.charts import campaign_response

    directory.mkdir(parents=True, exist_ok=True)
    for table in _TABLES:
        atomic_write_text(report[table].to_csv(index=False), directory / f"{table}.csv")
    chart = campaign_response(
        report["overall"],
        report["by_best_channel"],
        report["by_contact_number"],
        report["best_contact_frequency"],
        directory,
    )
    body = {"campaign": json.loads(export.campaign.model_dump_json()), "snapshot_month": export.month}
    atomic_write_text(json.dumps(body | plain(report), indent=2, default=str), directory / "report.json")
    atomic_write_text(_html(export, report, chart), directory / "report.html")


def _html(export: CampaignExport, report: dict, chart: Path) -> str:
    c, o = export.campaign, report["overall"]

    def pct(x):
        return "—" if x is None else f"{100 * x:.1f}%"

    summary = (
        f"<p>Contacted {o['contacted']:,} ({pct(o['rate_contacted'])} took the offer); control "
        f"{o['control']:,} ({pct(o['rate_control'])}). <b>Uplift {pct(o['uplift'])}</b>, 95% interval "
        f"{pct(o['low'])} to {pct(o['high'])}. Best contact frequency: "
        f"{report['best_contact_frequency'] or '—'} contacts in 90 days (an objection weighs "
        f"{HARM_WEIGHT:g} acceptances).</p>"
    )
    picture = base64.b64encode(chart.read_bytes()).decode()
    tables = "".join(
        f"<h2>{html.escape(t.replace('_', ' '))}</h2>" + report[t].to_html(index=False, float_format="%.3f")
        for t in _TABLES
        if len(report[t])
    )
    title = html.escape(f"Campaign {c.name} ({c.purpose}, {c.province}): responses as of {report['as_of']}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1><p>营销活动响应报告 · snapshot {html.escape(export.month)} · start {c.start}</p>"
        f"{summary}<img alt='uplift and answers by frequency' src='data:image/png;base64,{picture}'>"
        f"{tables}</body></html>"
    )


def _log(settings: Settings, export: CampaignExport, report: dict, directory: Path) -> str:
    import mlflow

    from training.registry import configure_mlflow

    c, o = export.campaign, report["overall"]
    configure_mlflow(settings, EXPERIMENT)
    description = (
        f"Response report of campaign {c.name} ({c.purpose}, {c.province}, snapshot {export.month}) "
        f"as of {report['as_of']}: take-up of the contacted against the random control group."
    )
    tags = {"campaign": c.name, "province": c.province, "purpose": c.purpose, "as_of": report["as_of"]}
    with mlflow.start_run(run_name=f"{c.name}-{report['as_of']}", tags=tags, description=description) as run:
        mlflow.log_params(
            {"control_share": c.control_share, "contact_cap": c.contact_cap, "waves": c.waves.max_waves}
        )
        metrics = {k: o[k] for k in ("contacted", "control", "rate_contacted", "rate_control", "uplift")}
        metrics |= {"uplift_low": o["low"], "uplift_high": o["high"], "events": report["events"]}
        metrics["best_contact_frequency"] = report["best_contact_frequency"]
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
        mlflow.log_artifacts(str(directory), artifact_path="report")
        return run.info.run_id


def wave_list(settings: Settings, name: str, wave: int) -> tuple[Path, int]:
    """The outbound list of wave ``wave`` of exported campaign ``name``: the customers still due it
    (``serving.campaign_response.due_for_wave``) less those who asked not to be disturbed since the
    export, with the wave's channel and date first; written beside the export as
    ``wave_<k>_<name>.csv``. Returns the file and its rows."""
    export = read_export(settings, name)
    c = export.campaign
    events = FeedbackStore(settings.feedback_store).campaign_events(name, c.province)
    try:
        due = due_for_wave(export.contacted, events, wave)
    except ValueError as err:
        raise TelcomlError(f"campaign {name}: {err}") from None
    day = c.start + dt.timedelta(days=(wave - 1) * c.waves.days_between)
    dnd_path = partition_path(settings.raw_dir, "do_not_disturb", c.province)
    dnd = active_do_not_disturb(pd.read_parquet(dnd_path) if dnd_path.exists() else None, day)
    due = due[~due["msisdn"].astype(str).isin(dnd)]
    first = ["msisdn", f"wave_{wave}_channel", f"wave_{wave}_channel_zh", f"wave_{wave}_date"]
    keep = [*first, *(col for col in due if not col.startswith("wave_"))]
    path = campaign_dir(settings, name) / f"wave_{wave}_{name}.csv"
    atomic_write_text(due[keep].assign(wave=wave).to_csv(index=False), path)
    return path, len(due)


def simulate_campaign(settings: Settings, name: str, seed: int = 0) -> tuple[Path, dict]:
    """The synthetic world answers exported campaign ``name``: its feedback file
    (``<campaign dir>/responses_<name>.jsonl``), ingested into the feedback store."""
    export = read_export(settings, name)
    c = export.campaign
    oracle_path = settings.truth_dir / "oracle" / f"{c.province}.parquet"
    if not oracle_path.exists():
        raise TelcomlError(
            f"{oracle_path} is missing: simulating answers needs the synthetic world's truth "
            "(a real province's answers come from its CRM: `telcoml feedback ingest`)"
        )
    oracle = snapshot_oracle(pd.read_parquet(oracle_path), export.month)
    events = simulate_responses(
        c.name,
        c.province,
        c.purpose,
        export.contacted,
        export.control,
        oracle,
        waves_of(export.contacted),
        seed,
    )
    path = campaign_dir(settings, name) / f"responses_{name}.jsonl"
    atomic_write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), path)
    (result,) = ingest_feedback_files(settings.feedback_store, [path])
    return path, result


__all__ = ["CampaignReport", "plain", "read_export", "report_campaign", "simulate_campaign", "wave_list"]
