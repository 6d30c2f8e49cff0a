#!/usr/bin/env python
"""Serving benchmarks: the CRM's /score against a bare BentoML service, and batch scoring.

One run measures, side by side:

1. ``POST /score`` for ONE customer over HTTP on loopback, with the SQLite and with the
   Redis online store, against a bare BentoML echo service (``benchmarks/echo_service.py``,
   served the same way, same single worker) and against the raw in-process path (Feast
   online lookup + the five XGBoost predictions, no HTTP):

   * sequential latency, one client, the same random known customers for every target,
     after a warm-up; targets interleaved in blocks so a change in machine load hits all
     of them alike;
   * closed-loop throughput at increasing concurrency levels (asyncio + httpx), each level
     run for every server back to back; the best rate with 0 errors counts.

   The service answers from prepared answers (``telcoml prepare``, timed first); the same
   service with them off (``sqlite_live``) shows what a call scored live costs.
   Targets (the issue): p50 <= 1.5x the echo's, p99 <= 2x the echo's, throughput >= 60%.
2. Batch scoring of a province (``serving.batch.score_province``, models at nthread=0 like
   the CLI) in rows/s against raw ``Booster.inplace_predict`` of the same five boosters
   on the same rows, pre-encoded as NumPy matrices. Target >= 50%.

The dataset (generate -> indicators -> Feast -> ``train_all`` with a small tuning budget)
is built once in ``<workdir>/n<customers>`` and reused while its marker matches.
Prints tables, writes JSON to ``benchmarks/results/serving-<date>.json`` and ends with one
line of ``key=value`` pairs. Usage::

    python benchmarks/bench_serving.py [--customers 20000] [--workdir /tmp/telcoml-bench-serve]
                                       [--requests 2000] [--concurrency 1,8,32]

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable without an editable install too
    sys.path.insert(0, str(ROOT))

from benchmarks.common import environment  # noqa: E402

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

LOOPBACK = "127.0.0.1"
TARGETS = {"p50_ratio": 1.5, "p99_ratio": 2.0, "tput_ratio": 0.6, "batch_ratio": 0.5}
MARKER = "bench-workdir.json"
#: Extra fields of every /score body (``--reasons``); the echo ignores them.
EXTRA_BODY: dict = {}


def _log(msg: str) -> None:
    print(f"  [{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def _quiet_warnings() -> None:
    """Drop deprecation noise at display time (lazily imported Feast modules reset the
    warning filters) and the registry's routine warnings; errors still show."""
    import logging
    import warnings

    show = warnings.showwarning

    def quiet(message, category, *args, **kwargs):
        if not issubclass(category, (FutureWarning, DeprecationWarning)):
            show(message, category, *args, **kwargs)

    warnings.showwarning = quiet
    for name in ("mlflow.pyfunc", "mlflow.utils.environment", "mlflow.models.model", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _silently(fn, *args, **kwargs):
    """Run ``fn`` with its stdout (Feast's materialize banner and per-view lines) discarded."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------------------
# Machine load: how many cores other processes keep busy during a part.
# --------------------------------------------------------------------------------------


class Meter:
    """Busy cores of the machine (/proc/stat) minus this process tree's (servers included)
    over an interval, plus this process's own (the HTTP client's) and the servers'."""

    def __init__(self) -> None:
        import psutil

        self.psutil = psutil

    def _tree(self) -> tuple[float, float]:
        me = self.psutil.Process()
        own = sum(me.cpu_times()[:2])
        children = 0.0
        for p in me.children(recursive=True):
            try:
                children += sum(p.cpu_times()[:2])
            except self.psutil.Error:
                pass
        return own, children

    def _busy(self) -> float:
        t = self.psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)

    def mark(self) -> tuple:
        return (time.monotonic(), self._busy(), *self._tree())

    def since(self, mark: tuple) -> dict:
        now = self.mark()
        dt = now[0] - mark[0]
        if dt <= 0:
            return {}
        own, children = max(0.0, now[2] - mark[2]), max(0.0, now[3] - mark[3])
        return {
            "seconds": round(dt, 2),
            "other_cores": round(max(0.0, (now[1] - mark[1]) - own - children) / dt, 2),
            "client_cores": round(own / dt, 2),
            "server_cores": round(children / dt, 2),
            "load1": round(os.getloadavg()[0], 2),
        }


METER: Meter | None = None


# --------------------------------------------------------------------------------------
# The dataset, built once and reused.
# --------------------------------------------------------------------------------------


