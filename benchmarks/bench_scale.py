#!/usr/bin/env python
"""How each stage grows with the province: the embedded path and the Spark path side by side.

Every stage is the command an operator runs (``telcoml generate``, ``build``,
``materialize``, ``train``, ``batch-score``, ``prepare``), started as a child process with
the path's settings: the *embedded* path (pandas, SQLite online store, in-memory XGBoost) and
the *Spark* path (``TELCOML_ENGINE=spark`` in local mode, the indicator build in customer
buckets of ``--customers-per-task``, the Redis online store loaded by Spark tasks, the
generator in customer chunks). For each stage and size it records

* wall seconds;
* CPU seconds of the whole process tree (the CLI, Spark's JVM and its Python workers),
  from ``getrusage(RUSAGE_CHILDREN)`` and a sampler of the live tree, whichever is larger;
* peak memory: the largest sum of the tree's resident sets seen by the sampler (every
  0.2 s; shared pages count once per process, so it is an upper bound);
* the driver's peak: the CLI process's own resident set (on the Spark path the driver, which
  a cluster must size for what it collects; the tree adds the JVM and local executors);
* rows/s and rows per CPU-second (the per-core throughput the cluster projection uses).

Then it fits a power law ``y = a * n^b`` per stage and path over the sizes (``b`` near 1:
linear; near 0: flat) for time and for peak memory. Results go to
``benchmarks/results/scale-<date>.json``; ``docs/scale.md`` reads them for the 50M
projection. The last line is ``key=value`` pairs: each path's memory exponents, and the
Spark path's per-core throughput over the embedded path's at the largest size.

Usage::

    python benchmarks/bench_scale.py --sizes 250000,500000,1000000,2000000 \\
        [--paths embedded,spark] [--months 6] [--trials 2] [--workdir /tmp/telcoml-scale]

A size whose stage fails is reported as failed and the run goes on (later stages of that
size and path are skipped; the Spark path's Feast project leaves Redis all the same).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import environment  # noqa: E402

STAGES = ("generate", "build", "materialize", "train", "batch-score", "prepare")
#: The province scored and prepared by default (``--province``): the largest one of the generated world.
SCORED_PROVINCE = "GD"


@dataclass
class Measure:
    stage: str
    path: str
    size: int
    rows: int = 0
    wall_s: float = math.nan
    cpu_s: float = math.nan
    peak_mib: float = math.nan
    driver_peak_mib: float = math.nan  # the CLI process alone (Spark's driver), without its children
    ok: bool = True
    error: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s if self.ok and self.wall_s > 0 else math.nan

    @property
    def rows_per_cpu_s(self) -> float:
        return self.rows / self.cpu_s if self.ok and self.cpu_s > 0 else math.nan


@dataclass
class TreeSampler:
    """Peak resident memory and CPU time of a process and its descendants, sampled."""

    pid: int
    every: float = 0.2
    peak_bytes: int = 0
    root_peak_bytes: int = 0
    cpu: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in tree:
                try:
                    rss = proc.memory_info().rss
                    total += rss
                    if proc is root:
                        self.root_peak_bytes = max(self.root_peak_bytes, rss)
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = (
                        times.user + times.system + times.children_user + times.children_system
                    )
                except psutil.NoSuchProcess:
                    continue
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_stage(argv: list[str], env: dict[str, str], log_path: Path) -> tuple[float, float, float, float]:
    """Run one CLI stage; (wall s, CPU s of its tree, peak MiB of its tree, peak MiB of the CLI
    process alone). Raises on failure."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        sampler = TreeSampler(proc.pid)
        code = proc.wait()
        sampler.stop()
    wall = time.perf_counter() - started
    cpu = max(_children_cpu() - cpu_before, sum(sampler.cpu.values()))
    if code != 0:
        raise RuntimeError(f"{argv[1]} exited with {code}: see {log_path}")
    return wall, cpu, sampler.peak_bytes / 2**20, sampler.root_peak_bytes / 2**20


