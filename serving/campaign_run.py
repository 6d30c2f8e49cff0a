"""`telcoml campaign plan`: the wiring around ``serving.campaigns``' transforms.

Reads the province's latest snapshot from the offline store, the champions' decisions on it (the
CRM file's columns), the do-not-disturb requests the CRM fed back and, for a condition on cities,
the subscriber master; plans the campaign and, asked to export, writes under
``<workdir>/campaigns/<name>/`` the outbound system's list (Parquet and CSV), the suppressed
customers (masked numbers and the reason) and the control group, atomically and owner-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.io import atomic_write_parquet, atomic_write_text
from core.msisdn import mask_numbers
from core.settings import Settings
from core.tasks import crm_columns
from features.schemas import partition_path
from serving.batch import latest_month_for
from serving.campaign_config import Campaign
from serving.campaigns import SUPPRESSION_REASONS, Plan, active_do_not_disturb, plan, preview, wave_plan
from serving.champions import ModelSet
from serving.retention_list import snapshot
from training.explain import reasons

#: Whose reasons are a purpose's talking points: the evaluation the campaign acts on.
TALKING_POINTS = {
    "retention": "churn",
    "care": "credit_grade",
    "tariff_communication": "tariff_sensitivity",
    "cross_sell": "channel_preference",
    "dunning": "credit_grade",
}
#: Talking points per customer (the top reasons of the purpose's evaluation).
TOP_REASONS = 3


@dataclass
class CampaignResult:
    plan: Plan
    preview: dict
    files: dict[str, Path] = field(default_factory=dict)


def campaign_dir(settings: Settings, name: str) -> Path:
    return settings.workdir / "campaigns" / name


def _raw(settings: Settings, table: str, province: str) -> pd.DataFrame | None:
    path = partition_path(settings.raw_dir, table, province)
    return pd.read_parquet(path) if path.exists() else None


def run_campaign(
    settings: Settings,
    models: ModelSet,
    campaign: Campaign,
    month: str | None = None,
    export: bool = False,
    output_dir: Path | None = None,
) -> CampaignResult:
    """Plan ``campaign`` on its province's snapshot (default: the latest) and preview it; with
    ``export``, write the files (under ``output_dir``, default ``<workdir>/campaigns/<name>``)."""
    province = campaign.province
    month = month or latest_month_for(settings, province)
    frame = snapshot(settings, province, month)
    cities = None
    if campaign.targets.cities is not None:
        subscribers = _raw(settings, "subscribers", province)
        if subscribers is not None:
            cities = frame["msisdn"].map(subscribers.set_index("msisdn")["city"])
    dnd = active_do_not_disturb(_raw(settings, "do_not_disturb", province), campaign.start)
    directory = (output_dir or campaign_dir(settings, campaign.name)) if export else None
    return campaign_on(models, campaign, month, frame, dnd, cities, directory)


def campaign_on(
    models: ModelSet,
    campaign: Campaign,
    month: str,
    frame: pd.DataFrame,
    do_not_disturb: set[str],
    cities: pd.Series | None = None,
    export_to: Path | None = None,
) -> CampaignResult:
    """The campaign on a snapshot already read: the champions decide, the plan and its preview;
    the export's files written under ``export_to`` when given."""
    models = models.for_province(campaign.province)
    decided = pd.DataFrame(crm_columns(models.probabilities(frame), models.config, frame))
    result = plan(campaign, month, frame, decided, do_not_disturb, cities)
    out = CampaignResult(result, preview(result))
    if export_to is not None:
        contact = result.selected["status"] == "contact"
        rows = frame.set_index("msisdn").loc[result.selected.loc[contact, "msisdn"]].reset_index()
        listed = outbound(result, talking_points(models, campaign, rows))
        out.files = write_export(result, listed, export_to)
    return out


def talking_points(models: ModelSet, campaign: Campaign, rows: pd.DataFrame) -> pd.DataFrame:
    """Each customer's top reasons from the purpose's evaluation, in Chinese and in English."""
    model = models.models.get(TALKING_POINTS[campaign.purpose])
    if model is None or rows.empty:
        return pd.DataFrame({"talking_points_zh": [""] * len(rows), "talking_points_en": [""] * len(rows)})
    why = reasons(model, rows, top=TOP_REASONS)
    return pd.DataFrame(
        {
            "talking_points_zh": ["；".join(r["text_zh"] for r in items) for items in why],
            "talking_points_en": ["; ".join(r["text_en"] for r in items) for items in why],
        }
    )


def outbound(result: Plan, points: pd.DataFrame) -> pd.DataFrame:
    """The outbound system's list: the customers to contact, their wave plan, contacts so far
    against the cap, talking points and the offer."""
    campaign = result.campaign
    contact = result.selected[result.selected["status"] == "contact"].reset_index(drop=True)
    n = len(contact)
    head = pd.DataFrame(
        {
            "msisdn": contact["msisdn"],
            "campaign": campaign.name,
            "purpose": campaign.purpose,
            "province": campaign.province,
            "snapshot_month": result.month,
        },
        index=range(n),
    )
    tail = pd.DataFrame(
        {
            "contacts_3m": contact["contacts_3m"].astype(np.int64),
            "contact_cap": np.full(n, campaign.contact_cap, dtype=np.int64),
            "offer_zh": campaign.offer.zh,
            "offer_en": campaign.offer.en,
            "gift_yuan": campaign.offer.gift_yuan,
        },
        index=range(n),
    )
    waves = wave_plan(campaign, contact["channel_ranking"])
    return pd.concat([head, waves, tail, points.reset_index(drop=True)], axis=1)


def write_export(result: Plan, listed: pd.DataFrame, directory: Path) -> dict[str, Path]:
    """The list (Parquet and CSV), ``suppressed_<name>.csv`` (masked numbers),
    ``control_<name>.parquet`` and the definition (``campaign_<name>.json``, read back by the
    campaign's report): each written whole or not at all, owner-only."""
    name = result.campaign.name
    selected = result.selected
    files = {
        "list_parquet": directory / f"campaign_{name}.parquet",
        "list_csv": directory / f"campaign_{name}.csv",
        "suppressed": directory / f"suppressed_{name}.csv",
        "control": directory / f"control_{name}.parquet",
        "definition": directory / f"campaign_{name}.json",
    }
    atomic_write_text(result.campaign.model_dump_json(indent=2), files["definition"])
    atomic_write_parquet(listed, files["list_parquet"])
    atomic_write_text(listed.to_csv(index=False), files["list_csv"])
    suppressed = selected[selected["status"] == "suppressed"]
    codes = suppressed["reason"].astype(str)
    atomic_write_text(
        pd.DataFrame(
            {
                "msisdn": mask_numbers(suppressed["msisdn"]),
                "reason": codes,
                "reason_en": codes.map(lambda c: SUPPRESSION_REASONS[c][0]),
                "reason_zh": codes.map(lambda c: SUPPRESSION_REASONS[c][1]),
            }
        ).to_csv(index=False),
        files["suppressed"],
    )
    control = selected[selected["status"] == "control"].drop(columns=["status", "reason"])
    atomic_write_parquet(control.assign(campaign=name, snapshot_month=result.month), files["control"])
    return files