def prepare(data: Path, customers: int, months: int, seed: int, trials: int, rebuild: bool) -> dict:
    """generate -> indicators -> Feast (SQLite) -> train_all(TuningBudget(trials)); reused if the marker matches."""
    from core.settings import Settings

    want = {"customers": customers, "months": months, "seed": seed, "trials": trials}
    marker = data / MARKER
    if not rebuild and marker.exists():
        found = json.loads(marker.read_text())
        if {k: found.get(k) for k in want} == want and found.get("complete"):
            _log(f"reusing the dataset in {data} (built {found.get('built_at')})")
            return {**found, "reused": True}
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    from features.generate import GeneratorConfig
    from telcoml.pipeline import feature_store_stage, generate_stage, indicator_stage
    from training.train_all import train_all
    from training.tune import TuningBudget

    settings = Settings(workdir=data)
    seconds = {}
    t0 = time.perf_counter()
    generate_stage(settings, GeneratorConfig(customers=customers, months=months, seed=seed))
    seconds["generate"] = time.perf_counter() - t0
    _log(f"generated {customers:,} subscribers x {months} months in {seconds['generate']:.0f}s")
    t0 = time.perf_counter()
    indicator_stage(settings)
    seconds["indicators"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    month = _silently(feature_store_stage, settings)
    seconds["feature_store"] = time.perf_counter() - t0
    _log(
        f"indicators {seconds['indicators']:.0f}s, Feast apply + materialize {month} {seconds['feature_store']:.0f}s"
    )
    t0 = time.perf_counter()
    results = train_all(settings, None, TuningBudget(trials=trials))
    seconds["train"] = time.perf_counter() - t0
    _log(f"trained {len(results)} models ({trials} trials each) in {seconds['train']:.0f}s")
    info = {
        **want,
        "complete": True,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "month": month,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "models": {
            r.task: {
                "version": r.version,
                "oracle_ratio": round(r.metrics.get("oracle_ratio", float("nan")), 4),
                "promoted": r.promoted,
            }
            for r in results
        },
    }
    marker.write_text(json.dumps(info, indent=2))
    return {**info, "reused": False}


def known_customers(settings) -> tuple[str, list[str]]:
    import pandas as pd

    from telcoml.pipeline import latest_month

    month = latest_month(settings)
    files = sorted((settings.offline_dir / "profile").glob(f"*_{month}.parquet"))
    return month, pd.concat([pd.read_parquet(f, columns=["msisdn"]) for f in files])["msisdn"].astype(
        str
    ).tolist()


# --------------------------------------------------------------------------------------
# Servers: `python -m bentoml serve ...` as the tests start them, stopped at the end.
# --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class Server:
    """A BentoML server in its own process group on loopback; ``stop`` ends that group."""

    def __init__(
        self,
        name: str,
        target: str,
        workdir: Path,
        log_dir: Path,
        env: dict | None = None,
        working_dir: Path | None = None,
    ):
        self.name = name
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"server-{name}-{self.port}.log"
        self.log = open(self.log_path, "w")
        full_env = {
            **os.environ,
            "TELCOML_WORKDIR": str(workdir),
            "BENTOML_HOME": str(workdir / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "True",
            **(env or {}),
        }
        command = [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            target,
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
        ]
        if working_dir is not None:
            command += ["--working-dir", str(working_dir)]
        self.command = command
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 240) -> float:
        import httpx

        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited ({self.process.returncode}); "
                    f"log: {self.log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(
            f"{self.name} server not ready in {timeout}s; log: {self.log_path.read_text()[-3000:]}"
        )

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def stop(self) -> None:
        """End the server: SIGTERM to its process group, then, by pid, any of its own
        descendants still alive (BentoML starts its workers in sessions of their own)."""
        import psutil

        try:
            descendants = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)  # the group this script started
            except ProcessLookupError:
                pass
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(10)
        _, alive = psutil.wait_procs(descendants, timeout=10)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        if not self.log.closed:
            self.log.close()


# --------------------------------------------------------------------------------------
# Part 1a: sequential latency, one client, interleaved blocks.
# --------------------------------------------------------------------------------------


def _pct(values_ms: list[float]) -> dict:
    import numpy as np

    if not values_ms:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "mean_ms": None, "min_ms": None, "max_ms": None}
    a = np.asarray(values_ms)
    return {
        "n": int(len(a)),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
    }


def http_caller(client):
    """A call that raises unless /score answered 200 for the number asked."""

    def call(m: str) -> None:
        r = client.post("/score", json={"msisdn": m, **EXTRA_BODY})
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        if r.json()["msisdn"] != m:
            raise RuntimeError("answer for another number")

    return call


def sequential_latency(
    calls: dict, sample: list[str], warmup: int, requests: int, block: int, deadline: float, after_warmup=None
) -> dict:
    """Every target gets ``warmup`` untimed calls, then the same ``requests`` customers, in
    blocks of ``block`` taken in turn by every target."""
    out = {name: {"errors": 0, "times": [], "first_error": None} for name in calls}
    for name, call in calls.items():
        for m in sample[:warmup]:
            try:
                call(m)
            except Exception as err:  # noqa: BLE001 - counted and reported
                out[name]["warmup_errors"] = out[name].get("warmup_errors", 0) + 1
                out[name]["first_error"] = out[name]["first_error"] or f"{type(err).__name__}: {err}"[:300]
    if after_warmup is not None:
        after_warmup()
    timed = sample[warmup : warmup + requests]
    stopped_early = False
    for start in range(0, len(timed), block):
        if time.monotonic() > deadline:
            stopped_early = True
            break
        for name, call in calls.items():
            for m in timed[start : start + block]:
                t0 = time.perf_counter_ns()
                try:
                    call(m)
                except Exception as err:  # noqa: BLE001
                    out[name]["errors"] += 1
                    out[name]["first_error"] = (
                        out[name]["first_error"] or f"{type(err).__name__}: {err}"[:300]
                    )
                    continue
                out[name]["times"].append((time.perf_counter_ns() - t0) / 1e6)
    result = {}
    for name, o in out.items():
        result[name] = {
            **_pct(o["times"]),
            "errors": o["errors"],
            "warmup_errors": o.get("warmup_errors", 0),
            "first_error": o["first_error"],
        }
    result["_stopped_early"] = stopped_early
    return result


# --------------------------------------------------------------------------------------
# Part 1b: closed-loop throughput.
# --------------------------------------------------------------------------------------


def server_side_times(log_path: Path, offset: int) -> dict:
    """From a server's log, after ``offset``: BentoML's access-log time of each 200 on
    /score (request in to response out, inside the server) and, for the scoring service,
    the handler's own time (its ``score ... -> 200 in X ms`` line)."""
    import re

    access = re.compile(r"path=/score,.*\(status=200,.*\) ([0-9.]+)ms")
    handler = re.compile(r"\] score \S+ -> 200 (?:(prepared|live) )?in ([0-9.]+) ms")
    a, h, sources = [], [], {}
    try:
        with open(log_path, "rb") as fh:
            fh.seek(offset)
            for raw in fh:
                line = raw.decode("utf-8", "replace")
                if m := access.search(line):
                    a.append(float(m.group(1)))
                elif m := handler.search(line):
                    h.append(float(m.group(2)))
                    sources[m.group(1) or "live"] = sources.get(m.group(1) or "live", 0) + 1
    except OSError as err:
        return {"error": str(err)}
    return {"access": _pct(a), "handler": _pct(h), "answered_from": sources}