def path_environment(path: str, workdir: Path, args: argparse.Namespace) -> dict[str, str]:
    """The settings of a path, as an operator sets them (environment, not code)."""
    env = {
        **os.environ,
        "TELCOML_WORKDIR": str(workdir),
        "TELCOML_AUTO_PREPARE": "0",  # prepare is its own timed stage
        "TQDM_DISABLE": "1",
        "TERM": "dumb",
        "CI": "true",
    }
    if path == "spark":
        env.update(
            TELCOML_ENGINE="spark",
            TELCOML_SPARK_MASTER=args.master,
            TELCOML_ONLINE_STORE="redis",
            TELCOML_REDIS_URL=args.redis_url,
            # one Feast project per size: the sizes' online rows never mix in the shared Redis
            TELCOML_PROJECT=f"scale_{workdir.name.replace('-', '_')}",
            TELCOML_MATERIALIZE=args.materialize,
            TELCOML_SPARK_CUSTOMERS_PER_TASK=str(args.customers_per_task),
        )
    else:
        env.update(TELCOML_ENGINE="pandas", TELCOML_ONLINE_STORE="sqlite")
    return env


def stage_argv(stage: str, path: str, size: int, args: argparse.Namespace) -> list[str]:
    cli = [str(Path(sys.executable).with_name("telcoml"))]
    if stage == "generate":
        argv = [*cli, "generate", "--customers", str(size), "--months", str(args.months), "--seed", "7"]
        return argv + (["--chunk-customers", str(args.chunk)] if path == "spark" else [])
    if stage == "train":
        return [*cli, "train", "--task", args.task, "--trials", str(args.trials), "--no-refit"]
    if stage in ("batch-score", "prepare"):
        # ``--province all``: every province in one command (one process, one Spark session)
        return [*cli, stage] + ([] if args.province == "ALL" else ["--province", args.province.lower()])
    return [*cli, stage]


def province_customers(workdir: Path, province: str = SCORED_PROVINCE) -> int:
    """The scored province's customers in its latest snapshot (the rows scored and prepared);
    ``ALL``: every province's."""
    import pyarrow.parquet as pq

    from features.build import offline_file, offline_snapshots

    latest: dict[str, str] = {}
    for code, month in offline_snapshots(
        workdir / "offline", province="*" if province == "ALL" else province
    ):
        latest[code] = max(month, latest.get(code, month))
    return sum(
        pq.ParquetFile(offline_file(workdir / "offline", "profile", code, month)).metadata.num_rows
        for code, month in latest.items()
    )


def measure_path(
    path: str, size: int, args: argparse.Namespace, results: list[Measure], save: Callable[[], None]
) -> None:
    workdir = args.workdir / f"{path}-{size}"
    if workdir.exists() and not args.keep:
        subprocess.run(["rm", "-rf", str(workdir)], check=True)
    workdir.mkdir(parents=True, exist_ok=True)
    env = path_environment(path, workdir, args)
    log_path = args.workdir / f"{path}-{size}.log"
    try:
        for stage in args.stages:
            m = Measure(stage, path, size)
            try:
                m.wall_s, m.cpu_s, m.peak_mib, m.driver_peak_mib = run_stage(
                    stage_argv(stage, path, size, args), env, log_path
                )
                m.rows = (
                    province_customers(workdir, args.province)
                    if stage in ("batch-score", "prepare")
                    else size
                )
            except Exception as err:  # noqa: BLE001 - a failed stage is a result, the run goes on
                m.ok, m.error = False, str(err)
            results.append(m)
            save()  # after every stage: a run stopped part way keeps what it measured
            print(
                f"{path:>8} {size:>9,} {stage:<12} "
                + (
                    f"{m.wall_s:8.1f} s  cpu {m.cpu_s:8.1f} s  peak {m.peak_mib:8.0f} MiB "
                    f"(driver {m.driver_peak_mib:6.0f})  "
                    f"{m.rows_per_s:10.0f} rows/s  {m.rows_per_cpu_s:10.0f} rows/cpu-s"
                    if m.ok
                    else f"FAILED: {m.error}"
                ),
                flush=True,
            )
            if not m.ok:
                return  # the work directory stays for a look at the failure (the next run replaces it)
    finally:
        if path == "spark" and not args.keep:
            # whatever happened, the size's own Feast project out of the shared Redis (Feast's teardown)
            teardown = "from core.settings import Settings; from features.store import open_store; "
            teardown += "open_store(Settings()).teardown()"
            subprocess.run([sys.executable, "-c", teardown], env=env, check=False, capture_output=True)
    if not args.keep:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


