"""Every campaign measures itself (响应管理): pure transforms from its plan and the CRM's answers.

Inputs are the campaign's export (the contacted customers with their wave plan, and the random
control group held out of it) and the feedback events that came back: ``campaign_contact`` for
every reached wave (accepted, declined, complained, opted out, or reached without an answer) and
``offer_taken`` for every customer who took the offer, contacted or not. A customer *took the offer*
when either says so.

* **Uplift**: the take-up of the contacted minus the control group's, with Newcombe's 95% interval
  for a difference of two proportions (statsmodels), overall and per best channel.
* **By wave, by channel**: planned attempts (a wave counts once its date has come, for customers
  whose earlier waves drew no closing answer), reached, each answer, and the rates per attempt.
* **By contact count**: the n-th contact in 90 days (contacts before the campaign plus the wave):
  acceptances and objections (opt-outs, complaints) per attempt. The best contact frequency is the
  last n whose contact still pays: acceptances above ``HARM_WEIGHT`` times the objections, for
  every n up to it (counts with fewer than ``MIN_ATTEMPTS`` attempts are not read).

Reading the files and the store and writing the report is ``serving.campaign_report``.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import confint_proportions_2indep

#: The answers a reached contact can carry; all but ``reached`` close the customer's waves.
OUTCOMES = ("accepted", "declined", "complained", "opted_out", "reached")
OBJECTIONS = ("complained", "opted_out")
#: An objection (an opt-out loses the customer for every later campaign) costs this many acceptances.
HARM_WEIGHT = 3.0
#: Fewer attempts at a contact count and its rates are not read for the best frequency.
MIN_ATTEMPTS = 30
#: The confidence of every interval.
CONFIDENCE = 0.95
_WAVE = re.compile(r"^wave_(\d+)_channel$")


def uplift(took_contacted: int, contacted: int, took_control: int, control: int) -> dict:
    """The take-up rates of both groups, their difference and its Newcombe interval (None when a
    group is empty)."""
    out = {
        "contacted": int(contacted),
        "took_contacted": int(took_contacted),
        "control": int(control),
        "took_control": int(took_control),
        "rate_contacted": took_contacted / contacted if contacted else None,
        "rate_control": took_control / control if control else None,
        "uplift": None,
        "low": None,
        "high": None,
    }
    if contacted and control:
        low, high = confint_proportions_2indep(
            took_contacted,
            contacted,
            took_control,
            control,
            method="newcomb",
            compare="diff",
            alpha=1 - CONFIDENCE,
        )
        out |= {"uplift": out["rate_contacted"] - out["rate_control"], "low": float(low), "high": float(high)}
    return out


def waves_of(contacted: pd.DataFrame) -> int:
    """How many waves the exported plan holds."""
    return max((int(m.group(1)) for c in contacted if (m := _WAVE.match(c))), default=0)


def attempts(contacted: pd.DataFrame, events: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """One row per planned contact made by ``as_of``: msisdn, wave, channel, the n-th contact in 90
    days (``contact_number``) and the answer (``outcome``; ``no answer`` when nobody was reached)."""
    answers = events[events["type"] == "campaign_contact"]
    answers = answers.drop_duplicates(["msisdn", "wave"], keep="last").set_index(["msisdn", "wave"])[
        "outcome"
    ]
    msisdn = contacted["msisdn"].astype(str).to_numpy()
    before = contacted["contacts_3m"].to_numpy(dtype=np.int64)
    closed = np.zeros(len(contacted), dtype=bool)
    rows = []
    for k in range(1, waves_of(contacted) + 1):
        channel = contacted[f"wave_{k}_channel"].to_numpy(dtype=object)
        day = pd.to_datetime(contacted[f"wave_{k}_date"]).dt.date.to_numpy()
        made = ~closed & pd.notna(channel) & (day <= as_of)
        index = pd.MultiIndex.from_arrays([msisdn, np.full(len(msisdn), k)])
        outcome = answers.reindex(index).to_numpy(dtype=object)
        outcome = np.where(pd.isna(outcome), "no answer", outcome)
        rows.append(
            pd.DataFrame(
                {
                    "msisdn": msisdn[made],
                    "wave": k,
                    "channel": channel[made],
                    "contact_number": before[made] + k,
                    "outcome": outcome[made],
                }
            )
        )
        closed |= made & np.isin(outcome, [o for o in OUTCOMES if o != "reached"])
    if not rows:
        return pd.DataFrame(columns=["msisdn", "wave", "channel", "contact_number", "outcome"])
    return pd.concat(rows, ignore_index=True)


def due_for_wave(contacted: pd.DataFrame, events: pd.DataFrame, wave: int) -> pd.DataFrame:
    """The exported rows still due wave ``wave``: a channel planned for it, no closing answer to an
    earlier wave and the offer not taken meanwhile (the outbound system's list for that wave)."""
    if not 1 <= wave <= waves_of(contacted):
        raise ValueError(f"wave {wave}: the campaign plans waves 1 to {waves_of(contacted)}")
    answers = events[(events["type"] == "campaign_contact") & (events["wave"] < wave)]
    closed = set(answers.loc[answers["outcome"] != "reached", "msisdn"].astype(str)) | took_offer(events)
    msisdn = contacted["msisdn"].astype(str)
    due = contacted[f"wave_{wave}_channel"].notna() & ~msisdn.isin(closed)
    return contacted[due.to_numpy()].reset_index(drop=True)


def answer_table(made: pd.DataFrame, by: str) -> pd.DataFrame:
    """Attempts, reached and each answer (``undecided``: reached, no answer yet) per value of ``by``,
    with the rates per attempt."""
    counts = pd.crosstab(made[by], made["outcome"]).reindex(columns=[*OUTCOMES, "no answer"], fill_value=0)
    table = pd.DataFrame({"attempts": counts.sum(axis=1), "reached": counts[list(OUTCOMES)].sum(axis=1)})
    # the CRM's "reached" answer is a reached customer who has not decided yet
    table = table.join(counts[list(OUTCOMES)].rename(columns={"reached": "undecided"}))
    table["reach_rate"] = table["reached"] / table["attempts"]
    table["acceptance_rate"] = table["accepted"] / table["attempts"]
    table["objection_rate"] = table[list(OBJECTIONS)].sum(axis=1) / table["attempts"]
    return table.reset_index()


def best_frequency(by_count: pd.DataFrame) -> int | None:
    """The last contact number worth making (see the module's text); None if the first one read does
    not pay or none had enough attempts to read."""
    best = None
    for row in by_count.sort_values("contact_number").itertuples():
        if row.attempts < MIN_ATTEMPTS:  # too few to read: neither pays nor stops
            continue
        if row.acceptance_rate - HARM_WEIGHT * row.objection_rate <= 0:
            break
        best = int(row.contact_number)
    return best


def took_offer(events: pd.DataFrame) -> set[str]:
    """Customers who took the offer: an ``offer_taken`` or an accepted contact."""
    taken = events["type"].eq("offer_taken") | events["outcome"].eq("accepted")
    return set(events.loc[taken, "msisdn"].astype(str))


def measure(contacted: pd.DataFrame, control: pd.DataFrame, events: pd.DataFrame, as_of: dt.date) -> dict:
    """The campaign's response report (see the module's text) as plain values and tables."""
    took = took_offer(events)
    t_took = contacted["msisdn"].astype(str).isin(took)
    c_took = control["msisdn"].astype(str).isin(took)
    made = attempts(contacted, events, as_of)
    by_count = answer_table(made, "contact_number") if len(made) else pd.DataFrame()
    segments = []
    if "best_channel" in contacted and "best_channel" in control:
        for channel in sorted(
            set(contacted["best_channel"].dropna()) | set(control["best_channel"].dropna())
        ):
            t, c = contacted["best_channel"].eq(channel), control["best_channel"].eq(channel)
            segments.append(
                {
                    "best_channel": channel,
                    **uplift(int(t_took[t].sum()), int(t.sum()), int(c_took[c].sum()), int(c.sum())),
                }
            )
    return {
        "as_of": as_of.isoformat(),
        "overall": uplift(int(t_took.sum()), len(contacted), int(c_took.sum()), len(control)),
        "by_best_channel": pd.DataFrame(segments),
        "by_wave": answer_table(made, "wave") if len(made) else pd.DataFrame(),
        "by_channel": answer_table(made, "channel") if len(made) else pd.DataFrame(),
        "by_contact_number": by_count,
        "best_contact_frequency": best_frequency(by_count) if len(by_count) else None,
        "events": len(events),
    }


__all__ = ["HARM_WEIGHT", "OUTCOMES", "best_frequency", "due_for_wave", "measure", "uplift"]