async def _closed_loop(
    url: str,
    headers: dict,
    sample: list[str],
    concurrency: int,
    warm_s: float,
    window_s: float,
    max_requests: int,
) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    counter = itertools.count()
    state = {"ok": 0, "errors": 0, "warm_ok": 0, "last_end": None, "first_error": None, "issued": 0}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, limits=limits) as client:
        t0 = time.perf_counter()
        t_start, t_end = t0 + warm_s, t0 + warm_s + window_s

        async def worker() -> None:
            while True:
                i = next(counter)
                if i >= max_requests or time.perf_counter() >= t_end:
                    return
                state["issued"] += 1
                m = sample[i % len(sample)]
                s = time.perf_counter()
                try:
                    r = await client.post("/score", json={"msisdn": m, **EXTRA_BODY})
                    good = r.status_code == 200
                    problem = None if good else f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as err:
                    good, problem = False, f"{type(err).__name__}: {err}"[:300]
                e = time.perf_counter()
                if not good:
                    state["errors"] += 1
                    state["first_error"] = state["first_error"] or problem
                elif t_start <= e <= t_end:
                    state["ok"] += 1
                    state["last_end"] = e
                    if s >= t_start:
                        latencies.append((e - s) * 1000)
                else:
                    state["warm_ok"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    capped = state["issued"] >= max_requests
    measured = ((state["last_end"] or t_start) if capped else t_end) - t_start
    rate = state["ok"] / measured if measured > 0 else None
    return {
        "concurrency": concurrency,
        "req_per_s": rate,
        "ok": state["ok"],
        "errors": state["errors"],
        "warm_ok": state["warm_ok"],
        "window_s": round(measured, 3),
        "first_error": state["first_error"],
        "capped": capped,
        **{f"load_{k}": v for k, v in _pct(latencies).items() if k in ("p50_ms", "p99_ms")},
    }


def throughput(
    servers: dict,
    headers: dict,
    sample: list[str],
    levels: list[int],
    warm_s: float,
    window_s: float,
    max_requests: int,
    deadline: float,
) -> dict:
    """Per level, every server in turn (so each level's numbers share the machine's state)."""
    out: dict = {name: [] for name in servers}
    for c in levels:
        for name, url in servers.items():
            if time.monotonic() > deadline:
                out[name].append(
                    {"concurrency": c, "req_per_s": None, "errors": None, "skipped": "part deadline"}
                )
                continue
            mark = METER.mark()
            try:
                r = asyncio.run(_closed_loop(url, headers, sample, c, warm_s, window_s, max_requests))
            except Exception as err:  # noqa: BLE001 - one failed level is reported, the run goes on
                r = {
                    "concurrency": c,
                    "req_per_s": None,
                    "errors": None,
                    "first_error": f"{type(err).__name__}: {err}",
                }
            r.update(METER.since(mark))
            out[name].append(r)
            rate = r.get("req_per_s")
            _log(
                f"  c={c:<3} {name:<7} {'-' if rate is None else f'{rate:8.1f}'} req/s, errors {r.get('errors')}, "
                f"client {r.get('client_cores')} / server {r.get('server_cores')} / other {r.get('other_cores')} cores"
            )
    best = {}
    for name, rows in out.items():
        clean = [r for r in rows if r.get("errors") == 0 and r.get("req_per_s")]
        top = max(clean, key=lambda r: r["req_per_s"]) if clean else None
        best[name] = {
            "req_per_s": top["req_per_s"] if top else None,
            "concurrency": top["concurrency"] if top else None,
        }
    return {"levels": out, "best": best}


# --------------------------------------------------------------------------------------
# Part 2: batch scoring against raw inplace_predict.
# --------------------------------------------------------------------------------------


def encode(model, indicators):
    """The model's input as a NumPy matrix, encoded exactly as ``TaskModel.matrix`` does."""
    import numpy as np
    import pandas as pd

    columns = []
    for ind in model.task.indicators:
        values = indicators[ind.id]
        if ind.kind == "category":
            lookup = {code: k for k, code in enumerate(ind.codes)}
            columns.append(
                np.array(
                    [lookup.get(v, np.nan) if isinstance(v, str) else np.nan for v in values], dtype=float
                )
            )
        else:
            columns.append(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan))
    return np.ascontiguousarray(np.column_stack(columns))