def power_law(points: list[tuple[int, float]]) -> float:
    """The exponent b of y = a * n^b fitted by least squares in log-log (nan below two sizes)."""
    points = [(n, y) for n, y in points if y > 0 and math.isfinite(y)]
    if len({n for n, _ in points}) < 2:
        return math.nan
    xs, ys = [math.log(n) for n, _ in points], [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def exponents(results: list[Measure]) -> dict[str, dict[str, dict[str, float]]]:
    """path -> stage -> {time, memory}: the fitted exponents."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for path in sorted({m.path for m in results}):
        for stage in STAGES:
            ms = [m for m in results if m.path == path and m.stage == stage and m.ok]
            if ms:
                out.setdefault(path, {})[stage] = {
                    "time": power_law([(m.size, m.wall_s) for m in ms]),
                    "memory": power_law([(m.size, m.peak_mib) for m in ms]),
                }
    return out


def summary(results: list[Measure], fitted: dict) -> str:
    pairs: dict[str, str] = {}
    for path, stages in fitted.items():
        memory = [v["memory"] for v in stages.values() if math.isfinite(v["memory"])]
        if memory:
            pairs[f"{path}_memory_exponent_max"] = f"{max(memory):.2f}"
    sizes = sorted({m.size for m in results})
    if sizes:
        top = sizes[-1]
        for stage in STAGES:
            emb = next(
                (m for m in results if (m.path, m.stage, m.size) == ("embedded", stage, top) and m.ok), None
            )
            spk = next(
                (m for m in results if (m.path, m.stage, m.size) == ("spark", stage, top) and m.ok), None
            )
            if emb and spk and emb.rows_per_cpu_s > 0:
                pairs[f"per_core_{stage.replace('-', '_')}"] = (
                    f"{spk.rows_per_cpu_s / emb.rows_per_cpu_s:.2f}"
                )
        pairs["largest"] = str(top)
    return " ".join(f"{k}={v}" for k, v in pairs.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250000,500000,1000000,2000000")
    parser.add_argument("--paths", default="embedded,spark")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--trials", type=int, default=2, help="Optuna trials of the trained task")
    parser.add_argument("--task", default="churn", help="the task trained (one, to keep the run in hours)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--province", default=SCORED_PROVINCE, type=str.upper, help="the province scored and prepared"
    )
    parser.add_argument(
        "--chunk", type=int, default=100_000, help="the Spark path's generator chunk (embedded: the default)"
    )
    parser.add_argument("--redis-url", default=os.environ.get("TELCOML_REDIS_URL", "127.0.0.1:6379"))
    parser.add_argument(
        "--materialize",
        choices=["spark", "stream"],
        default="spark",
        help="the Spark path's materialization: Spark tasks, or one process streaming",
    )
    parser.add_argument(
        "--customers-per-task",
        type=int,
        default=25_000,
        help="the Spark build's customer buckets: smaller than a province, so its memory shows flat",
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/telcoml-scale"))
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the work directories")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    args.stages = [s for s in args.stages.split(",") if s]
    unknown = set(args.stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}; choose from {', '.join(STAGES)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    paths = [p for p in args.paths.split(",") if p]
    output = args.output or ROOT / "benchmarks" / "results" / f"scale-{datetime.now(UTC):%Y-%m-%d}.json"
    results: list[Measure] = []
    load_before = os.getloadavg()
    started = time.perf_counter()
    described = environment(("pyspark", "xgboost", "feast", "pandas"))

    def save() -> None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(
            json.dumps(
                {
                    "environment": described,
                    "arguments": {k: str(v) for k, v in vars(args).items()},
                    "load_average_before": load_before,
                    "load_average_after": os.getloadavg(),
                    "seconds": time.perf_counter() - started,
                    "results": [
                        {**asdict(m), "rows_per_s": m.rows_per_s, "rows_per_cpu_s": m.rows_per_cpu_s}
                        for m in results
                    ],
                    "exponents": exponents(results),
                },
                indent=2,
                default=str,
            )
        )

    for size in sizes:
        for path in paths:  # both paths of a size back to back: a change in load hits both alike
            measure_path(path, size, args, results, save)
    fitted = exponents(results)
    print("\nfitted exponents (time, memory): y = a * n^b")
    for path, stages in fitted.items():
        for stage, v in stages.items():
            print(f"  {path:>8} {stage:<12} time b={v['time']:.2f}  memory b={v['memory']:.2f}")
    print(f"results: {output}")
    print(summary(results, fitted))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
