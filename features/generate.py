"""Synthetic operator data: raw warehouse tables driven by latent customer traits.

The generator simulates each province month by month. Latent traits (value, digital
affinity, grievance, price sensitivity, financial stress, refund abuse, sociability,
channel affinities) drive the raw tables; they are never written. After each month the
same indicator code the feature store uses computes the snapshot, the known truth
functions (``features.labels``) give the oracle probabilities, and labels are drawn;
customers drawn to churn close their line in the next month.

A steady operator: every line that closes is replaced by a new line like it (its latent
traits, brand, payment method and category: the market that churns is the market that
switches), and a few more open for the base's planned growth, so the size and the mix of
the base stay put whatever the churn truth does. A new line starts with tenure 0, no
history and a partial first month; some keep a number ported in from another operator.
The first lines' tenures are drawn from the distribution a steady operator's lines have
under the churn truth (``stationary_tenure``), so the base does not age either. Before
the first recorded month the world runs ``warmup_months`` (at least 11, so every 12-month
window is full from the first recorded month): their raw partitions are written too (the
warehouse's history, from which the feature store fills its windows), the truth (labels,
oracle) only for the recorded months.

The credit evidence (``credit_events``) and the imported small gifts (``small_gifts``) follow
the truth's credit score (``features.evidence``) and are drawn from a stream of their own, so
every other table and label is the same with or without them for a seed. The credit outcome
(``credit_bad_event``, ``features.outcomes``) is a label computed from the events written, and
the oracle's ``p_credit_bad_event`` (``features.labels``) its probability.

Deterministic by seed (each province has its own stream), vectorised with NumPy, and
streamed province by province and month by month; the working arrays hold the open
lines only (closed ones are archived). A province larger than ``chunk_customers`` is
simulated in chunks of lines that live apart (nothing in the world couples two lines),
each appended to the province's files as it is done: memory is bounded by one chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from core.indicators import CHANNELS, CHURN
from core.io import AtomicTableFiles, atomic_write_parquet, month_list, snapshot_time
from features.build import WINDOW_MONTHS, MonthAggregate, aggregate_month, indicators_at
from features.evidence import (
    RATE_EVENT_TYPES,
    care_rate,
    credit_event_rate,
    event_amounts,
    event_type_weights,
    gift_amounts,
    goodwill_probability,
    listing_events,
)
from features.labels import (
    CREDIT_NEUTRAL,
    INPUTS,
    World,
    churn_probability,
    credit_score,
    truth_for_snapshot,
)
from features.outcomes import OUTCOME_COLUMN, credit_bad_event
from features.schemas import ARROW_TYPES, GIFT_REASONS, TABLES, partition_path


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
#: Other operators' prefixes (China Unicom, China Telecom): a number ported in keeps its own.
PORT_PREFIXES = np.array(
    [130, 131, 132, 145, 155, 156, 166, 175, 176, 185, 186, 133, 149, 153, 173, 177, 180, 181, 189, 199]
)
#: Nationwide number portability (携号转网) since late November 2019: older lines were not ported.
PORTABILITY_START = pd.Timestamp("2019-12-01")
#: Share of new lines that port their number in from another operator, prepaid / postpaid.
PORT_IN_SHARE = (0.07, 0.15)
#: How strongly the growth lines pull the base towards the planned size each month.
PLAN_PULL = 0.25
#: The longest tenure, in months (GSM lines opened in the 1990s).
MAX_TENURE = 420
#: Seasonal multipliers by calendar month: Spring Festival (Feb), summer, National Day.
SEASON = {
    "voice": {2: 1.15, 10: 1.05},
    "sms": {2: 1.6, 1: 1.2},
    "data": {7: 1.15, 8: 1.2},
    "roaming": {2: 2.5, 7: 1.4, 8: 1.5, 10: 1.6},
}


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. ``months`` recorded months from ``start_month`` (raw tables, labels
    and oracle), after ``warmup_months`` simulated before them (raw tables only, so every
    indicator window is full from the first recorded month). ``customers`` lines at the start
    of the warm-up; the base then grows by ``growth`` a month, new lines replacing closed ones.
    ``drift_month``: from this month a tariff change sends bills and billing inquiries up,
    and a competitor's offer raises M-Zone churn. None: no drift. ``drift_provinces``: the
    provinces the market changes in (None: every one). ``chunk_customers``: a province larger
    than this is simulated in chunks of at most this many first lines (each chunk's lines with
    streams, numbers and ids of their own, written as row groups of the same files), so memory
    holds one chunk whatever the province's size; a province within it is one chunk, as it
    always was. None: every province is one chunk."""

    customers: int = 10_000
    months: int = 12
    start_month: str = "2025-11"
    provinces: tuple[str, ...] = ("GD", "SC", "HE", "ZJ")
    seed: int = 7
    drift_month: str | None = "2026-10"
    drift_provinces: tuple[str, ...] | None = None
    warmup_months: int = WINDOW_MONTHS - 1
    growth: float = 0.001
    chunk_customers: int | None = 250_000
    month_names: list[str] = field(init=False)
    warmup_names: list[str] = field(init=False)

    def __post_init__(self):
        from core.errors import ConfigurationError

        unknown = [p for p in self.provinces if p not in PROVINCES]
        if unknown:
            raise ConfigurationError(f"unknown province(s) {unknown}; known: {list(PROVINCES)}")
        if self.warmup_months < WINDOW_MONTHS - 1:
            raise ConfigurationError(
                f"warmup_months={self.warmup_months}: at least {WINDOW_MONTHS - 1} months are needed "
                f"so that the {WINDOW_MONTHS}-month windows are full from the first recorded month"
            )
        if self.chunk_customers is not None and self.chunk_customers < 1:
            raise ConfigurationError(f"chunk_customers={self.chunk_customers}: at least 1 (or None)")
        first = pd.Period(self.start_month, "M") - self.warmup_months
        object.__setattr__(self, "month_names", month_list(self.start_month, self.months))
        object.__setattr__(self, "warmup_names", month_list(str(first), self.warmup_months))

    @property
    def simulated_names(self) -> list[str]:
        """Every simulated month: the warm-up, then the recorded months."""
        return self.warmup_names + self.month_names

    def province_sizes(self) -> dict[str, int]:
        shares = np.array([PROVINCES[p].share for p in self.provinces])
        sizes = np.floor(shares / shares.sum() * self.customers).astype(int)
        sizes[0] += self.customers - sizes.sum()
        return dict(zip(self.provinces, sizes.tolist()))

    def chunk_sizes(self, size: int) -> list[int]:
        """A province of ``size`` first lines in as few chunks of at most ``chunk_customers``
        as can be, as even as can be (the first ones one line larger)."""
        chunks = 1 if self.chunk_customers is None else max(-(-size // self.chunk_customers), 1)
        return [size // chunks + (k < size % chunks) for k in range(chunks)]


def _numbers(i: np.ndarray, prefixes: np.ndarray) -> np.ndarray:
    """One 11-digit number per global line index (distinct indices, distinct numbers)."""
    i = np.asarray(i, dtype=np.int64)
    body = ((i // len(prefixes)) * 7919 + 12_345_678) % 100_000_000
    return (prefixes[i % len(prefixes)].astype(np.int64) * 100_000_000 + body).astype(str)


def make_msisdns(start: int, n: int) -> np.ndarray:
    """Unique 11-digit mobile numbers for global customer indices start..start+n-1."""
    return _numbers(np.arange(start, start + n), PREFIXES)


def ported_msisdns(i: np.ndarray) -> np.ndarray:
    """Numbers ported in from another operator for global line indices ``i``: other operators'
    prefixes, so never one of ours."""
    return _numbers(i, PORT_PREFIXES)


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
    profile: ProvinceProfile,
    n: int,
    start_index: int,
    first_month: str,
    rng: np.random.Generator,
    tenure: Callable[[Population], np.ndarray] | None = None,
) -> Population:
    """Subscriber master and latent traits for one province.

    ``tenure``: given the lines (traits drawn, provisional activation dates), each line's
    tenure in whole months at the end of ``first_month``, 0 for a line opened in it
    (``stationary_tenure``); without it tenure is exponential, longer for loyal customers
    and VIPs.
    """
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
    tenure_months = np.clip(rng.exponential(30 * np.exp(0.4 * loyalty + 0.3 * vip_level)), 0, MAX_TENURE)
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
            "close_date": pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]"),  # dates when written
            "ported_in": False,
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
    if tenure is not None:
        # whole months open at the end of the first month: 0 for lines opened in it
        months = tenure(
            Population(master, traits, pd.DataFrame(columns=TABLES["red_black_list"].column_names))
        )
        back = ((months - 1) * 30.4375 + rng.uniform(0, 30.4375, n)).astype(int) + 1
        back = np.where(months == 0, -rng.integers(0, pd.Period(first_month, "M").days_in_month, n), back)
        activation = start - pd.to_timedelta(back, "D")
        master["activation_date"] = activation.normalize().date
    ported = (activation >= PORTABILITY_START) & (rng.random(n) < np.array(PORT_IN_SHARE)[(payment > 0) * 1])
    master["ported_in"] = ported
    master.loc[ported, "msisdn"] = ported_msisdns(np.arange(start_index, start_index + n)[ported])
    red_black = _listings(master["msisdn"].to_numpy(), activation, vip_level, abuser, rng)
    return Population(master, traits, red_black)


#: Tenures at which the churn truth is read to draw a line's stationary tenure (whole months; the
#: hazard between them is interpolated). Not 12, 13, 24, 25: single months where contracts end.
TENURE_GRID = np.array([0, 1, 2, 3, 5, 8, 11, 18, 36, 90, MAX_TENURE])
#: Months simulated (not written) before the warm-up to read each line's hazard from.
TRIAL_MONTHS = 12
#: The last trial months whose hazards are averaged into a line's hazard.
HAZARD_MONTHS = 8


def trial_months(
    pop: Population, first_month: str, rng: np.random.Generator
) -> tuple[list[MonthAggregate], list[np.ndarray], MonthAggregate]:
    """The ``TRIAL_MONTHS`` before ``first_month`` lived by every line (simulated, never
    written): their monthly sums and bills, so the first month starts with recent history,
    and the sums of a line in a month it had no line (``absent``, one value per sum)."""
    n = len(pop.master)
    lines = Population(
        pop.master.assign(activation_date=pd.Timestamp("1990-01-01").date()), pop.traits, pop.red_black
    )
    index = pd.Index(lines.master["msisdn"])
    history, fees = [], []
    for month in _trial_names(first_month):
        tables = simulate_month(lines, np.ones(n, dtype=bool), fees, month, World(), rng)
        history.append(aggregate_month(index, tables))
    absent = aggregate_month(pd.Index(["-"]), {k: v.iloc[:0] for k, v in tables.items()})
    return history, fees, absent


def stationary_tenure(
    pop: Population, history: list[MonthAggregate], first_month: str, growth: float, rng: np.random.Generator
) -> np.ndarray:
    """Each line's tenure at the end of ``first_month`` (whole months, up to ``MAX_TENURE``; 0:
    opened in it) drawn from the distribution lines of its kind have at a steady operator: a
    tenure is as likely as the chance such a line survives that long (less the growth of the
    base since it opened).

    The chance comes from the churn truth itself: the churn probability of each line, with
    the ``history`` of its trial months, at every tenure of ``TENURE_GRID`` gives its monthly
    hazard curve. So the base neither ages nor grows young as the months pass, whatever the
    truth, and churn starts at its steady level."""
    n = len(pop.master)
    lines = pop.master.assign(activation_date=pd.Timestamp("1990-01-01").date())
    columns = list(dict.fromkeys([*INPUTS[CHURN], "tenure_months"]))
    # a line's usage varies month to month, and so does its hazard (a heavy data month, a bill
    # increase): its life's hazard is the average over several months, not one month's
    p = np.zeros((n, len(TENURE_GRID)))
    last = pd.Period(first_month, "M") - 1
    for back in range(HAZARD_MONTHS):
        snapshot = indicators_at(lines, pop.red_black, history[: len(history) - back], str(last - back))
        grid = pd.concat([snapshot[columns].assign(tenure_months=g) for g in TENURE_GRID], ignore_index=True)
        p += churn_probability(grid, World()).reshape(len(TENURE_GRID), n).T / HAZARD_MONTHS
    grid_stay = np.log1p(-np.clip(p, 0.0, 1 - 1e-6)).astype(np.float32)  # log P(no churn in a month)
    months = np.arange(MAX_TENURE + 1)
    j = np.clip(np.searchsorted(TENURE_GRID, months, side="right") - 1, 0, len(TENURE_GRID) - 2)
    w = ((months - TENURE_GRID[j]) / (TENURE_GRID[j + 1] - TENURE_GRID[j])).astype(np.float32)
    grown = np.float32(np.log1p(growth)) * months.astype(np.float32)
    u = rng.random((n, 1), dtype=np.float32)
    tenure = np.empty(n, dtype=np.int64)
    for lo in range(0, n, 2048):  # a line per row, a tenure per column: in slices, to bound memory
        stay = grid_stay[lo : lo + 2048]
        stay = stay[:, j] + w * (stay[:, j + 1] - stay[:, j])
        # P(open after tau months), less the base's growth since then: the weight of tenure tau.
        cdf = np.cumsum(np.exp(np.cumsum(stay, axis=1) - stay - grown), axis=1)
        tenure[lo : lo + 2048] = (cdf < u[lo : lo + 2048] * cdf[:, -1:]).sum(axis=1)
    return tenure


def _listings(
    msisdn: np.ndarray, activation: pd.DatetimeIndex, vip_level: np.ndarray, abuser: np.ndarray, rng
) -> pd.DataFrame:
    """Red (VIP protection) and black (fraud or abuse) list entries, listed 30-900 days after
    the line opened; entries after the simulated period are dropped when the list is written."""
    n = len(msisdn)
    red = rng.random(n) < 0.004 + 0.05 * (vip_level >= 2)
    black = (rng.random(n) < 0.002) | (abuser & (rng.random(n) < 0.25))
    listed = activation + pd.to_timedelta(rng.integers(30, 900, n), unit="D")
    rows = []
    for flag, kind, reason in ((red, "red", "vip_protection"), (black, "black", "fraud_or_abuse")):
        idx = np.flatnonzero(flag)
        rows.append(
            pd.DataFrame(
                {
                    "msisdn": msisdn[idx],
                    "list_type": kind,
                    "listed_date": listed[idx].date,
                    "reason": reason,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _city_weights(k: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1)
    return w / w.sum()


def _season(kind: str, month: str) -> float:
    return SEASON[kind].get(int(month[-2:]), 1.0)


def _event_times(
    rng: np.random.Generator, month: str, count: int, share: np.ndarray | None = None
) -> np.ndarray:
    """Event instants within the month; with ``share`` (per event, the part of the month the
    line was open, 1 for a whole month) within the last ``share`` of it, after the line opened."""
    start = pd.Timestamp(month + "-01").to_datetime64().astype("datetime64[s]")
    seconds = int(pd.Period(month, "M").days_in_month * 86_400)
    if share is None:
        return start + rng.integers(0, seconds, count).astype("timedelta64[s]")
    offset = np.rint((1 - share) * seconds)
    return start + (offset + np.floor(rng.random(count) * (seconds - offset))).astype("timedelta64[s]")


def _ids(kind: str, province: str, month: str, count: int, start: int = 0) -> np.ndarray:
    """Work-order style identifiers, e.g. CGD2026010000042, numbered from ``start`` (the
    province-month's events an earlier chunk numbered)."""
    prefix = f"{kind}{province}{month.replace('-', '')}"
    return np.array([f"{prefix}{i:07d}" for i in range(start, start + count)], dtype=object)


def _categorical(codes: np.ndarray, categories: pd.Index) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=categories)


def simulate_month(
    pop: Population,
    active: np.ndarray,
    fee_history: list[np.ndarray],
    month: str,
    world: World,
    rng: np.random.Generator,
    share: np.ndarray | None = None,
    complaints_from: int = 0,
    refunds_from: int = 0,
) -> dict[str, pd.DataFrame]:
    """The raw partitions of one month for the customers whose line is open.

    ``share``: per customer, the part of the month the line was open (1 for a whole month;
    less in the month a new line opened): usage, allowances and contacts scale with it,
    events fall after the opening, and a first partial month has no arrears yet.
    ``fee_history`` holds each month's bills (NaN: none, or a partial first month), for the
    bill shock. ``complaints_from``, ``refunds_from``: the first complaint and refund ids'
    numbers (after an earlier chunk's of the province-month).
    """
    t = pop.traits
    n = len(active)
    idx = np.flatnonzero(active)
    m = len(idx)
    numbers = pd.Index(pop.master["msisdn"])
    cust = _categorical(idx, numbers)
    part = np.ones(m) if share is None else np.asarray(share, dtype=float)[idx]
    first_month = part < 1
    noise = np.exp(rng.normal(0, 0.25, m))
    value, digital = t["value"][idx], t["digital"][idx]

    voice = rng.gamma(2.0, 150 * value * _season("voice", month) * noise * part / 2.0)
    data = rng.gamma(1.5, 2500 * np.exp(0.6 * digital) * value * _season("data", month) * part / 1.5)
    data_reported = np.where(rng.random(m) < 0.01, np.nan, data)
    sms = rng.poisson(25 * np.exp(-0.4 * digital) * _season("sms", month) * part)
    mms = rng.poisson(0.8 * np.exp(0.2 * digital) * part)
    roams = rng.random(m) < 0.12 * _season("roaming", month) * part
    roaming = np.where(roams, rng.gamma(2.0, 40.0, m), 0.0)
    boundary = np.where(t["border"][idx], rng.gamma(1.5, 20.0 * part), 0.0)
    ports = rng.poisson(t["sp_rate"][idx] * part)
    callees = rng.poisson(18 * t["social"][idx] * _season("voice", month) * part)
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
    # A new line pays the whole month's plan fee; its allowances are pro rata (按日折算).
    plan_fee = t["plan_fee"][idx] + (10.0 if world.tariff_change else 0.0)
    included_minutes = plan_fee * 3 * part
    voice_fee = np.maximum(voice - included_minutes, 0) * 0.15 * tariff
    data_fee = np.maximum(data - plan_fee * 40 * part, 0) * 0.004 * tariff
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

    # Bill shock relative to the customer's own recent bills (a partial first month is no
    # baseline) drives inquiries and complaints.
    shock = np.zeros(m)
    if fee_history:
        recent = np.array([h[idx] for h in fee_history[-3:]])
        billed = ~np.isnan(recent)
        count = billed.sum(axis=0)
        prior = np.divide(np.where(billed, recent, 0.0).sum(axis=0), count, out=np.zeros(m), where=count > 0)
        shock = np.divide(total, prior, out=np.ones(m), where=prior > 0) - 1
    shock = np.clip(shock, 0, 3)

    stress = t["stress"][idx]
    postpaid = t["postpaid"][idx]
    arrears_p = np.where(postpaid, 1 / (1 + np.exp(3.4 - 1.3 * stress - 0.8 * shock)), 0.0)
    in_arrears = (rng.random(m) < arrears_p) & ~first_month
    paid = np.where(in_arrears, total * rng.uniform(0, 0.8, m), total)
    prepaid_suspend = ~postpaid & (rng.random(m) < 1 / (1 + np.exp(4.2 - 1.2 * stress))) & ~first_month
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
        * part
    )
    inq_n = rng.poisson(inquiry_rate)
    inq_idx = np.repeat(np.arange(m), inq_n)
    inq_channel_p = _softmax(np.column_stack([np.zeros(m), 0.2 * np.ones(m), digital, -0.5 - 0.3 * digital]))
    inquiries = pd.DataFrame(
        {
            "msisdn": _categorical(idx[inq_idx], numbers),
            "inquiry_time": _event_times(rng, month, len(inq_idx), part[inq_idx]),
            "channel": np.array(INQUIRY_CHANNELS)[_choice(rng, inq_channel_p[inq_idx])],
        }
    ).drop_duplicates(["msisdn", "inquiry_time", "channel"])

    grievance = t["grievance"][idx]
    complaint_rate = (
        0.012 * np.exp(0.8 * grievance) * (1 + 2.5 * shock) * (1.3 if world.tariff_change else 1.0) * part
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
    comp_ids = _ids("C", pop.master["province"].iat[0], month, k, complaints_from)
    complaints = pd.DataFrame(
        {
            "complaint_id": comp_ids,
            "msisdn": _categorical(idx[comp_idx], numbers),
            "complaint_time": _event_times(rng, month, k, part[comp_idx]),
            "category": np.array(COMPLAINT_CATEGORIES)[_choice(rng, cat_p)],
            "outcome": np.array(OUTCOMES)[outcome],
            "satisfaction": satisfaction,
        }
    )

    refunded = outcome == 1
    goodwill_n = rng.poisson(0.0005 * part)  # refunds without a complaint: billing corrections
    goodwill_idx = np.repeat(np.arange(m), goodwill_n)
    ref_cust = np.concatenate([comp_idx[refunded], goodwill_idx])
    r = len(ref_cust)
    ref_time = np.concatenate(
        [
            complaints["complaint_time"].to_numpy()[refunded]
            + rng.integers(3_600, 5 * 86_400, refunded.sum()).astype("timedelta64[s]"),
            _event_times(rng, month, len(goodwill_idx), part[goodwill_idx]),
        ]
    )
    end = (pd.Period(month, "M").end_time.floor("s")).to_datetime64()
    ref_time = np.minimum(ref_time, end)
    ref_abuser = t["abuser"][idx][ref_cust]
    refunds = pd.DataFrame(
        {
            "refund_id": _ids("R", pop.master["province"].iat[0], month, r, refunds_from),
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
    contact_n = rng.poisson(affinity * (1.3 * t["contact_rate"][idx] * part)[:, None])
    contact_n[:, CHANNELS.index("outbound")] = rng.poisson(0.25 * part)
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
            "contact_time": _event_times(rng, month, len(con_cust), part[con_cust]),
            "channel": np.array(CHANNELS)[con_channel],
            "campaign_response": response,
        }
    ).drop_duplicates(["msisdn", "contact_time", "channel"])

    fee_full = np.full(n, np.nan)
    fee_full[idx] = np.where(first_month, np.nan, total)
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


#: Indicators of the last snapshot the month's credit events and gifts read, besides the score.
KNOWN_COLUMNS = ("complaint_count_3m", "refund_count_12m", "double_refund_count_12m", "arrears_months_12m")


def credit_known(snapshot: pd.DataFrame) -> pd.DataFrame:
    """What a snapshot says of each line's credit (by msisdn): the truth's score and the
    indicators the kind of a credit event depends on."""
    return snapshot.set_index("msisdn")[list(KNOWN_COLUMNS)].assign(score=credit_score(snapshot))


def simulate_evidence(
    pop: Population,
    known: pd.DataFrame,
    complaints: pd.DataFrame,
    month: str,
    rng: np.random.Generator,
    share: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One month's credit events (those the score drives; the black-list entries come from the
    list when the province is written) and small gifts, without ids, for the lines open in
    ``month``, from what the last snapshot said of each line (``known``; a line opened since
    has the neutral score). Goodwill gifts follow the month's ``complaints``."""
    numbers = pop.master["msisdn"].astype(str).to_numpy()
    m = len(numbers)
    part = np.ones(m) if share is None else np.asarray(share, dtype=float)
    info = known.reindex(numbers)
    score = info["score"].fillna(CREDIT_NEUTRAL).to_numpy(float)

    who = np.repeat(np.arange(m), rng.poisson(credit_event_rate(score) * part))
    weights = event_type_weights(info.fillna(0.0))[who]
    kind = _choice(rng, weights / weights.sum(axis=1, keepdims=True))
    events = pd.DataFrame(
        {
            "msisdn": numbers[who],
            "event_time": _event_times(rng, month, len(who), part[who]),
            "event_type": np.array(RATE_EVENT_TYPES, dtype=object)[kind],
            "amount": event_amounts(kind, rng),
        }
    )

    filed = pd.Index(numbers).get_indexer(complaints["msisdn"].astype(str))
    goodwill = rng.random(len(filed)) < goodwill_probability(score[filed])
    end = pd.Period(month, "M").end_time.floor("s").to_datetime64()
    goodwill_time = np.minimum(
        complaints["complaint_time"].to_numpy()[goodwill].astype("datetime64[s]")
        + rng.integers(3_600, 3 * 86_400, goodwill.sum()).astype("timedelta64[s]"),
        end,
    )
    cared = np.repeat(np.arange(m), rng.poisson(care_rate(score, pop.traits["vip_level"]) * part))
    reason = np.concatenate([np.zeros(goodwill.sum(), dtype=np.int64), np.ones(len(cared), dtype=np.int64)])
    gifts = pd.DataFrame(
        {
            "msisdn": np.concatenate([numbers[filed[goodwill]], numbers[cared]]),
            "gift_time": np.concatenate([goodwill_time, _event_times(rng, month, len(cared), part[cared])]),
            "amount": gift_amounts(reason, rng),
            "reason": np.array(GIFT_REASONS, dtype=object)[reason],
        }
    )
    return events, gifts


def _numbered(
    frame: pd.DataFrame, id_column: str, kind: str, province: str, month: str, start: int = 0
) -> pd.DataFrame:
    """A month's events in time order, each with its work-order style id first (numbered from
    ``start``: after an earlier chunk's of the province-month)."""
    time = next(c for c in frame.columns if c.endswith("_time"))
    frame = frame.sort_values([time, "msisdn"], kind="stable").reset_index(drop=True)
    ids = _ids(kind, province, month, len(frame), start)
    return frame.assign(**{id_column: ids})[[id_column, *frame.columns]]


def new_lines(
    pop: Population, like: np.ndarray, index: np.ndarray, month: str, rng: np.random.Generator
) -> tuple[Population, np.ndarray]:
    """Lines opening in ``month``, one per position in ``like``: each takes the latent traits,
    city, category, brand, payment method and terminal of that line; a new number (global
    line ``index``) or, for some, one ported in from another operator; a fresh number level
    and red/black listing; tenure 0. Returns them and the share of the month each is open."""
    n = len(like)
    period = pd.Period(month, "M")
    days = period.days_in_month
    day = rng.integers(1, days + 1, n)
    activation = pd.DatetimeIndex(period.start_time + pd.to_timedelta(day - 1, unit="D"))
    traits = {k: v[like].copy() for k, v in pop.traits.items()}
    ported = rng.random(n) < np.array(PORT_IN_SHARE)[traits["postpaid"] * 1]
    msisdn = np.where(ported, ported_msisdns(index), _numbers(index, PREFIXES))
    vip_level = traits["vip_level"]
    master = pop.master.iloc[like].reset_index(drop=True)
    master["msisdn"] = msisdn
    master["activation_date"] = activation.date
    master["number_level"] = np.minimum(rng.geometric(np.clip(0.85 - 0.12 * vip_level, 0.3, 0.95)) - 1, 4)
    master["status"] = "active"
    master["close_date"] = pd.NaT
    master["ported_in"] = ported
    red_black = _listings(msisdn, activation, vip_level, traits["abuser"], rng)
    return Population(master, traits, red_black), (days - day + 1) / days


def _trial_names(first_month: str) -> list[str]:
    return month_list(str(pd.Period(first_month, "M") - TRIAL_MONTHS), TRIAL_MONTHS)


def _expected_growth(open_lines: int, planned: float, growth: float) -> float:
    """Expected new lines beyond the replacements: the base's growth, plus a pull towards the
    planned base (so chance does not accumulate into a drifting base), never negative."""
    return max(growth * open_lines + PLAN_PULL * (planned - open_lines), 0.0)


def chunk_streams(seed: int, p_index: int, chunk: int) -> tuple[np.random.Generator, ...]:
    """A chunk's three streams: its lines, its trial months, its credit evidence. Chunk 0 keeps
    the province's own ([seed, p], [seed, p, 1], [seed, p, 2]), so a province of one chunk is as
    it was; chunk c > 0 appends c ([seed, p, 0, c], [seed, p, 1, c], [seed, p, 2, c]). A seed
    sequence pads its key with zeros ([s, p] is [s, p, 0, 0]), so c != 0 keeps them apart."""
    if chunk == 0:
        keys = [[seed, p_index], [seed, p_index, 1], [seed, p_index, 2]]
    else:
        keys = [[seed, p_index, k, chunk] for k in range(3)]
    return tuple(np.random.default_rng(k) for k in keys)


def new_line_indices(
    config: GeneratorConfig, p_index: int, chunk: int, chunks: int, opened: int, count: int
) -> np.ndarray:
    """Global line indices (``_numbers``) of the next ``count`` new lines of a province's chunk
    (of ``chunks``), after the ``opened`` it opened before: past the first lines' indices
    (``customers``), a chunk's k-th new line takes ``customers + (k * chunks + chunk) *
    provinces + p_index``, so no two lines of any province or chunk ever share a number. One
    chunk: ``customers + k * provinces + p_index``, as it always was."""
    k = opened + np.arange(count, dtype=np.int64)
    return config.customers + (k * chunks + chunk) * len(config.provinces) + p_index


#: Writes one raw table's frame for a month (None: a master table) of the province simulated.
RawWriter = Callable[[pd.DataFrame, str, "str | None"], None]


def simulate_chunk(
    config: GeneratorConfig,
    p_index: int,
    chunk: int,
    chunks: int,
    size: int,
    offset: int,
    write: RawWriter,
    written: dict[tuple[str, str | None], int],
    progress: Callable[[float], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One chunk of a province (``size`` of its first lines, global indices from ``offset``, and
    the lines that replace them) over the warm-up and the recorded months: writes its monthly
    raw partitions and returns its subscribers, red/black list, oracle and labels (recorded
    months only). Its lines live apart from the other chunks' (nothing couples two lines of a
    province); its new lines' numbers (``new_line_indices``) and its events' ids (after the
    ``written`` rows of earlier chunks, per table and month) are its own."""
    province = config.provinces[p_index]
    rng, trial_rng, evidence_rng = chunk_streams(config.seed, p_index, chunk)
    months = config.simulated_names
    trial: dict = {}  # what the trial months leave: history, bills, a missing line's sums

    def settle(lines: Population) -> np.ndarray:
        trial["history"], trial["fees"], trial["absent"] = trial_months(lines, months[0], trial_rng)
        return stationary_tenure(lines, trial["history"], months[0], config.growth, trial_rng)

    pop = make_population(PROVINCES[province], size, offset, months[0], rng, tenure=settle)
    # Everything below is aligned to the lines open this month (pop's rows). The warm-up starts
    # from the trial months' history, without the months before a line opened.
    absent = trial["absent"]
    opening = pd.to_datetime(pop.master["activation_date"]).to_numpy()
    later = [opening > pd.Period(m, "M").end_time.to_datetime64() for m in _trial_names(months[0])]
    history = [{k: np.where(x, absent[k], v) for k, v in h.items()} for h, x in zip(trial["history"], later)]
    fees = [np.where(x, np.nan, f) for f, x in zip(trial["fees"], later)]
    serial = np.arange(size)  # the order lines opened in, for the written master table
    month_days = pd.Period(months[0], "M").days_in_month
    into = (opening - pd.Timestamp(months[0] + "-01").to_datetime64()) / np.timedelta64(1, "D")
    share = (month_days - np.clip(into, 0, month_days)) / month_days  # part of this month each line is open
    closed, oracles, labels = [], [], []
    opened = 0
    # Credit events and small gifts draw from a stream of their own: the other tables stay as they were.
    before = str(pd.Period(months[0], "M") - 1)
    known = credit_known(indicators_at(pop.master, pop.red_black, history, before))
    scored_events: dict[str, pd.DataFrame] = {}
    for t, month in enumerate(months):
        drifting = config.drift_provinces is None or province in config.drift_provinces
        world = World.at(month, config.drift_month if drifting else None)
        index = pd.Index(pop.master["msisdn"])
        tables = simulate_month(
            pop,
            np.ones(len(index), dtype=bool),
            fees,
            month,
            world,
            rng,
            share,
            complaints_from=written.get(("complaints", month), 0),
            refunds_from=written.get(("refunds", month), 0),
        )
        fees[:] = fees[-3:]
        scored_events[month], gifts = simulate_evidence(
            pop, known, tables["complaints"], month, evidence_rng, share
        )
        tables["small_gifts"] = _numbered(
            gifts, "gift_id", "G", province, month, written.get(("small_gifts", month), 0)
        )
        for name, frame in tables.items():
            write(frame, name, month)
        history.append(aggregate_month(index, tables))
        history = history[-WINDOW_MONTHS:]
        snapshot = indicators_at(pop.master, pop.red_black, history, month)
        known = credit_known(snapshot)
        if t >= config.warmup_months:
            oracle, label = truth_for_snapshot(snapshot, world, rng)
            oracles.append(oracle.assign(province=province, month=month))
            labels.append(label.assign(province=province, month=month))
            churned = label.loc[label["churned_next_month"] == 1, "msisdn"]
            if progress:
                progress(1)
        else:  # the warm-up needs only who churns, drawn as the labels are
            churned = snapshot.loc[rng.random(len(snapshot)) < churn_probability(snapshot, world), "msisdn"]
        if t + 1 == len(months):
            break  # the warehouse only knows closures within the generated window
        # Churned lines close in the next month; new lines open in it, like the ones leaving.
        nxt = pd.Period(months[t + 1], "M")
        leaving = index.get_indexer(churned)
        gone = pop.master.iloc[leaving].assign(_serial=serial[leaving])
        days = rng.integers(1, nxt.days_in_month + 1, len(leaving))
        gone["close_date"] = nxt.start_time + pd.to_timedelta(days - 1, unit="D")
        gone["status"] = "closed"
        closed.append(gone)
        # Every closing line is replaced by one like it (the market that churns is the market
        # that switches: composition stays put whatever churn does); the growth lines are
        # like randomly chosen staying lines.
        keep = np.ones(len(index), dtype=bool)
        keep[leaving] = False
        planned = size * (1 + config.growth) ** (t + 1)
        grown = rng.poisson(_expected_growth(len(index), planned, config.growth)) if keep.any() else 0
        like = np.concatenate([leaving, rng.choice(np.flatnonzero(keep), grown)]).astype(np.int64)
        numbers = new_line_indices(config, p_index, chunk, chunks, opened, len(like))
        new, new_share = new_lines(pop, like, numbers, str(nxt), rng)
        opened += len(like)
        history = [
            {k: np.concatenate([v[keep], np.repeat(absent[k], len(like))]) for k, v in h.items()}
            for h in history
        ]
        fees[:] = [np.concatenate([f[keep], np.full(len(like), np.nan)]) for f in fees]
        share = np.concatenate([np.ones(keep.sum()), new_share])
        serial = np.concatenate([serial[keep], size + opened - len(like) + np.arange(len(like))])
        pop = Population(
            pd.concat([pop.master[keep], new.master], ignore_index=True),
            {k: np.concatenate([v[keep], new.traits[k]]) for k, v in pop.traits.items()},
            pd.concat([pop.red_black, new.red_black], ignore_index=True),
        )
    subscribers = (
        pd.concat([*closed, pop.master.assign(_serial=serial)], ignore_index=True)
        .sort_values("_serial", kind="stable")
        .drop(columns="_serial")
        .reset_index(drop=True)
    )
    red_black = pop.red_black
    listed = pd.to_datetime(red_black["listed_date"])
    close = red_black["msisdn"].map(subscribers.set_index("msisdn")["close_date"])
    end = pd.Period(months[-1], "M").end_time
    red_black = red_black[((listed <= end) & (close.isna() | (listed <= close))).to_numpy()]
    closing = subscribers["close_date"]
    subscribers["close_date"] = np.where(closing.isna(), None, closing.dt.date)
    # The black-list entries join the month's credit events: the list's own listings, one source.
    listed = listing_events(red_black, months)
    listed_month = pd.to_datetime(listed["event_time"]).dt.strftime("%Y-%m")
    events = []
    for month in months:
        frame = pd.concat([scored_events[month], listed[listed_month == month]], ignore_index=True)
        frame = _numbered(frame, "event_id", "E", province, month, written.get(("credit_events", month), 0))
        write(frame, "credit_events", month)
        events.append(frame)
    oracle = pd.concat(oracles, ignore_index=True) if oracles else pd.DataFrame()
    label = pd.concat(labels, ignore_index=True) if labels else pd.DataFrame()
    if len(label):
        outcome = credit_bad_event(label, pd.concat(events, ignore_index=True), months[-1])
        label[OUTCOME_COLUMN] = outcome.to_numpy()
    return subscribers, red_black.reset_index(drop=True), oracle, label


def _arrow(frame: pd.DataFrame, table: str | None) -> pa.Table:
    """A chunk's rows as Arrow. A column without a single value (Arrow's null type: say, no
    refund in this chunk's month points to a complaint) takes its declared type, so that the
    next chunk's values fit the file's schema the first chunk fixes."""
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    declared = TABLES.get(table)
    if declared is None or not any(pa.types.is_null(f.type) for f in arrow.schema):
        return arrow
    fields = [
        pa.field(f.name, ARROW_TYPES[declared.column(f.name).kind])
        if pa.types.is_null(f.type) and f.name in declared.column_names
        else f
        for f in arrow.schema
    ]
    return arrow.cast(pa.schema(fields, metadata=arrow.schema.metadata))


def simulate_province(
    config: GeneratorConfig,
    p_index: int,
    size: int,
    offset: int,
    raw_dir: Path,
    truth_dir: Path,
    counts: dict[str, int],
    progress: Callable[[float], None] | None = None,
) -> None:
    """One province over the warm-up and the recorded months, chunk by chunk
    (``GeneratorConfig.chunk_sizes``): its monthly raw partitions, subscribers and red/black
    list, and its oracle and labels (recorded months only).

    One chunk: each file written whole, as it always was. Several: each chunk's rows are
    appended to every file as row groups of its own (the files the readers know, one per
    province-month), in hidden temporaries renamed when the province is done: memory holds one
    chunk, and a killed run replaces no file."""
    province = config.provinces[p_index]
    sizes = config.chunk_sizes(size)
    written: dict[tuple[str, str | None], int] = {}  # rows of earlier chunks per table and month
    with AtomicTableFiles() as files:

        def put(frame: pd.DataFrame, path: Path, table: str | None = None) -> None:
            if len(sizes) == 1:
                atomic_write_parquet(frame, path)
            else:
                files.write(_arrow(frame, table), path)

        def write(frame: pd.DataFrame, table: str, month: str | None = None) -> None:
            put(frame, partition_path(raw_dir, table, province, month), table)
            counts[table] = counts.get(table, 0) + len(frame)
            written[(table, month)] = written.get((table, month), 0) + len(frame)

        start = 0
        for chunk, n in enumerate(sizes):
            # a recorded month of the province is done when every chunk has lived it
            tick = progress if progress is None or len(sizes) == 1 else _share_of(progress, n / size)
            subscribers, red_black, oracle, labels = simulate_chunk(
                config, p_index, chunk, len(sizes), n, offset + start, write, written, tick
            )
            start += n
            write(subscribers, "subscribers")
            write(red_black, "red_black_list")
            put(oracle, Path(truth_dir) / "oracle" / f"{province}.parquet")
            put(labels, Path(truth_dir) / "labels" / f"{province}.parquet")
            del subscribers, red_black, oracle, labels


def _share_of(progress: Callable[[float], None], share: float) -> Callable[[float], None]:
    return lambda n=1: progress(n * share)


def generate(
    config: GeneratorConfig, raw_dir: Path, truth_dir: Path, progress: Callable[[float], None] | None = None
) -> dict[str, int]:
    """Write raw tables (warm-up and recorded months), labels and oracle probabilities (recorded
    months); returns row counts per table. ``progress`` is called once per recorded month of a
    province (with the chunk's share of it, for a province of several chunks)."""
    counts: dict[str, int] = {}
    offset = 0
    for p_index, size in enumerate(config.province_sizes().values()):
        simulate_province(config, p_index, size, offset, raw_dir, truth_dir, counts, progress)
        offset += size
    return counts


__all__ = [
    "GeneratorConfig",
    "generate",
    "make_msisdns",
    "ported_msisdns",
    "new_lines",
    "new_line_indices",
    "simulate_chunk",
    "simulate_province",
    "PROVINCES",
    "snapshot_time",
]