def batch_part(
    settings,
    province: str,
    chunk_rows: int,
    repeats: int,
    out_dir: Path,
    thread_settings: tuple[int, ...] = (0, 1),
) -> dict:
    """score_province against raw inplace_predict of the same boosters on the same rows.

    Headline: nthread=0 on every booster (as ``telcoml batch-score`` sets it). The same
    is repeated at nthread=1 as a diagnostic. Within a setting every repeat runs each path
    once, in turn, so a change in machine load hits all paths alike; medians are reported.
    """
    import numpy as np
    import pandas as pd

    from serving.batch import interface_rows, latest_month_for, score_province, snapshot_chunks
    from serving.champions import load_champions, with_threads

    models = load_champions(settings)
    month = latest_month_for(settings, province)
    out: dict = {"province": province, "month": month, "chunk_rows": chunk_rows, "repeats": repeats}

    # the same rows, in memory; one NumPy matrix per model, encoded once (not timed)
    frame = pd.concat(
        list(snapshot_chunks(settings, province, month, max(chunk_rows, 10_000_000))), ignore_index=True
    )
    rows = len(frame)
    out["rows"] = rows
    boosters = {name: m.booster for name, m in models.models.items()}
    t0 = time.perf_counter()
    matrices = {name: encode(m, frame) for name, m in models.models.items()}
    out["encode_s"] = time.perf_counter() - t0
    out["trees"] = {name: len(b.get_dump()) for name, b in boosters.items()}
    max_diff = 0.0
    for name, m in models.models.items():  # the same numbers as the models' DMatrix path
        a, b = boosters[name].inplace_predict(matrices[name]), m.raw(frame)
        max_diff = max(max_diff, float(np.max(np.abs(np.asarray(a) - np.asarray(b)))))
    out["raw_vs_model_max_abs_diff"] = max_diff
    scored_at = datetime.now(UTC).isoformat(timespec="seconds")

    def run_batch() -> float:
        r = score_province(settings, models, province, chunk_rows=chunk_rows, output_dir=out_dir)
        assert r.rows == rows, (r.rows, rows)
        return r.seconds

    def wall(fn):
        def timed() -> float:
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        return timed

    paths = {
        "batch": run_batch,  # read + 5 models + interface columns + Parquet/CSV, its own clock
        "raw": wall(lambda: [boosters[n].inplace_predict(matrices[n]) for n in boosters]),
        # where the batch's time goes, in memory without file reading and writing
        "probabilities": wall(lambda: [m.probabilities(frame) for m in models.models.values()]),
        "interface": wall(lambda: interface_rows(models, frame, month, scored_at)),
    }
    for threads in thread_settings:
        with_threads(models, threads)
        first = {name: fn() for name, fn in paths.items()}  # warm-up, untimed
        seconds: dict[str, list[float]] = {name: [] for name in paths}
        mark = METER.mark()
        for _ in range(repeats):
            for name, fn in paths.items():
                seconds[name].append(fn())
        res = {"load": METER.since(mark), "first_s": first, "seconds": seconds}
        for name in paths:
            res[f"{name}_rows_per_s"] = rows / float(np.median(seconds[name]))
        res["batch_ratio"] = res["batch_rows_per_s"] / res["raw_rows_per_s"]
        out[f"nthread{threads}"] = res
    head = out[f"nthread{thread_settings[0]}"]
    out.update({k: head[k] for k in ("batch_rows_per_s", "raw_rows_per_s", "batch_ratio")})
    out["headline_nthread"] = thread_settings[0]
    return out


# --------------------------------------------------------------------------------------
# Prepared answers: what `telcoml prepare` costs, for each online store.
# --------------------------------------------------------------------------------------


def prepare_part(settings, redis_world) -> dict:
    """Prepare every customer's answer in the SQLite (and Redis) store, models at nthread=0
    as the CLI runs them; answers per second."""
    from serving.champions import load_champions, with_threads
    from serving.prepared import prepare_answers

    models = with_threads(load_champions(settings), 0)
    out: dict = {}
    for name, s in [("sqlite", settings)] + ([("redis", redis_world.settings)] if redis_world else []):
        mark = METER.mark()
        result = _silently(prepare_answers, s, models)
        out[name] = {
            "answers": result.answers,
            "seconds": result.seconds,
            "answers_per_s": result.answers / result.seconds,
            "load": METER.since(mark),
        }
        _log(
            f"prepared {result.answers:,} answers in the {name} store in {result.seconds:.1f}s "
            f"({result.answers / result.seconds:,.0f}/s)"
        )
    out["answers_per_s"] = out["sqlite"]["answers_per_s"]
    return out


# --------------------------------------------------------------------------------------
# Redis: its own work directory (symlinks to the data and models) and Feast project.
# --------------------------------------------------------------------------------------


class RedisWorld:
    """A work directory whose data, truth, registry, artifacts and keys are symlinks to the
    main one, with its own Feast project (so its Redis keys collide with nothing)."""

    def __init__(self, data: Path, redis_url: str):
        from core.settings import Settings

        self.redis_url = redis_url
        self.project = f"benchserve{uuid.uuid4().hex[:8]}"
        self.work = data.parent / f"redis-{self.project}"
        self.data = data
        self.settings = Settings(
            workdir=self.work, online_store="redis", redis_url=redis_url, project=self.project
        )
        self.env = {
            "TELCOML_ONLINE_STORE": "redis",
            "TELCOML_REDIS_URL": redis_url,
            "TELCOML_PROJECT": self.project,
        }
        self.store = None
        self.materialize_s = None

    def setup(self, month: str) -> None:
        from features.store import apply_repository, materialize_latest

        self.work.mkdir(parents=True)
        for name in ("offline", "truth", "mlflow.db", "mlartifacts", "serving"):
            (self.work / name).symlink_to(self.data / name)
        self.store = apply_repository(self.settings)
        t0 = time.perf_counter()
        _silently(materialize_latest, self.store, month)
        self.materialize_s = time.perf_counter() - t0

    def teardown(self) -> dict:
        out: dict = {"project": self.project}
        try:
            if self.store is not None:
                self.store.teardown()
            import redis

            host, port = self.redis_url.split(",")[0].split(":")
            client = redis.Redis(host=host, port=int(port))
            out["keys_left"] = sum(1 for _ in client.scan_iter(match=f"*{self.project}*", count=10_000))
        except Exception as err:  # noqa: BLE001
            out["teardown_error"] = f"{type(err).__name__}: {err}"
        shutil.rmtree(self.work, ignore_errors=True)
        return out


# --------------------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------------------


