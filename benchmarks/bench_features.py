#!/usr/bin/env python
"""Feature-store benchmarks: throughput, peak memory, online latency, offline retrieval.

One run measures, side by side:

1. per dataset size (default 100k and 1M subscribers, 12 months, 4 provinces), each stage
   in its own spawned process so its peak RSS is its own:
   generation (raw rows/s, customer-months/s), indicator build (customer-months/s) and
   materialization of the latest month into the SQLite online store (rows/s, a row being
   one customer in one of the 5 feature views);
2. online lookup latency of ONE customer (p50/p99 over N random known customers, after a
   warm-up) on the latency dataset (default: the smallest size), with SQLite and with
   Redis: the credit-grade feature service (``features.store.online_view``) against a
   bare one-feature Feast view (``bare_view:monthly_consumption``) in the same store;
3. ``get_historical_features`` (``churn_v1``) on the same entity frame with the DuckDB
   offline store and with Feast's file (Dask) offline store.

Prints tables, writes JSON to ``benchmarks/results/features-<date>.json`` and ends with
one line of ``key=value`` pairs. Usage::

    python benchmarks/bench_features.py [--sizes 100000,1000000] [--workdir DIR] [--lookups 300]

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
import traceback
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable without an editable install too
    sys.path.insert(0, str(ROOT))

from benchmarks.common import environment  # noqa: E402

BARE_VIEW = "bare_view"
BARE_FEATURE = "monthly_consumption"
DEFAULT_PROVINCES = ("GD", "SC", "HE", "ZJ")


# --------------------------------------------------------------------------------------
# Child-process side: every stage function below runs in a fresh spawned interpreter.
# --------------------------------------------------------------------------------------


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_mib() -> float:
    """High-water RSS of this process: VmHWM (Linux; its own address space only),
    falling back to getrusage(RUSAGE_SELF).ru_maxrss."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _log(msg: str) -> None:
    print(f"  [{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


class _Ticker:
    """A progress callback that logs at most every ``every`` seconds."""

    def __init__(self, label: str, total: int, every: float = 20.0):
        self.label, self.total, self.every = label, total, every
        self.done, self.t0, self.last = 0, time.perf_counter(), 0.0

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.perf_counter() - self.t0
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            _log(f"{self.label}: {self.done}/{self.total} province-months, {now:.0f}s")


def _child(stage: str, kwargs: dict) -> dict:
    """Entry point in the child: import the stack, note the baseline RSS, run the stage."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # Feast's materialize bars would flood a log
    import warnings

    # Dask prints a FutureWarning per partition and lazily imported Feast modules reset
    # the filters (simplefilter("once", ...)), so drop these two kinds at display time.
    show = warnings.showwarning

    def quiet(message, category, *args, **kwargs):
        if not issubclass(category, (FutureWarning, DeprecationWarning)):
            show(message, category, *args, **kwargs)

    warnings.showwarning = quiet
    import features.build  # noqa: F401  (baseline includes the whole stack)
    import features.generate  # noqa: F401
    import features.store  # noqa: F401

    base = _rss_mib()
    out = globals()[stage](**kwargs)
    out["base_mib"] = round(base, 1)
    out["peak_mib"] = round(_peak_mib(), 1)
    import resource

    grandchildren = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if grandchildren:
        out["grandchild_peak_mib"] = round(grandchildren, 1)
    return out


def _dir_mib(path: Path) -> float:
    return round(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20, 1)


def _latest_month(offline_dir: Path) -> str:
    files = sorted((Path(offline_dir) / "profile").glob("*.parquet"))
    return max(f.stem.split("_", 1)[1] for f in files)


def _customers_at(offline_dir: Path, month: str) -> list[str]:
    import pandas as pd

    files = sorted((Path(offline_dir) / "profile").glob(f"*_{month}.parquet"))
    return pd.concat([pd.read_parquet(f, columns=["msisdn"]) for f in files])["msisdn"].astype(str).tolist()


def bare_view(offline_dir: Path):
    """A one-feature view on the billing_payment snapshots, registered beside the real ones."""
    from feast import FeatureView, Field
    from feast.types import Float64

    from features.repo import SNAPSHOT_TTL, customer, source

    return FeatureView(
        name=BARE_VIEW,
        entities=[customer],
        ttl=SNAPSHOT_TTL,
        schema=[Field(name=BARE_FEATURE, dtype=Float64)],
        source=source(offline_dir, "billing_payment"),
        online=True,
        tags={"purpose": "benchmark baseline"},
    )


def stage_generate(workdir: str, customers: int, months: int, provinces: list[str], seed: int) -> dict:
    from core.settings import Settings
    from features.generate import GeneratorConfig, generate

    s = Settings(workdir=Path(workdir))
    cfg = GeneratorConfig(customers=customers, months=months, provinces=tuple(provinces), seed=seed)
    tick = _Ticker(f"generate {customers:,}", len(provinces) * months)
    t0 = time.perf_counter()
    counts = generate(cfg, s.raw_dir, s.truth_dir, progress=tick)
    seconds = time.perf_counter() - t0
    raw_rows = sum(counts.values())
    # One usage row per open line per month: exactly the customer-months simulated.
    customer_months = counts["usage"]
    return {
        "seconds": seconds,
        "raw_rows": raw_rows,
        "customer_months": customer_months,
        "rows_per_s": raw_rows / seconds,
        "cm_per_s": customer_months / seconds,
        "counts": counts,
        "raw_mib": _dir_mib(s.raw_dir),
    }


def stage_build(workdir: str) -> dict:
    from core.settings import Settings
    from features.build import available_months, available_provinces, build_indicators

    s = Settings(workdir=Path(workdir))
    provinces = available_provinces(s.raw_dir)
    months = available_months(s.raw_dir, provinces[0])
    tick = _Ticker("build", len(provinces) * len(months))
    t0 = time.perf_counter()
    rows = build_indicators(s.raw_dir, s.offline_dir, provinces, months, progress=tick)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "customer_months": rows,
        "cm_per_s": rows / seconds,
        "offline_mib": _dir_mib(s.offline_dir),
    }


def stage_materialize(workdir: str) -> dict:
    """Apply the repository (plus the bare view) and materialize the 5 views, SQLite."""
    import sqlite3

    from core import indicators as lib
    from core.settings import Settings
    from features.store import apply_repository, materialize_latest

    s = Settings(workdir=Path(workdir), online_store="sqlite")
    t0 = time.perf_counter()
    store = apply_repository(s, extra=[bare_view(s.offline_dir)])
    apply_s = time.perf_counter() - t0
    month = _latest_month(s.offline_dir)
    customers = len(_customers_at(s.offline_dir, month))
    _log(f"materialize {customers:,} customers x {len(lib.SUBJECTS)} views of {month} into SQLite")
    t0 = time.perf_counter()
    materialize_latest(store, month, views=list(lib.SUBJECTS))
    seconds = time.perf_counter() - t0
    rows = customers * len(lib.SUBJECTS)
    db = s.feature_repo_dir / "online_store.db"
    with sqlite3.connect(db) as conn:  # sanity: every customer of every view is online
        stored = {
            v: conn.execute(f'SELECT COUNT(DISTINCT entity_key) FROM "{s.project}_{v}"').fetchone()[0]
            for v in lib.SUBJECTS
        }
    return {
        "seconds": seconds,
        "apply_s": apply_s,
        "month": month,
        "customers": customers,
        "rows": rows,
        "rows_per_s": rows / seconds,
        "entities_stored": stored,
        "online_db_mib": round(db.stat().st_size / 2**20, 1),
    }


def _pct(values_ms: list[float]) -> dict:
    import numpy as np

    a = np.asarray(values_ms)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
        "n": int(len(a)),
    }


def stage_latency(
    workdir: str, backend: str, lookups: int, warmup: int, seed: int, redis_url: str, project: str | None
) -> dict:
    """One-customer online lookups: credit-grade service vs bare one-feature view."""
    import numpy as np
    import pandas as pd

    from core import indicators as lib
    from core.settings import Settings
    from features.repo import definitions, service_name
    from features.store import materialize_latest, online_view, open_store

    data = Settings(workdir=Path(workdir))
    month = _latest_month(data.offline_dir)
    out: dict = {"backend": backend, "month": month}
    if backend == "sqlite":
        store = open_store(data)  # repository (with the bare view) applied by stage_materialize
        teardown = False
    else:
        # Own project and repo folder (so keys and registry collide with nothing), same data.
        s = Settings(
            workdir=Path(workdir) / f"redis-{project}",
            online_store="redis",
            redis_url=redis_url,
            project=project,
        )
        store = open_store(s)
        store.apply([*definitions(data.offline_dir), bare_view(data.offline_dir)])
        teardown = True
        out["project"] = project
    try:
        customers = _customers_at(data.offline_dir, month)
        if backend == "redis":
            t0 = time.perf_counter()
            materialize_latest(store, month, views=list(lib.SUBJECTS))
            out["materialize_s"] = time.perf_counter() - t0
            out["materialize_rows"] = len(customers) * len(lib.SUBJECTS)
            out["materialize_rows_per_s"] = out["materialize_rows"] / out["materialize_s"]
        t0 = time.perf_counter()
        materialize_latest(store, month, views=[BARE_VIEW])
        out["bare_materialize_s"] = time.perf_counter() - t0

        rng = np.random.default_rng(seed)
        sample = [customers[i] for i in rng.choice(len(customers), size=warmup + lookups, replace=True)]
        service = store.get_feature_service(service_name(lib.CREDIT_GRADE))
        bare_refs = [f"{BARE_VIEW}:{BARE_FEATURE}"]
        out["service_features"] = sum(len(p.features) for p in service.feature_view_projections)
        out["service_views"] = len(service.feature_view_projections)

        def rows(m):
            return [{"msisdn": m}]

        variants = {
            # The project's call path: feature service fetched by name, then a DataFrame.
            "service_view": lambda m: online_view(store, [m], lib.CREDIT_GRADE),
            # The same service object held by the caller (no registry read per lookup).
            "service_held_df": lambda m: store.get_online_features(
                features=service, entity_rows=rows(m)
            ).to_df(),
            "service_held_dict": lambda m: store.get_online_features(
                features=service, entity_rows=rows(m)
            ).to_dict(),
            # Bare Feast: one feature of one view.
            "bare_dict": lambda m: store.get_online_features(
                features=bare_refs, entity_rows=rows(m)
            ).to_dict(),
            "bare_df": lambda m: store.get_online_features(features=bare_refs, entity_rows=rows(m)).to_df(),
        }
        # Sanity: values are there and the bare view agrees with the offline snapshot.
        billing = pd.concat(
            [
                pd.read_parquet(f, columns=["msisdn", BARE_FEATURE])
                for f in sorted((data.offline_dir / "billing_payment").glob(f"*_{month}.parquet"))
            ]
        )
        want = billing.set_index("msisdn")[BARE_FEATURE]
        for m in sample[:5]:
            credit = online_view(store, [m], lib.CREDIT_GRADE)
            assert credit.drop(columns=["msisdn"]).notna().any(axis=None), f"no online values for {m}"
            got = variants["bare_dict"](m)[BARE_FEATURE][0]
            assert got is not None and abs(got - want.loc[m]) < 1e-6, (m, got, want.loc[m])

        # One block per variant (warm-up, then the timed lookups), the same customers in
        # each: interleaving would let online_view's registry re-read (get_feature_service
        # defaults to allow_cache=False) evict the request-context cache of the next call.
        times: dict[str, list[float]] = {}
        for name, call in variants.items():
            for m in sample[:warmup]:
                call(m)
            times[name] = []
            for m in sample[warmup:]:
                t0 = time.perf_counter_ns()
                call(m)
                times[name].append((time.perf_counter_ns() - t0) / 1e6)
        out["lookups"] = {n: _pct(v) for n, v in times.items()}
        p50 = {n: s["p50_ms"] for n, s in out["lookups"].items()}
        out["p50_ratio"] = p50["service_view"] / p50["bare_dict"]
        out["p50_ratio_held"] = p50["service_held_dict"] / p50["bare_dict"]
        out["seconds"] = sum(sum(v) for v in times.values()) / 1000
    finally:
        if teardown:
            store.teardown()
            import redis

            host, port = redis_url.split(",")[0].split(":")
            client = redis.Redis(host=host, port=int(port))
            out["redis_keys_left"] = sum(1 for _ in client.scan_iter(match=f"*{project}*", count=10_000))
            shutil.rmtree(Path(workdir) / f"redis-{project}", ignore_errors=True)
    return out


def _entity_frame(offline_dir: Path, rows: int, seed: int):
    """``rows`` random (customer, time) pairs from the snapshots; times fall between
    one snapshot and the next, so the point-in-time join has work to do."""
    import numpy as np
    import pandas as pd

    files = sorted((Path(offline_dir) / "profile").glob("*.parquet"))
    pool = pd.concat(
        [pd.read_parquet(f, columns=["msisdn", "event_timestamp"]) for f in files], ignore_index=True
    )
    rng = np.random.default_rng(seed)
    pick = pool.iloc[rng.choice(len(pool), size=min(rows, len(pool)), replace=False)].reset_index(drop=True)
    offset = pd.to_timedelta(rng.integers(0, 20 * 86_400, len(pick)), unit="s")
    ts = pd.to_datetime(pick["event_timestamp"], utc=True).astype("datetime64[us, UTC]") + offset
    return pd.DataFrame({"msisdn": pick["msisdn"].astype(str), "event_timestamp": ts})


def stage_historical(workdir: str, offline_store: str, rows: int, seed: int) -> dict:
    from core import indicators as lib
    from core.settings import Settings
    from features.store import open_store, training_frame

    s = Settings(workdir=Path(workdir), offline_store=offline_store)
    store = open_store(s)  # registry applied by stage_materialize
    entity = _entity_frame(s.offline_dir, rows, seed)
    t0 = time.perf_counter()
    training_frame(store, entity.head(1000), lib.CHURN)  # warm-up: imports, file metadata, caches
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    frame = training_frame(store, entity, lib.CHURN)
    seconds = time.perf_counter() - t0
    values = frame.sort_values(["msisdn", "event_timestamp"])
    return {
        "seconds": seconds,
        "warmup_s": warm_s,
        "entity_rows": len(entity),
        "rows": len(frame),
        "columns": frame.shape[1],
        "null_monthly_consumption": int(values["monthly_consumption"].isna().sum()),
        "checksum": float(values["monthly_consumption"].fillna(0).sum()),
        "rows_per_s": len(frame) / seconds,
    }


# --------------------------------------------------------------------------------------
# Parent side: orchestration, tables, JSON, the key=value line.
# --------------------------------------------------------------------------------------


def in_child(stage: str, **kwargs) -> dict:
    """Run one stage in a fresh spawned process; an exception becomes {"error": ...}."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        try:
            return pool.submit(_child, stage, kwargs).result()
        except Exception as err:  # noqa: BLE001  (report and go on with the other stages)
            text = "".join(traceback.format_exception_only(type(err), err)).strip()
            print(f"  !! {stage} failed: {text}", flush=True)
            return {"error": text}


def label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def _si(x: float | None) -> str:
    if x is None:
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}"


