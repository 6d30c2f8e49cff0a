"""Synthetic operator data: raw warehouse tables driven by latent customer traits.

The generator simulates each province month by month. Latent traits (value, digital
affinity, grievance, price sensitivity, financial stress, refund abuse, sociability,
channel affinities) drive the raw tables; they are never written. After each month the
same indicator code the feature store uses computes the snapshot, the known truth
functions (``features.labels``) give the oracle probabilities, and labels are drawn;
customers drawn to churn close their line in the next month.

Deterministic by seed (each province has its own stream), vectorised with NumPy, and
streamed province by province and month by month, so memory is bounded by one
province-month.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.indicators import CHANNELS
from core.io import atomic_write_parquet, month_list, snapshot_time
from features.build import aggregate_month, indicators_at
from features.labels import World, truth_for_snapshot
from features.schemas import partition_path


@dataclass(frozen=True)
class ProvinceProfile:
    """How one province's customers differ: mixes of brand, category, payment, terminals."""

    code: str
    share: float
    cities: tuple[str, ...]
    brand_mix: tuple[float, float, float]  # gotone, mzone, easyown
    vip_boost: float
    prepaid_bias: float
    digital_mean: float
    price_sensitivity_mean: float
    border_city_share: float


PROVINCES: dict[str, ProvinceProfile] = {
    p.code: p
    for p in (
        ProvinceProfile(
            "GD",
            0.35,
            ("Guangzhou", "Shenzhen", "Dongguan", "Foshan"),
            (0.30, 0.35, 0.35),
            1.4,
            -0.2,
            0.4,
            -0.1,
            0.05,
        ),
        ProvinceProfile(
            "SC",
            0.25,
            ("Chengdu", "Mianyang", "Yibin", "Nanchong"),
            (0.20, 0.30, 0.50),
            0.9,
            0.3,
            0.0,
            0.3,
            0.08,
        ),
        ProvinceProfile(
            "HE",
            0.20,
            ("Shijiazhuang", "Tangshan", "Baoding", "Handan"),
            (0.18, 0.22, 0.60),
            0.7,
            0.5,
            -0.4,
            0.4,
            0.15,
        ),
        ProvinceProfile(
            "ZJ",
            0.20,
            ("Hangzhou", "Ningbo", "Wenzhou", "Shaoxing"),
            (0.35, 0.35, 0.30),
            1.3,
            -0.3,
            0.5,
            -0.2,
            0.06,
        ),
    )
}
PREFIXES = np.array(
    [134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 157, 158, 159, 178, 182, 183, 184, 187, 188, 198]
)
CATEGORIES = ("individual", "group_member", "vip_silver", "vip_gold", "vip_diamond")
BRANDS = ("gotone", "mzone", "easyown")
PAYMENTS = ("prepaid", "postpaid_cash", "bank_debit")
TERMINALS = ("feature_phone", "smartphone_4g", "smartphone_5g")
COMPLAINT_CATEGORIES = ("billing", "network", "service", "value_added", "other")
OUTCOMES = ("resolved", "refunded", "rejected", "escalated")
INQUIRY_CHANNELS = ("ivr", "sms", "app", "agent")
#: Seasonal multipliers by calendar month: Spring Festival (Feb), summer, National Day.
SEASON = {
    "voice": {2: 1.15, 10: 1.05},
    "sms": {2: 1.6, 1: 1.2},
    "data": {7: 1.15, 8: 1.2},
    "roaming": {2: 2.5, 7: 1.4, 8: 1.5, 10: 1.6},
}


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. ``drift_month``: from this month a tariff change sends bills and
    billing inquiries up, and a competitor's offer raises M-Zone churn. None: no drift."""

    customers: int = 10_000
    months: int = 12
    start_month: str = "2025-11"
    provinces: tuple[str, ...] = ("GD", "SC", "HE", "ZJ")
    seed: int = 7
    drift_month: str | None = "2026-10"
    month_names: list[str] = field(init=False)

    def __post_init__(self):
        unknown = [p for p in self.provinces if p not in PROVINCES]
        if unknown:
            from core.errors import ConfigurationError

            raise ConfigurationError(f"unknown province(s) {unknown}; known: {list(PROVINCES)}")
        object.__setattr__(self, "month_names", month_list(self.start_month, self.months))

    def province_sizes(self) -> dict[str, int]:
        shares = np.array([PROVINCES[p].share for p in self.provinces])
        sizes = np.floor(shares / shares.sum() * self.customers).astype(int)
        sizes[0] += self.customers - sizes.sum()
        return dict(zip(self.provinces, sizes.tolist()))


