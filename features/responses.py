"""The synthetic world answers a campaign: who is reached, who takes the offer, who opts out.

The generator's extension for the campaign loop (issue 12). Customers respond by the same hidden
truth the oracle holds for the snapshot the campaign was planned on (``truth/oracle``): a wave on a
channel the customer favours (``p_channel_*``) reaches them more often and is accepted more often;
the offer appeals by the campaign's purpose (a retention offer to customers about to leave, a care
offer to the complaint-sensitive, ...); every contact in 90 days beyond the first tires them
(acceptance falls, opt-outs and complaints rise). Some customers take the offer without being
contacted, the control group among them, which is what makes the uplift measurable.

Because the probabilities are known, so is each customer's true uplift: the chance of taking the
offer when contacted minus the chance when not. ``response_truth`` computes it in closed form;
``simulate_responses`` draws the CRM's feedback events (``campaign_contact`` per reached wave,
``offer_taken`` per take-up) from the same probabilities, so a report measured on the events can be
held against the truth (``tests/serving/test_campaign_report.py``, ``benchmarks/bench_campaign.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.indicators import CHANNELS

#: How the offer of each purpose appeals, from the oracle's columns: (column, centre, scale); the
#: appeal is (value - centre) / scale, clipped to [-3, 3]. A retention offer appeals to customers
#: about to leave (log churn odds against a 2% month), care to the complaint-sensitive, tariff
#: communication to the tariff-sensitive, cross-selling to the ones who are not, dunning to those
#: whose credit is about to go bad.
APPEAL = {
    "retention": ("log_churn_odds", np.log(0.02 / 0.98), 1.0),
    "care": ("complaint_sensitivity_expected", 50.0, 20.0),
    "tariff_communication": ("tariff_sensitivity_expected", 50.0, 20.0),
    "cross_sell": ("tariff_sensitivity_expected", 50.0, -20.0),
    "dunning": ("p_credit_bad_event", 0.15, 0.1),
}


@dataclass(frozen=True)
class ResponseModel:
    """The world's response parameters (log-odds unless said otherwise)."""

    accept: float = -2.2  # a reached customer of average appeal on an average channel (10%)
    appeal: float = 0.5  # per unit of the purpose's appeal
    channel: float = 0.8  # per unit of log(channels x the customer's p_channel)
    fatigue: float = 0.18  # per contact in 90 days before this one
    reach_floor: float = 0.30  # share reached on a channel the customer never uses
    reach_span: float = 0.60  # added, times p_channel, up to 0.9 on the favourite channel
    harm: float = -4.2  # opting out or complaining, per reached contact
    harm_fatigue: float = 0.30
    decline_share: float = 0.5  # of the reached who neither accept nor object: decline (others: no answer)
    spontaneous: float = -3.6  # taking the offer uncontacted
    spontaneous_appeal: float = 0.5


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def appeal(purpose: str, oracle: pd.DataFrame) -> np.ndarray:
    """The offer's appeal to each customer (see ``APPEAL``)."""
    column, centre, scale = APPEAL[purpose]
    if column == "log_churn_odds":
        p = oracle["churn_probability"].clip(1e-4, 1 - 1e-4).to_numpy(dtype=float)
        values = np.log(p / (1 - p))
    else:
        values = oracle[column].to_numpy(dtype=float)
    return np.clip((values - centre) / scale, -3, 3)


def _wave_channels(plan: pd.DataFrame, waves: int) -> list[np.ndarray]:
    return [
        plan.get(f"wave_{k}_channel", pd.Series([None] * len(plan))).to_numpy(dtype=object)
        for k in range(1, waves + 1)
    ]