def _f(x, fmt: str = ".1f") -> str:
    return "-" if x is None else format(x, fmt)


def print_tables(results: dict) -> None:
    cfg = results["config"]
    print()
    print(
        f"== Pipeline throughput ({cfg['months']} months, {len(cfg['provinces'])} provinces; "
        "each stage in its own process) =="
    )
    head = (
        f"{'size':>6}  {'stage':<12} {'seconds':>9} {'rows':>9} {'rows/s':>9} "
        f"{'cust-mo':>9} {'cust-mo/s':>10} {'peak MiB':>9} {'base MiB':>9}  note"
    )
    print(head)
    print("-" * len(head))
    for size in cfg["sizes"]:
        r = results["sizes"][str(size)]
        lab = label(size)
        g, b, m = r.get("generate", {}), r.get("build", {}), r.get("materialize", {})
        rows = [
            (
                "generate",
                g,
                g.get("raw_rows"),
                g.get("rows_per_s"),
                g.get("customer_months"),
                g.get("cm_per_s"),
                f"raw rows, all tables; raw {g.get('raw_mib', '-')} MiB",
            ),
            (
                "build",
                b,
                None,
                None,
                b.get("customer_months"),
                b.get("cm_per_s"),
                f"offline {b.get('offline_mib', '-')} MiB",
            ),
            (
                "materialize",
                m,
                m.get("rows"),
                m.get("rows_per_s"),
                None,
                None,
                f"SQLite, {_si(m.get('customers'))} customers x 5 views; apply {_f(m.get('apply_s'))}s",
            ),
        ]
        for name, d, n, rps, cm, cmps, note in rows:
            if "error" in d:
                print(f"{lab:>6}  {name:<12} FAILED: {d['error'][:100]}")
                continue
            if not d:
                print(f"{lab:>6}  {name:<12} (skipped)")
                continue
            print(
                f"{lab:>6}  {name:<12} {_f(d.get('seconds')):>9} {_si(n):>9} {_si(rps):>9} "
                f"{_si(cm):>9} {_si(cmps):>10} {_f(d.get('peak_mib'), '.0f'):>9} "
                f"{_f(d.get('base_mib'), '.0f'):>9}  {note}"
            )

    lat = results.get("latency", {})
    if lat:
        print()
        print(
            f"== Online lookup latency, ONE customer ({label(lat['size'])} dataset, "
            f"{cfg['lookups']} lookups of random known customers after {cfg['warmup']} warm-up) =="
        )
        head = f"{'store':<7} {'lookup':<52} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}"
        print(head)
        print("-" * len(head))
        desc = {
            "service_view": "credit_grade_v1 via online_view() -> DataFrame",
            "service_held_df": "credit_grade_v1, service object held -> .to_df()",
            "service_held_dict": "credit_grade_v1, service object held -> .to_dict()",
            "bare_dict": f"bare {BARE_VIEW}:{BARE_FEATURE} -> .to_dict()",
            "bare_df": "bare, same -> .to_df()",
        }
        for backend in ("sqlite", "redis"):
            d = lat.get(backend, {})
            if "error" in d or not d:
                print(f"{backend:<7} FAILED: {d.get('error', 'not run')[:120]}")
                continue
            for name, text in desc.items():
                s = d["lookups"][name]
                print(f"{backend:<7} {text:<52} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['mean_ms']:>8.2f}")
            print(f"{backend:<7} {'p50 ratio online_view / bare .to_dict':<52} {d['p50_ratio']:>8.2f}")
            print(
                f"{backend:<7} {'p50 ratio service held .to_dict / bare .to_dict':<52} "
                f"{d['p50_ratio_held']:>8.2f}"
            )
        sq = lat.get("sqlite", {})
        if "service_features" in sq:
            print(
                f"(credit_grade_v1 = {sq['service_features']} features from {sq['service_views']} views; "
                f"bare = 1 feature from 1 view)"
            )
        rd = lat.get("redis", {})
        if "materialize_rows_per_s" in rd:
            print(
                f"(Redis materialization of the same latest month: {rd['materialize_rows']:,} rows in "
                f"{rd['materialize_s']:.1f}s = {_si(rd['materialize_rows_per_s'])} rows/s, peak "
                f"{rd['peak_mib']:.0f} MiB; keys left after teardown: {rd.get('redis_keys_left')})"
            )

    hist = results.get("historical", {})
    if hist:
        print()
        print(
            f"== Offline get_historical_features (churn_v1, {cfg['hist_rows']:,} entity rows, "
            f"{label(hist['size'])} dataset, after a 1,000-row warm-up) =="
        )
        head = f"{'offline store':<14} {'seconds':>9} {'rows':>8} {'rows/s':>9} {'peak MiB':>9} {'warm-up s':>10}"
        print(head)
        print("-" * len(head))
        for name in ("duckdb", "file"):
            d = hist.get(name, {})
            if "error" in d or not d:
                print(f"{name:<14} FAILED: {d.get('error', 'not run')[:120]}")
                continue
            print(
                f"{name + (' (dask)' if name == 'file' else ''):<14} {d['seconds']:>9.2f} {d['rows']:>8,} "
                f"{_si(d['rows_per_s']):>9} {d['peak_mib']:>9.0f} {d['warmup_s']:>10.2f}"
            )
        if "file_over_duckdb" in hist:
            print(f"file / duckdb = {hist['file_over_duckdb']:.2f}x; same result: {hist['same_result']}")