def make_msisdns(start: int, n: int) -> np.ndarray:
    """Unique 11-digit mobile numbers for global customer indices start..start+n-1."""
    i = np.arange(start, start + n, dtype=np.int64)
    body = ((i // len(PREFIXES)) * 7919 + 12_345_678) % 100_000_000
    numbers = PREFIXES[i % len(PREFIXES)].astype(np.int64) * 100_000_000 + body
    return numbers.astype(str)


def _choice(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw from a (n, k) probability matrix."""
    return (probs.cumsum(axis=1) < rng.random((len(probs), 1))).sum(axis=1).clip(0, probs.shape[1] - 1)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class Population:
    """One province's subscribers: the master table and the hidden traits behind it."""

    master: pd.DataFrame
    traits: dict[str, np.ndarray]
    red_black: pd.DataFrame


def make_population(
    profile: ProvinceProfile, n: int, start_index: int, first_month: str, rng: np.random.Generator
) -> Population:
    """Subscriber master and latent traits for one province."""
    vip_w = np.array(
        [0.78, 0.17, 0.03 * profile.vip_boost, 0.015 * profile.vip_boost, 0.005 * profile.vip_boost]
    )
    category = rng.choice(len(CATEGORIES), n, p=vip_w / vip_w.sum())
    vip_level = np.maximum(category - 1, 0)  # 0 none, 1 silver, 2 gold, 3 diamond
    brand_logits = np.log(np.array(profile.brand_mix))[None, :] + np.column_stack(
        [1.2 * vip_level + 0.5 * (category == 1), np.zeros(n), -0.8 * vip_level]
    )
    brand = _choice(rng, _softmax(brand_logits))
    pay_logits = np.column_stack(
        [
            profile.prepaid_bias + np.select([brand == 0, brand == 1], [-1.5, 0.8], 1.5) - vip_level,
            np.zeros(n),
            -0.3 + 0.6 * vip_level + 0.8 * (brand == 0),
        ]
    )
    payment = _choice(rng, _softmax(pay_logits))

    loyalty = rng.normal(0, 1, n)
    tenure_months = np.clip(rng.exponential(30 * np.exp(0.4 * loyalty + 0.3 * vip_level)), 0, 300)
    start = pd.Timestamp(first_month + "-01")
    activation = start - pd.to_timedelta(
        (tenure_months * 30.4375 + rng.uniform(0, 28, n)).astype(int), unit="D"
    )
    value = np.exp(
        rng.normal(0, 0.45, n) + 0.45 * vip_level + np.select([brand == 0, brand == 1], [0.5, 0.0], -0.25)
    )
    digital = rng.normal(profile.digital_mean, 1, n) + 0.6 * (brand == 1) - 0.1 * np.log1p(tenure_months)
    terminal_p = _softmax(np.column_stack([-1.2 - 1.3 * digital, np.zeros(n), -0.6 + 0.9 * digital]))
    terminal = _choice(rng, terminal_p)
    terminal_str = np.array(TERMINALS, dtype=object)[terminal]
    terminal_str[rng.random(n) < 0.03] = None  # terminal feed gap

    number_level = np.minimum(rng.geometric(np.clip(0.85 - 0.12 * vip_level, 0.3, 0.95)) - 1, 4)
    cities = np.array(profile.cities, dtype=object)[
        rng.choice(len(profile.cities), n, p=_city_weights(len(profile.cities)))
    ]
    cities[rng.random(n) < 0.002] = None
    master = pd.DataFrame(
        {
            "msisdn": make_msisdns(start_index, n),
            "province": profile.code,
            "city": cities,
            "customer_category": np.array(CATEGORIES)[category],
            "brand": np.array(BRANDS)[brand],
            "payment_method": np.array(PAYMENTS)[payment],
            "activation_date": activation.normalize().date,
            "number_level": number_level.astype(np.int64),
            "terminal_class": terminal_str,
            "status": "active",
            "close_date": pd.Series([None] * n, dtype=object),
        }
    )
    grievance = rng.gamma(0.6, 1.0, n)
    abuser = rng.random(n) < 0.02
    traits = {
        "value": value,
        "digital": digital,
        "grievance": grievance,
        "price_sensitivity": rng.normal(profile.price_sensitivity_mean, 1, n) + 0.4 * (brand == 2),
        "stress": rng.normal(0, 1, n) - 0.3 * vip_level,
        "abuser": abuser,
        "social": np.exp(rng.normal(0, 0.6, n)),
        "border": rng.random(n) < profile.border_city_share,
        "ringback": rng.random(n) < 0.3,
        "plan_fee": np.select([brand == 0, brand == 1], [58.0, 28.0], 18.0)
        * np.round(np.clip(value, 0.5, 4) * 2)
        / 2,
        "sp_rate": np.exp(rng.normal(-1.0, 0.8, n) + 0.3 * digital),
        "postpaid": payment > 0,
        "vip_level": vip_level,
        "feature_phone": terminal == 0,
        "channel_affinity": np.column_stack(
            [
                1.0 * digital + 0.3 * (terminal == 2) - 1.5 * (terminal == 0),
                0.5 + 0.3 * grievance,
                -0.3 - 0.3 * digital,
                -0.6 - 0.7 * digital + 0.8 * (terminal == 0) + 0.2 * vip_level,
                np.full(n, -2.0),
            ]
        )
        + rng.normal(0, 0.7, (n, len(CHANNELS))),
        "contact_rate": np.exp(rng.normal(0, 0.5, n)) * (0.9 + 0.3 * grievance),
        "outbound_receptive": rng.normal(-0.5, 1.0, n),
    }
    red = rng.random(n) < 0.004 + 0.05 * (vip_level >= 2)
    black = (rng.random(n) < 0.002) | (abuser & (rng.random(n) < 0.25))
    listed_days = rng.integers(30, 900, n)
    rows = []
    for flag, kind, reason in ((red, "red", "vip_protection"), (black, "black", "fraud_or_abuse")):
        idx = np.flatnonzero(flag)
        rows.append(
            pd.DataFrame(
                {
                    "msisdn": master["msisdn"].to_numpy()[idx],
                    "list_type": kind,
                    "listed_date": (start - pd.to_timedelta(listed_days[idx], unit="D")).date,
                    "reason": reason,
                }
            )
        )
    return Population(master, traits, pd.concat(rows, ignore_index=True))


def _city_weights(k: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1)
    return w / w.sum()


def _season(kind: str, month: str) -> float:
    return SEASON[kind].get(int(month[-2:]), 1.0)


def _event_times(rng: np.random.Generator, month: str, count: int) -> np.ndarray:
    start = pd.Timestamp(month + "-01").to_datetime64().astype("datetime64[s]")
    seconds = int(pd.Period(month, "M").days_in_month * 86_400)
    return start + rng.integers(0, seconds, count).astype("timedelta64[s]")


def _ids(kind: str, province: str, month: str, count: int) -> np.ndarray:
    """Work-order style identifiers, e.g. CGD2026010000042."""
    prefix = f"{kind}{province}{month.replace('-', '')}"
    return np.array([f"{prefix}{i:07d}" for i in range(count)], dtype=object)


def _categorical(codes: np.ndarray, categories: pd.Index) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=categories)


def simulate_month(
    pop: Population,
    active: np.ndarray,
    fee_history: list[np.ndarray],
    month: str,
    world: World,
    rng: np.random.Generator,
) -> dict[str, pd.DataFrame]:
    """The raw partitions of one month for the customers whose line is open."""
    t = pop.traits
    n = len(active)
    idx = np.flatnonzero(active)
    m = len(idx)
    numbers = pd.Index(pop.master["msisdn"])
    cust = _categorical(idx, numbers)
    noise = np.exp(rng.normal(0, 0.25, m))
    value, digital = t["value"][idx], t["digital"][idx]

    voice = rng.gamma(2.0, 150 * value * _season("voice", month) * noise / 2.0)
    data = rng.gamma(1.5, 2500 * np.exp(0.6 * digital) * value * _season("data", month) / 1.5)
    data_reported = np.where(rng.random(m) < 0.01, np.nan, data)
    sms = rng.poisson(25 * np.exp(-0.4 * digital) * _season("sms", month))
    mms = rng.poisson(0.8 * np.exp(0.2 * digital))
    roams = rng.random(m) < 0.12 * _season("roaming", month)
    roaming = np.where(roams, rng.gamma(2.0, 40.0, m), 0.0)
    boundary = np.where(t["border"][idx], rng.gamma(1.5, 20.0, m), 0.0)
    ports = rng.poisson(t["sp_rate"][idx])
    callees = rng.poisson(18 * t["social"][idx] * _season("voice", month))
    usage = pd.DataFrame(
        {
            "msisdn": cust,
            "month": month,
            "voice_minutes": voice.round(1),
            "data_mb": data_reported.round(1),
            "sms_count": sms,
            "mms_count": mms,
            "roaming_minutes": roaming.round(1),
            "boundary_roaming_minutes": boundary.round(1),
            "monternet_ports": ports,
            "ringback_tone": t["ringback"][idx],
            "distinct_callees": callees,
        }
    )

    tariff = 1.25 if world.tariff_change else 1.0
    plan_fee = t["plan_fee"][idx] + (10.0 if world.tariff_change else 0.0)
    included_minutes = plan_fee * 3
    voice_fee = np.maximum(voice - included_minutes, 0) * 0.15 * tariff
    data_fee = np.maximum(data - plan_fee * 40, 0) * 0.004 * tariff
    sms_fee = sms * 0.1
    vas_fee = ports * 4.0 + t["ringback"][idx] * 5.0
    roaming_fee = (roaming + boundary) * 0.6
    total = plan_fee + voice_fee + data_fee + sms_fee + vas_fee + roaming_fee
    vas_reported = np.where(rng.random(m) < 0.005, np.nan, vas_fee)
    bills = pd.DataFrame(
        {
            "msisdn": cust,
            "bill_month": month,
            "total_fee": total.round(2),
            "plan_fee": plan_fee.round(2),
            "voice_fee": voice_fee.round(2),
            "data_fee": data_fee.round(2),
            "sms_fee": sms_fee.round(2),
            "vas_fee": vas_reported.round(2),
            "roaming_fee": roaming_fee.round(2),
        }
    )

    # Bill shock relative to the customer's own recent months drives inquiries and complaints.
    if fee_history:
        prior = np.mean([h[idx] for h in fee_history[-3:]], axis=0)
        shock = np.divide(total, prior, out=np.zeros(m), where=prior > 0) - 1
    else:
        shock = np.zeros(m)
    shock = np.clip(shock, 0, 3)

    stress = t["stress"][idx]
    postpaid = t["postpaid"][idx]
    arrears_p = np.where(postpaid, 1 / (1 + np.exp(3.4 - 1.3 * stress - 0.8 * shock)), 0.0)
    in_arrears = rng.random(m) < arrears_p
    paid = np.where(in_arrears, total * rng.uniform(0, 0.8, m), total)
    prepaid_suspend = ~postpaid & (rng.random(m) < 1 / (1 + np.exp(4.2 - 1.2 * stress)))
    arrears = np.where(in_arrears, total - paid, np.where(prepaid_suspend, rng.uniform(1, 30, m), 0.0))
    suspended = (in_arrears & (stress > 1.2) & (rng.random(m) < 0.5)) | prepaid_suspend
    pay_day = (
        pd.Timestamp(month + "-01")
        + pd.offsets.MonthEnd(0)
        + pd.to_timedelta(rng.integers(1, 20, m), unit="D")
    )
    payment_date = pd.Series(pay_day.date, dtype=object)
    payment_date[paid <= 0] = None
    payments = pd.DataFrame(
        {
            "msisdn": cust,
            "bill_month": month,
            "amount_due": total.round(2),
            "amount_paid": paid.round(2),
            "payment_date": payment_date.to_numpy(),
            "arrears_amount": np.round(arrears, 2),
            "suspended_for_arrears": suspended,
        }
    )

    inquiry_rate = (
        0.25
        * np.exp(0.6 * t["price_sensitivity"][idx])
        * (1 + 4 * shock)
        * (2.5 if world.tariff_change else 1.0)
    )
    inq_n = rng.poisson(inquiry_rate)
    inq_idx = np.repeat(np.arange(m), inq_n)
    inq_channel_p = _softmax(np.column_stack([np.zeros(m), 0.2 * np.ones(m), digital, -0.5 - 0.3 * digital]))
    inquiries = pd.DataFrame(
        {
            "msisdn": _categorical(idx[inq_idx], numbers),
            "inquiry_time": _event_times(rng, month, len(inq_idx)),
            "channel": np.array(INQUIRY_CHANNELS)[_choice(rng, inq_channel_p[inq_idx])],
        }
    ).drop_duplicates(["msisdn", "inquiry_time", "channel"])

    grievance = t["grievance"][idx]
    complaint_rate = (
        0.012 * np.exp(0.8 * grievance) * (1 + 2.5 * shock) * (1.3 if world.tariff_change else 1.0)
    )
    comp_n = rng.poisson(complaint_rate)
    comp_idx = np.repeat(np.arange(m), comp_n)
    k = len(comp_idx)
    cat_p = _softmax(
        np.column_stack(
            [0.3 + 2.0 * shock[comp_idx], np.full(k, 0.2), np.zeros(k), np.full(k, -0.3), np.full(k, -1.0)]
        )
    )
    abuser = t["abuser"][idx][comp_idx]
    outcome_p = np.column_stack(
        [np.full(k, 0.62), 0.15 + 0.4 * abuser, np.full(k, 0.13), 0.04 + 0.05 * grievance[comp_idx]]
    )
    outcome = _choice(rng, outcome_p / outcome_p.sum(axis=1, keepdims=True))
    answered = rng.random(k) < 0.55
    sat_mean = 4.3 - 0.5 * grievance[comp_idx] - 1.2 * (outcome == 2) - 0.4 * (outcome == 3)
    satisfaction = np.where(answered, np.clip(np.round(sat_mean + rng.normal(0, 0.7, k)), 1, 5), np.nan)
    comp_ids = _ids("C", pop.master["province"].iat[0], month, k)
    complaints = pd.DataFrame(
        {
            "complaint_id": comp_ids,
            "msisdn": _categorical(idx[comp_idx], numbers),
            "complaint_time": _event_times(rng, month, k),
            "category": np.array(COMPLAINT_CATEGORIES)[_choice(rng, cat_p)],
            "outcome": np.array(OUTCOMES)[outcome],
            "satisfaction": satisfaction,
        }
    )

    refunded = outcome == 1
    goodwill_n = rng.poisson(0.0005, m)  # refunds without a complaint: billing corrections
    goodwill_idx = np.repeat(np.arange(m), goodwill_n)
    ref_cust = np.concatenate([comp_idx[refunded], goodwill_idx])
    r = len(ref_cust)
    ref_time = np.concatenate(
        [
            complaints["complaint_time"].to_numpy()[refunded]
            + rng.integers(3_600, 5 * 86_400, refunded.sum()).astype("timedelta64[s]"),
            _event_times(rng, month, len(goodwill_idx)),
        ]
    )
    end = (pd.Period(month, "M").end_time.floor("s")).to_datetime64()
    ref_time = np.minimum(ref_time, end)
    ref_abuser = t["abuser"][idx][ref_cust]
    refunds = pd.DataFrame(
        {
            "refund_id": _ids("R", pop.master["province"].iat[0], month, r),
            "msisdn": _categorical(idx[ref_cust], numbers),
            "refund_time": ref_time,
            "amount": np.round(np.minimum(np.exp(rng.normal(3.0, 0.8, r)), 2000), 2),
            "is_double_refund": rng.random(r) < 0.04 + 0.35 * ref_abuser,
            "complaint_id": np.concatenate(
                [comp_ids[refunded], np.full(len(goodwill_idx), None, dtype=object)]
            ).astype(object),
        }
    )

    affinity = _softmax(t["channel_affinity"][idx])
    contact_n = rng.poisson(affinity * (1.3 * t["contact_rate"][idx])[:, None])
    contact_n[:, CHANNELS.index("outbound")] = rng.poisson(0.25, m)
    con_cust, con_channel = np.nonzero(contact_n)
    reps = contact_n[con_cust, con_channel]
    con_cust, con_channel = np.repeat(con_cust, reps), np.repeat(con_channel, reps)
    outbound = con_channel == CHANNELS.index("outbound")
    receptive = t["outbound_receptive"][idx][con_cust]
    response = pd.array(
        np.where(outbound, rng.random(len(con_cust)) < 1 / (1 + np.exp(-receptive)), False), dtype="boolean"
    )
    response[~outbound] = pd.NA
    contacts = pd.DataFrame(
        {
            "msisdn": _categorical(idx[con_cust], numbers),
            "contact_time": _event_times(rng, month, len(con_cust)),
            "channel": np.array(CHANNELS)[con_channel],
            "campaign_response": response,
        }
    ).drop_duplicates(["msisdn", "contact_time", "channel"])

    fee_full = np.zeros(n)
    fee_full[idx] = total
    fee_history.append(fee_full)
    return {
        "monthly_bills": bills,
        "payments": payments,
        "usage": usage,
        "complaints": complaints,
        "refunds": refunds,
        "billing_inquiries": inquiries,
        "channel_contacts": contacts,
    }


def generate(
    config: GeneratorConfig, raw_dir: Path, truth_dir: Path, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Write raw tables, labels and oracle probabilities; returns row counts per table."""
    counts: dict[str, int] = {}
    offset = 0
    for p_index, (province, size) in enumerate(config.province_sizes().items()):
        rng = np.random.default_rng([config.seed, p_index])
        pop = make_population(PROVINCES[province], size, offset, config.month_names[0], rng)
        offset += size
        index = pd.Index(pop.master["msisdn"])
        active = np.ones(size, dtype=bool)
        fee_history: list[np.ndarray] = []
        history = []
        oracles, labels = [], []
        for m, month in enumerate(config.month_names):
            world = World.at(month, config.drift_month)
            tables = simulate_month(pop, active, fee_history, month, world, rng)
            fee_history[:] = fee_history[-3:]
            for name, frame in tables.items():
                atomic_write_parquet(frame, partition_path(raw_dir, name, province, month))
                counts[name] = counts.get(name, 0) + len(frame)
            history.append(aggregate_month(index, tables))
            history = history[-12:]
            snapshot = indicators_at(pop.master, pop.red_black, history, month)
            oracle, label = truth_for_snapshot(snapshot, world, rng)
            oracles.append(oracle.assign(province=province, month=month))
            labels.append(label.assign(province=province, month=month))
            # Churned lines close in the next month; the warehouse only knows closures
            # that happened within the generated window.
            if m + 1 < len(config.month_names):
                churned = index.get_indexer(label.loc[label["churned_next_month"] == 1, "msisdn"])
                next_month = pd.Period(config.month_names[m + 1], "M")
                days = rng.integers(1, next_month.days_in_month + 1, len(churned))
                pop.master.loc[churned, "close_date"] = [
                    (next_month.start_time + pd.Timedelta(days=int(d) - 1)).date() for d in days
                ]
                pop.master.loc[churned, "status"] = "closed"
                active[churned] = False
            if progress:
                progress(1)
        atomic_write_parquet(pop.master, partition_path(raw_dir, "subscribers", province))
        atomic_write_parquet(pop.red_black, partition_path(raw_dir, "red_black_list", province))
        counts["subscribers"] = counts.get("subscribers", 0) + size
        counts["red_black_list"] = counts.get("red_black_list", 0) + len(pop.red_black)
        atomic_write_parquet(
            pd.concat(oracles, ignore_index=True), Path(truth_dir) / "oracle" / f"{province}.parquet"
        )
        atomic_write_parquet(
            pd.concat(labels, ignore_index=True), Path(truth_dir) / "labels" / f"{province}.parquet"
        )
    return counts


__all__ = ["GeneratorConfig", "generate", "make_msisdns", "PROVINCES", "snapshot_time"]