def wave_probabilities(
    plan: pd.DataFrame, oracle: pd.DataFrame, purpose: str, waves: int, model: ResponseModel = ResponseModel()
) -> dict[str, np.ndarray]:
    """Per customer (rows of ``plan``) and wave (columns): the chance of being reached and, once
    reached, of accepting, of objecting (opt-out or complaint) and of declining.

    ``plan`` holds ``msisdn``, ``contacts_3m`` and ``wave_k_channel``; ``oracle`` is indexed by msisdn.
    """
    truth = oracle.loc[plan["msisdn"].astype(str)]
    taste = appeal(purpose, truth)
    before = plan["contacts_3m"].to_numpy(dtype=float)
    shape = (len(plan), waves)
    reach, accept, harm, decline = (np.zeros(shape) for _ in range(4))
    for k, channels in enumerate(_wave_channels(plan, waves)):
        planned = pd.notna(channels)
        p_channel = np.zeros(len(plan))
        for c in CHANNELS:
            on = channels == c
            p_channel[on] = truth[f"p_channel_{c}"].to_numpy(dtype=float)[on]
        tired = before + k
        logit = (
            model.accept
            + model.appeal * taste
            + model.channel * np.log(np.clip(len(CHANNELS) * p_channel, 1e-3, None))
            - model.fatigue * tired
        )
        a = _sigmoid(logit)
        h = _sigmoid(model.harm + model.harm_fatigue * tired - 0.3 * taste) * (1 - a)
        reach[:, k] = np.where(planned, model.reach_floor + model.reach_span * p_channel, 0.0)
        accept[:, k], harm[:, k] = a, h
        decline[:, k] = model.decline_share * (1 - a - h)
    return {"reach": reach, "accept": accept, "harm": harm, "decline": decline}


def spontaneous_take(
    plan: pd.DataFrame, oracle: pd.DataFrame, purpose: str, model: ResponseModel
) -> np.ndarray:
    """The chance of taking the offer without any contact."""
    truth = oracle.loc[plan["msisdn"].astype(str)]
    return _sigmoid(model.spontaneous + model.spontaneous_appeal * appeal(purpose, truth))


def response_truth(
    plan: pd.DataFrame, oracle: pd.DataFrame, purpose: str, waves: int, model: ResponseModel = ResponseModel()
) -> pd.DataFrame:
    """Each customer's true chances: ``p_take_uncontacted``, ``p_accept_in_waves`` (accepting one of
    the planned waves), ``p_take_contacted`` and the true ``uplift`` (contacted minus not)."""
    p = wave_probabilities(plan, oracle, purpose, waves, model)
    open_ = np.ones(len(plan))
    accepted = np.zeros(len(plan))
    for k in range(waves):
        reached = open_ * p["reach"][:, k]
        accepted += reached * p["accept"][:, k]
        open_ -= reached * (p["accept"][:, k] + p["harm"][:, k] + p["decline"][:, k])
    alone = spontaneous_take(plan, oracle, purpose, model)
    contacted = 1 - (1 - alone) * (1 - accepted)
    return pd.DataFrame(
        {
            "msisdn": plan["msisdn"].astype(str).to_numpy(),
            "p_take_uncontacted": alone,
            "p_accept_in_waves": accepted,
            "p_take_contacted": contacted,
            "uplift": contacted - alone,
        }
    )


def snapshot_oracle(oracle: pd.DataFrame, month: str) -> pd.DataFrame:
    """The oracle's rows of one snapshot month, indexed by msisdn."""
    stamp = pd.to_datetime(oracle["event_timestamp"])
    rows = oracle[stamp.dt.strftime("%Y-%m") == month]
    if rows.empty:
        raise ValueError(f"the synthetic world's truth has no snapshot of {month}")
    rows = rows.assign(msisdn=rows["msisdn"].astype(str)).drop_duplicates("msisdn", keep="last")
    return rows.set_index("msisdn")