def _f(x, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def _ratio(a, b):
    return a / b if a is not None and b else None


LABELS = {
    "echo": "echo (bare BentoML, HTTP)",
    "sqlite": "service /score, SQLite (HTTP)",
    "redis": "service /score, Redis (HTTP)",
    "sqlite_live": "service /score live, SQLite (HTTP)",
    "inproc_sqlite": "in-process raw, SQLite",
    "inproc_redis": "in-process raw, Redis",
    "inproc_full_sqlite": "in-process score_frame, SQLite",
    "inproc_full_redis": "in-process score_frame, Redis",
}


def summarize(results: dict) -> dict:
    lat = results.get("latency", {})
    tp = results.get("throughput", {}).get("best", {})
    b = results.get("batch", {})
    echo = lat.get("echo", {})

    def get(name, key):
        return lat.get(name, {}).get(key)

    def best(name):
        return tp.get(name, {}).get("req_per_s")

    s: dict = {}
    # the issue's keys first, in its order
    s["sqlite_p50_ms"] = get("sqlite", "p50_ms")
    s["echo_p50_ms"] = echo.get("p50_ms")
    s["sqlite_p50_ratio"] = _ratio(get("sqlite", "p50_ms"), echo.get("p50_ms"))
    s["sqlite_p99_ratio"] = _ratio(get("sqlite", "p99_ms"), echo.get("p99_ms"))
    s["sqlite_tput"] = best("sqlite")
    s["echo_tput"] = best("echo")
    s["sqlite_tput_ratio"] = _ratio(best("sqlite"), best("echo"))
    s["redis_p50_ratio"] = _ratio(get("redis", "p50_ms"), echo.get("p50_ms"))
    s["redis_p99_ratio"] = _ratio(get("redis", "p99_ms"), echo.get("p99_ms"))
    s["redis_tput_ratio"] = _ratio(best("redis"), best("echo"))
    s["inproc_p50_ms"] = get("inproc_sqlite", "p50_ms")
    s["batch_rows_per_s"] = b.get("batch_rows_per_s")
    s["raw_rows_per_s"] = b.get("raw_rows_per_s")
    s["batch_ratio"] = b.get("batch_ratio")
    # then the rest
    s["sqlite_p99_ms"] = get("sqlite", "p99_ms")
    s["echo_p99_ms"] = echo.get("p99_ms")
    s["redis_p50_ms"] = get("redis", "p50_ms")
    s["redis_p99_ms"] = get("redis", "p99_ms")
    s["redis_tput"] = best("redis")
    s["inproc_p99_ms"] = get("inproc_sqlite", "p99_ms")
    s["inproc_redis_p50_ms"] = get("inproc_redis", "p50_ms")
    s["inproc_full_p50_ms"] = get("inproc_full_sqlite", "p50_ms")
    s["inproc_full_redis_p50_ms"] = get("inproc_full_redis", "p50_ms")
    s["live_p50_ms"] = get("sqlite_live", "p50_ms")
    s["live_p50_ratio"] = _ratio(get("sqlite_live", "p50_ms"), echo.get("p50_ms"))
    s["live_tput"] = best("sqlite_live")
    s["prepare_answers_per_s"] = results.get("prepared", {}).get("answers_per_s")
    s["batch_ratio_nthread1"] = b.get("nthread1", {}).get("batch_ratio")
    s["raw_rows_per_s_nthread1"] = b.get("nthread1", {}).get("raw_rows_per_s")
    checks = {}
    for name in ("sqlite", "redis"):
        checks[f"{name}_p50"] = (s[f"{name}_p50_ratio"], "<=", TARGETS["p50_ratio"])
        checks[f"{name}_p99"] = (s[f"{name}_p99_ratio"], "<=", TARGETS["p99_ratio"])
        checks[f"{name}_tput"] = (s[f"{name}_tput_ratio"], ">=", TARGETS["tput_ratio"])
    checks["batch"] = (s["batch_ratio"], ">=", TARGETS["batch_ratio"])
    verdict = {}
    for k, (v, op, t) in checks.items():
        verdict[k] = None if v is None else (v <= t if op == "<=" else v >= t)
    s["targets_met"] = f"{sum(1 for v in verdict.values() if v)}/{len(verdict)}"
    results["targets"] = {
        k: {"value": checks[k][0], "op": checks[k][1], "target": checks[k][2], "met": verdict[k]}
        for k in checks
    }
    s["other_cores"] = results.get("load", {}).get("other_cores")
    s["load1"] = results.get("load", {}).get("load1")
    return s


def print_tables(results: dict) -> None:
    cfg = results["config"]
    lat = results.get("latency", {})
    print()
    print(
        f"== /score, ONE customer, sequential (1 client, {cfg['requests']} requests after {cfg['warmup']} warm-up, "
        f"targets interleaved in blocks of {cfg['block']}) =="
    )
    head = f"{'target':<34} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'min ms':>8} {'errors':>6} {'p50/echo':>9} {'p99/echo':>9}"
    print(head)
    print("-" * len(head))
    echo = lat.get("echo", {})
    for name, label in LABELS.items():
        r = lat.get(name)
        if not r:
            continue
        print(
            f"{label:<34} {r['n']:>5} {_f(r['p50_ms']):>8} {_f(r['p99_ms']):>8} {_f(r['mean_ms']):>8} "
            f"{_f(r['min_ms']):>8} {r['errors']:>6} {_f(_ratio(r['p50_ms'], echo.get('p50_ms'))):>9} "
            f"{_f(_ratio(r['p99_ms'], echo.get('p99_ms'))):>9}"
        )
    if lat.get("_load"):
        ld = lat["_load"]
        print(
            f"(machine during this part: other processes {ld.get('other_cores')} cores, "
            f"this client {ld.get('client_cores')}, servers {ld.get('server_cores')}, load1 {ld.get('load1')})"
        )
    for name, r in lat.items():
        if isinstance(r, dict) and r.get("first_error"):
            print(f"  {name}: first error: {r['first_error']}")
    side = lat.get("_server_side") or {}
    if side:
        print()
        print(
            "where the time goes, same timed requests (ms, p50 / p99): client-observed; inside the server "
            "(BentoML access log); the /score handler alone (service log)"
        )
        head = (
            f"{'server':<12} {'client':>15} {'server (access)':>17} {'handler':>15} {'n access/handler':>17} "
            f"{'answered from':>22}"
        )
        print(head)
        print("-" * len(head))
        for name, sd in side.items():
            c, a, h = lat.get(name, {}), sd.get("access", {}), sd.get("handler", {})

            def pair(d):
                return f"{_f(d.get('p50_ms'), '.1f')} / {_f(d.get('p99_ms'), '.1f')}"

            source = ", ".join(f"{k} {v}" for k, v in (sd.get("answered_from") or {}).items()) or "-"
            print(
                f"{name:<12} {pair(c):>15} {pair(a):>17} {pair(h):>15} "
                f"{str(a.get('n')) + '/' + str(h.get('n')):>17} {source:>22}"
            )

    tp = results.get("throughput")
    if tp:
        print()
        print(
            f"== /score closed-loop throughput (req/s; {cfg['level_seconds']}s per level after "
            f"{cfg['level_warmup']}s warm-up; errors in brackets; cores: client/server/other) =="
        )
        names = list(tp["levels"])
        head = f"{'concurrency':>11} " + " ".join(f"{n:>26}" for n in names)
        print(head)
        print("-" * len(head))
        for i, c in enumerate(cfg["concurrency"]):
            cells = []
            for n in names:
                r = tp["levels"][n][i] if i < len(tp["levels"][n]) else {}
                cells.append(
                    f"{_f(r.get('req_per_s'), '.1f')} [{r.get('errors')}] "
                    f"{_f(r.get('client_cores'), '.1f')}/{_f(r.get('server_cores'), '.1f')}/"
                    f"{_f(r.get('other_cores'), '.1f')}"
                )
            print(f"{c:>11} " + " ".join(f"{x:>26}" for x in cells))
        cells = [f"{_f(tp['best'][n]['req_per_s'], '.1f')} @c={tp['best'][n]['concurrency']}" for n in names]
        print(f"{'best, 0 err':>11} " + " ".join(f"{x:>26}" for x in cells))
        lp = []
        for n in names:
            for r in tp["levels"][n]:
                if r.get("load_p50_ms") is not None:
                    lp.append(
                        f"{n}@c={r['concurrency']}: p50 {r['load_p50_ms']:.1f} / p99 {r['load_p99_ms']:.1f} ms"
                    )
        if lp:
            print("latency under load: " + "; ".join(lp))
        for n in names:
            for r in tp["levels"][n]:
                if r.get("first_error"):
                    print(f"  {n}@c={r['concurrency']}: first error: {r['first_error']}")

    b = results.get("batch")
    if b and "batch_rows_per_s" in b:
        print()
        print(
            f"== Batch scoring, province {b['province']} ({b['month']}, {b['rows']:,} rows, five models; "
            f"median of {b['repeats']} runs, paths taken in turn) =="
        )
        settings_run = [k for k in b if k.startswith("nthread")]
        head = f"{'path':<60} " + " ".join(f"{k + ' rows/s':>16} {'vs raw':>7}" for k in settings_run)
        print(head)
        print("-" * len(head))
        labels = [
            ("batch", "score_province (read + 5 models + interface + Parquet/CSV)"),
            ("interface", "interface_rows in memory (one matrix, 5 x inplace_predict, columns)"),
            ("probabilities", "TaskModel.probabilities in memory (5 x DMatrix + predict)"),
            ("raw", "raw Booster.inplace_predict, pre-encoded NumPy (5 models)"),
        ]
        for key, label in labels:
            cells = []
            for k in settings_run:
                v, raw = b[k][f"{key}_rows_per_s"], b[k]["raw_rows_per_s"]
                cells.append(f"{v:>16,.0f} {v / raw:>7.2f}")
            print(f"{label:<60} " + " ".join(cells))
        print(
            f"(headline: nthread={b['headline_nthread']}, as `telcoml batch-score` sets it; trees per model "
            f"{b['trees']}; encode {b['encode_s']:.3f}s untimed; raw vs model max |diff| "
            f"{b['raw_vs_model_max_abs_diff']:.2e}; other processes "
            + ", ".join(f"{k}: {b[k]['load'].get('other_cores')} cores" for k in settings_run)
            + ")"
        )

    print()
    print("== Targets ==")
    head = f"{'check':<14} {'value':>8} {'target':>9} {'met':>5}"
    print(head)
    print("-" * len(head))
    for k, t in results.get("targets", {}).items():
        met = "NA" if t["met"] is None else ("yes" if t["met"] else "NO")
        print(f"{k:<14} {_f(t['value']):>8} {t['op']}{t['target']:>7} {met:>5}")


def _kv(summary: dict) -> str:
    def fmt(v):
        if v is None:
            return "NA"
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    return " ".join(f"{k}={fmt(v)}" for k, v in summary.items())


# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/telcoml-bench-serve"))
    ap.add_argument("--requests", type=int, default=2000, help="timed sequential requests per target")
    ap.add_argument("--warmup", type=int, default=100, help="untimed sequential requests per target first")
    ap.add_argument(
        "--block", type=int, default=100, help="sequential requests per target before the next one"
    )
    ap.add_argument("--concurrency", default="1,8,32", help="closed-loop concurrency levels, comma separated")
    ap.add_argument("--level-seconds", type=float, default=10.0, help="measured window per level and server")
    ap.add_argument("--level-warmup", type=float, default=2.0, help="untimed seconds before each window")
    ap.add_argument(
        "--level-max-requests", type=int, default=50_000, help="cap of requests per level and server"
    )
    ap.add_argument(
        "--part-timeout", type=float, default=1200.0, help="seconds per part before it stops early"
    )
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--trials", type=int, default=3, help="Optuna trials per task when the dataset is built")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the dataset even if the marker matches")
    ap.add_argument("--province", default="GD", help="province of the batch part")
    ap.add_argument("--chunk-rows", type=int, default=200_000, help="score_province chunk size")
    ap.add_argument("--batch-repeats", type=int, default=5)
    ap.add_argument(
        "--batch-threads",
        default="0,1",
        help="XGBoost nthread settings of the batch part; the first is the headline",
    )
    ap.add_argument("--redis-url", default=os.environ.get("TELCOML_REDIS_URL", f"{LOOPBACK}:6379"))
    ap.add_argument("--no-redis", action="store_true")
    ap.add_argument(
        "--reasons",
        choices=("all", "credit_grade", "none"),
        default=None,
        help="send this `reasons` with every /score (default: none sent, the service's default)",
    )
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.reasons:
        EXTRA_BODY["reasons"] = args.reasons

    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    batch_threads = tuple(int(x) for x in args.batch_threads.split(",") if x.strip()) or (0,)
    if not levels or min(levels) < 1 or max(levels) > 256:
        ap.error("--concurrency: positive integers up to 256")
    host = args.redis_url.split(",")[0].split(":")[0]
    if not args.no_redis and host not in (LOOPBACK, "localhost", "::1"):
        ap.error("--redis-url must be a loopback address")
    _quiet_warnings()
    global METER
    METER = Meter()
    run_mark = METER.mark()
    started = time.perf_counter()
    stamp = datetime.now(UTC)
    output = args.output or ROOT / "benchmarks" / "results" / f"serving-{stamp.strftime('%Y-%m-%d')}.json"
    data = (args.workdir / f"n{args.customers}").resolve()
    results: dict = {
        "config": {
            "customers": args.customers,
            "workdir": str(data),
            "requests": args.requests,
            "warmup": args.warmup,
            "block": args.block,
            "concurrency": levels,
            "level_seconds": args.level_seconds,
            "level_warmup": args.level_warmup,
            "level_max_requests": args.level_max_requests,
            "months": args.months,
            "seed": args.seed,
            "trials": args.trials,
            "province": args.province.upper(),
            "chunk_rows": args.chunk_rows,
            "batch_repeats": args.batch_repeats,
            "batch_threads": list(batch_threads),
            "redis_url": None if args.no_redis else args.redis_url,
            "reasons": args.reasons,
        },
        "started_at": stamp.isoformat(timespec="seconds"),
        "loadavg_start": os.getloadavg(),
        "environment": environment(
            ("bentoml", "httpx", "xgboost", "feast", "mlflow", "redis", "pandas", "numpy")
        ),
        "errors": {},
    }
    print(
        f"bench_serving: {args.customers:,} customers in {data}; load average {os.getloadavg()}", flush=True
    )

    servers: dict[str, Server] = {}
    redis_world: RedisWorld | None = None
    try:
        import httpx
        import numpy as np

        from core.settings import Settings

        print("== dataset ==", flush=True)
        results["dataset"] = prepare(data, args.customers, args.months, args.seed, args.trials, args.rebuild)
        settings = Settings(workdir=data, online_store="sqlite")
        month, customers = known_customers(settings)
        rng = np.random.default_rng(args.seed)
        sample = [
            customers[i] for i in rng.choice(len(customers), size=args.warmup + args.requests, replace=True)
        ]
        results["dataset"]["customers_in_latest_month"] = len(customers)

        from serving.answers import score_frame
        from serving.champions import load_champions
        from serving.online import OnlineFeatures
        from serving.security import create_key
        from serving.service import reasons_for

        key = create_key(settings, "bench-serving")  # replaces the previous run's key of that name
        headers = {"X-API-Key": key}

        print("== servers ==", flush=True)
        log_dir = data / "bench-logs"
        if not args.no_redis:
            try:
                t0 = time.perf_counter()
                redis_world = RedisWorld(data, args.redis_url)
                redis_world.setup(month)
                results["redis"] = {
                    "project": redis_world.project,
                    "materialize_s": redis_world.materialize_s,
                    "apply_and_materialize_s": time.perf_counter() - t0,
                }
                _log(
                    f"Redis project {redis_world.project}: materialized {month} in {redis_world.materialize_s:.1f}s"
                )
            except Exception as err:  # noqa: BLE001
                results["errors"]["redis_setup"] = f"{type(err).__name__}: {err}"
                _log(f"Redis setup FAILED: {err}")
                if redis_world is not None:
                    results["redis"] = redis_world.teardown()
                    redis_world = None
        print("== prepared answers (telcoml prepare) ==", flush=True)
        try:
            results["prepared"] = prepare_part(settings, redis_world)
        except Exception as err:  # noqa: BLE001 - the servers then answer live, which the table shows
            results["errors"]["prepare"] = traceback.format_exc()[-3000:]
            _log(f"prepare FAILED: {err}")
        servers["echo"] = Server(
            "echo", "echo_service:EchoService", data, log_dir, working_dir=ROOT / "benchmarks"
        )
        servers["sqlite"] = Server(
            "sqlite",
            "serving.service:TelcomlService",
            data,
            log_dir,
            env={"TELCOML_ONLINE_STORE": "sqlite", "TELCOML_PROJECT": settings.project},
        )
        if redis_world is not None:
            servers["redis"] = Server(
                "redis", "serving.service:TelcomlService", redis_world.work, log_dir, env=redis_world.env
            )
        # the same service scoring every call live (prepared answers off), for comparison
        servers["sqlite_live"] = Server(
            "sqlite_live",
            "serving.service:TelcomlService",
            data,
            log_dir,
            env={
                "TELCOML_ONLINE_STORE": "sqlite",
                "TELCOML_PROJECT": settings.project,
                "TELCOML_PREPARED_ANSWERS": "0",
            },
        )
        for name, srv in list(servers.items()):
            try:
                ready = srv.wait_ready()
                _log(f"{name} server ready on {srv.url} in {ready:.1f}s (pid {srv.process.pid})")
            except Exception as err:  # noqa: BLE001
                results["errors"][f"{name}_server"] = str(err)[-2000:]
                _log(f"{name} server FAILED: {str(err)[:500]}")
                srv.stop()
                del servers[name]

        # in-process paths: the champions as the service loads them (one thread each)
        models = load_champions(settings)
        results["model_versions"] = models.versions
        online = {"sqlite": OnlineFeatures(settings)}
        if redis_world is not None:
            online["redis"] = OnlineFeatures(redis_world.settings)

        def raw_path(store):
            def call(m: str) -> None:
                f = store.fetch([m])
                if not f.known()[0]:
                    raise RuntimeError("unknown customer")
                models.probabilities(f)  # one shared matrix, inplace_predict of each booster

            return call

        def full_path(store):
            def call(m: str) -> None:
                f = store.fetch([m])
                if not f.known()[0]:
                    raise RuntimeError("unknown customer")
                score_frame(models, f, reason_tasks=reasons_for(args.reasons or "all"))

            return call

        # the same request to every server (the echo ignores the key)
        clients = {
            name: httpx.Client(base_url=srv.url, headers=headers, timeout=30) for name, srv in servers.items()
        }
        calls = {name: http_caller(c) for name, c in clients.items()}
        for name, store in online.items():
            calls[f"inproc_{name}"] = raw_path(store)
        for name, store in online.items():
            calls[f"inproc_full_{name}"] = full_path(store)

        print(
            f"== part 1a: sequential latency, {len(calls)} targets x {args.requests} requests ==", flush=True
        )
        mark = METER.mark()
        offsets: dict[str, int] = {}
        try:
            lat = sequential_latency(
                calls,
                sample,
                args.warmup,
                args.requests,
                args.block,
                time.monotonic() + args.part_timeout,
                after_warmup=lambda: offsets.update({n: v.log_size() for n, v in servers.items()}),
            )
            lat["_load"] = METER.since(mark)
            lat["_server_side"] = {
                n: server_side_times(v.log_path, offsets.get(n, 0)) for n, v in servers.items()
            }
            results["latency"] = lat
            for name in calls:
                r = lat[name]
                _log(f"{name:<20} p50 {_f(r['p50_ms'])} ms, p99 {_f(r['p99_ms'])} ms, errors {r['errors']}")
        except Exception as err:  # noqa: BLE001
            results["errors"]["latency"] = traceback.format_exc()[-3000:]
            _log(f"latency part FAILED: {err}")
        finally:
            for c in clients.values():
                c.close()

        print(f"== part 1b: closed-loop throughput at concurrency {levels} ==", flush=True)
        try:
            results["throughput"] = throughput(
                {n: s.url for n, s in servers.items()},
                headers,
                sample,
                levels,
                args.level_warmup,
                args.level_seconds,
                args.level_max_requests,
                time.monotonic() + args.part_timeout,
            )
        except Exception as err:  # noqa: BLE001
            results["errors"]["throughput"] = traceback.format_exc()[-3000:]
            _log(f"throughput part FAILED: {err}")

        for srv in servers.values():  # stop before the batch part: it wants both cores
            srv.stop()
        servers.clear()

        print(f"== part 2: batch scoring of {args.province.upper()} ==", flush=True)
        try:
            results["batch"] = batch_part(
                settings,
                args.province.upper(),
                args.chunk_rows,
                args.batch_repeats,
                data / "bench-crm",
                batch_threads,
            )
            b = results["batch"]
            _log(
                f"batch {b['batch_rows_per_s']:,.0f} rows/s, raw {b['raw_rows_per_s']:,.0f} rows/s, "
                f"ratio {b['batch_ratio']:.3f}"
            )
        except Exception as err:  # noqa: BLE001
            results["errors"]["batch"] = traceback.format_exc()[-3000:]
            _log(f"batch part FAILED: {err}")
    except Exception:  # noqa: BLE001 - report what was measured
        results["errors"]["run"] = traceback.format_exc()[-4000:]
        print(results["errors"]["run"], file=sys.stderr)
    finally:
        for srv in servers.values():
            srv.stop()
        if redis_world is not None:
            results.setdefault("redis", {}).update(redis_world.teardown())
            _log(f"Redis teardown: {results['redis'].get('keys_left')} keys of {redis_world.project} left")

    results["load"] = METER.since(run_mark)
    results["loadavg_end"] = os.getloadavg()
    results["seconds"] = time.perf_counter() - started
    summary = summarize(results)
    results["summary"] = summary
    print_tables(results)
    if results["errors"]:
        print()
        for k, v in results["errors"].items():
            print(f"FAILED {k}: {v.strip().splitlines()[-1] if v.strip() else v}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(
        f"whole run {results['seconds']:.0f}s; load average start {results['loadavg_start']} "
        f"end {results['loadavg_end']}; other processes {results['load'].get('other_cores')} cores on average"
    )
    print(f"JSON: {output}")
    print(_kv(summary))
    return 0 if not results["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