def summary_line(results: dict) -> str:
    cfg = results["config"]
    kv: dict[str, object] = {}

    def put(key, value, fmt=".1f"):
        kv[key] = "NA" if value is None else format(value, fmt)

    for size in cfg["sizes"]:
        r, lab = results["sizes"][str(size)], label(size)
        g, b, m = r.get("generate", {}), r.get("build", {}), r.get("materialize", {})
        put(f"gen_rows_per_s_{lab}", g.get("rows_per_s"), ".0f")
        put(f"gen_cm_per_s_{lab}", g.get("cm_per_s"), ".0f")
        put(f"build_cm_per_s_{lab}", b.get("cm_per_s"), ".0f")
        put(f"materialize_rows_per_s_{lab}", m.get("rows_per_s"), ".0f")
        put(f"peak_mib_gen_{lab}", g.get("peak_mib"), ".0f")
        put(f"peak_mib_build_{lab}", b.get("peak_mib"), ".0f")
        put(f"peak_mib_materialize_{lab}", m.get("peak_mib"), ".0f")
    lat = results.get("latency", {})
    for backend in ("sqlite", "redis"):
        d = lat.get(backend, {})
        lk = d.get("lookups", {})
        put(f"{backend}_p50_ms", lk.get("service_view", {}).get("p50_ms"), ".2f")
        put(f"{backend}_p99_ms", lk.get("service_view", {}).get("p99_ms"), ".2f")
        put(f"{backend}_bare_p50_ms", lk.get("bare_dict", {}).get("p50_ms"), ".2f")
        put(f"{backend}_bare_p99_ms", lk.get("bare_dict", {}).get("p99_ms"), ".2f")
        put(f"{backend}_p50_ratio", d.get("p50_ratio"), ".2f")
        put(f"{backend}_p50_ratio_held", d.get("p50_ratio_held"), ".2f")
    hist = results.get("historical", {})
    put("duckdb_hist_s", hist.get("duckdb", {}).get("seconds"), ".2f")
    put("file_hist_s", hist.get("file", {}).get("seconds"), ".2f")
    put("file_over_duckdb", hist.get("file_over_duckdb"), ".2f")
    return " ".join(f"{k}={v}" for k, v in kv.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="100000,1000000", help="subscriber counts, comma separated")
    ap.add_argument("--workdir", default="/tmp/telcoml-bench", help="scratch folder (one subfolder per size)")
    ap.add_argument("--lookups", type=int, default=300, help="timed online lookups per variant and store")
    ap.add_argument("--warmup", type=int, default=30, help="untimed lookups first")
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--provinces", default=",".join(DEFAULT_PROVINCES))
    ap.add_argument(
        "--latency-size",
        type=int,
        default=None,
        help="dataset for latency and offline retrieval (default: the smallest size)",
    )
    ap.add_argument("--hist-rows", type=int, default=50_000, help="entity rows for get_historical_features")
    ap.add_argument("--redis-url", default=os.environ.get("TELCOML_REDIS_URL", "127.0.0.1:6379"))
    ap.add_argument("--no-redis", action="store_true", help="skip the Redis latency run")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--output", default=None, help="JSON path (default benchmarks/results/features-<date>.json)"
    )
    ap.add_argument("--keep-data", action="store_true", help="keep each size's data folder afterwards")
    args = ap.parse_args(argv)

    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    provinces = [p.strip().upper() for p in args.provinces.split(",") if p.strip()]
    latency_size = args.latency_size or sizes[0]
    if latency_size not in sizes:
        ap.error(f"--latency-size {latency_size} is not among --sizes {sizes}")
    workdir = Path(args.workdir)
    started = datetime.now(UTC)
    output = (
        Path(args.output)
        if args.output
        else ROOT / "benchmarks" / "results" / f"features-{started.date().isoformat()}.json"
    )
    results: dict = {
        "started": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": {
            "sizes": sizes,
            "months": args.months,
            "provinces": provinces,
            "lookups": args.lookups,
            "warmup": args.warmup,
            "hist_rows": args.hist_rows,
            "latency_size": latency_size,
            "seed": args.seed,
            "workdir": str(workdir),
            "redis_url": args.redis_url,
        },
        "env": environment(("feast", "duckdb", "dask", "pandas", "pyarrow", "redis")),
        "sizes": {},
    }

    def save() -> None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2, default=str))

    print(
        f"telcoml feature benchmarks: sizes {sizes}, {args.months} months, provinces {provinces}; "
        f"workdir {workdir}; {results['env']['cpus']} CPUs, {results['env']['memory_gib']} GiB",
        flush=True,
    )
    for size in sizes:
        data = workdir / f"n{size}"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        r = results["sizes"][str(size)] = {}
        print(f"\n-- {size:,} subscribers -> {data}", flush=True)
        r["generate"] = in_child(
            "stage_generate",
            workdir=str(data),
            customers=size,
            months=args.months,
            provinces=provinces,
            seed=args.seed,
        )
        save()
        if "error" not in r["generate"]:
            r["build"] = in_child("stage_build", workdir=str(data))
            save()
        if "error" not in r.get("build", {"error": 1}):
            r["materialize"] = in_child("stage_materialize", workdir=str(data))
            save()
        for stage in ("generate", "build", "materialize"):
            d = r.get(stage, {})
            if "seconds" in d:
                print(f"  {stage}: {d['seconds']:.1f}s, peak {d['peak_mib']:.0f} MiB", flush=True)

        if size == latency_size and "error" not in r.get("materialize", {"error": 1}):
            lat = results["latency"] = {"size": size}
            print(f"  online latency on {size:,} (SQLite)", flush=True)
            lat["sqlite"] = in_child(
                "stage_latency",
                workdir=str(data),
                backend="sqlite",
                lookups=args.lookups,
                warmup=args.warmup,
                seed=args.seed,
                redis_url=args.redis_url,
                project=None,
            )
            save()
            if args.no_redis:
                lat["redis"] = {"error": "skipped (--no-redis)"}
            else:
                print(f"  online latency on {size:,} (Redis at {args.redis_url})", flush=True)
                lat["redis"] = in_child(
                    "stage_latency",
                    workdir=str(data),
                    backend="redis",
                    lookups=args.lookups,
                    warmup=args.warmup,
                    seed=args.seed,
                    redis_url=args.redis_url,
                    project=f"bench_{uuid.uuid4().hex[:8]}",
                )
            save()
            hist = results["historical"] = {"size": size}
            for store in ("duckdb", "file"):
                print(f"  get_historical_features, {store} offline store", flush=True)
                hist[store] = in_child(
                    "stage_historical",
                    workdir=str(data),
                    offline_store=store,
                    rows=args.hist_rows,
                    seed=args.seed,
                )
                save()
            if "seconds" in hist["duckdb"] and "seconds" in hist["file"]:
                hist["file_over_duckdb"] = hist["file"]["seconds"] / hist["duckdb"]["seconds"]
                hist["same_result"] = (
                    hist["file"]["rows"] == hist["duckdb"]["rows"]
                    and hist["file"]["null_monthly_consumption"] == hist["duckdb"]["null_monthly_consumption"]
                    and abs(hist["file"]["checksum"] - hist["duckdb"]["checksum"])
                    <= 1e-6 * max(1.0, abs(hist["duckdb"]["checksum"]))
                )
            save()
        if not args.keep_data:
            shutil.rmtree(data, ignore_errors=True)

    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["summary"] = summary_line(results)
    save()
    print_tables(results)
    print(f"\nJSON: {output}")
    print(results["summary"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