def simulate_responses(
    campaign_id: str,
    province: str,
    purpose: str,
    contacted: pd.DataFrame,
    control: pd.DataFrame,
    oracle: pd.DataFrame,
    waves: int,
    seed: int,
    model: ResponseModel = ResponseModel(),
) -> list[dict]:
    """The CRM's feedback events for a campaign run to its end: per contacted customer and wave
    while no answer has closed it, a ``campaign_contact`` when reached (outcome accepted, declined,
    complained, opted_out, or reached without an answer); an ``offer_taken`` for every take-up,
    contacted or not (the control group's spontaneous ones included).

    ``contacted`` is the exported list (``msisdn``, ``contacts_3m``, ``wave_k_channel`` and
    ``wave_k_date``), ``control`` the held-out customers (``msisdn``); ``oracle`` indexed by msisdn.
    """
    rng = np.random.default_rng(seed)
    p = wave_probabilities(contacted, oracle, purpose, waves, model)
    n = len(contacted)
    msisdn = contacted["msisdn"].astype(str).to_numpy()
    channels = _wave_channels(contacted, waves)
    events: list[dict] = []
    closed = np.zeros(n, dtype=bool)
    took = np.zeros(n, dtype=bool)
    taken_on: list = [None] * n
    for k in range(waves):
        day = contacted.get(f"wave_{k + 1}_date", pd.Series([None] * n)).to_numpy(dtype=object)
        reached = ~closed & (rng.random(n) < p["reach"][:, k])
        u = rng.random(n)
        a, h, d = p["accept"][:, k], p["harm"][:, k], p["decline"][:, k]
        outcome = np.select(
            [u < a, u < a + h * 0.7, u < a + h, u < a + h + d],
            ["accepted", "opted_out", "complained", "declined"],
            "reached",
        )
        for i in np.flatnonzero(reached):
            events.append(
                _event(
                    f"{campaign_id}-w{k + 1}-{msisdn[i]}",
                    "campaign_contact",
                    province,
                    _at(day[i], i),
                    campaign_id=campaign_id,
                    wave=k + 1,
                    msisdn=msisdn[i],
                    channel=channels[k][i],
                    outcome=str(outcome[i]),
                )
            )
        accepted = reached & (outcome == "accepted")
        for i in np.flatnonzero(accepted):
            taken_on[i] = (day[i], channels[k][i])
        took |= accepted
        closed |= reached & (outcome != "reached")
    start = _first_day(contacted)
    alone = spontaneous_take(contacted, oracle, purpose, model)
    took_alone = ~took & (rng.random(n) < alone)
    for i in np.flatnonzero(took | took_alone):
        day, channel = taken_on[i] if taken_on[i] is not None else (start, None)
        events.append(_taken(campaign_id, province, msisdn[i], _at(day, i, hours=30), channel))
    held = control["msisdn"].astype(str).to_numpy()
    alone = spontaneous_take(control, oracle, purpose, model)
    for i in np.flatnonzero(rng.random(len(held)) < alone):
        events.append(_taken(campaign_id, province, held[i], _at(start, i, hours=30), None))
    return events


def _first_day(contacted: pd.DataFrame):
    days = contacted.get("wave_1_date")
    return days.min() if days is not None and len(days) else dt.date.today()


def _at(day, i: int, hours: int = 9) -> str:
    """A time on ``day`` spread over working hours (deterministic per customer)."""
    moment = pd.Timestamp(day) + pd.Timedelta(hours=hours) + pd.Timedelta(minutes=int(i) % 600)
    return moment.isoformat()


def _taken(campaign_id: str, province: str, msisdn: str, at: str, channel) -> dict:
    extra = {"channel": channel} if channel is not None else {}
    return _event(
        f"{campaign_id}-take-{msisdn}",
        "offer_taken",
        province,
        at,
        campaign_id=campaign_id,
        msisdn=msisdn,
        **extra,
    )


def _event(event_id: str, kind: str, province: str, at: str, **fields) -> dict:
    return {"event_id": event_id, "type": kind, "province": province, "time": at, **fields}


__all__ = ["APPEAL", "ResponseModel", "response_truth", "simulate_responses", "snapshot_oracle"]
