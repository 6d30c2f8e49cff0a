"""The generator in chunks (``GeneratorConfig.chunk_customers``): a province simulated in chunks
of lines that live apart is a valid world (the gate passes it, numbers and ids are unique, the
tables agree month by month, the indicator build reads it); a province within one chunk is
written byte for byte as before; memory holds one chunk whatever the province's size."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.io import AtomicTableFiles
from features.build import available_months, build_indicators
from features.generate import GeneratorConfig, chunk_streams, generate, new_line_indices
from features.quality import check_raw
from features.schemas import partition_path

#: Two provinces of three chunks each (GD 1,750 first lines, SC 1,250; chunks of at most 600).
CHUNKED = GeneratorConfig(customers=3000, months=3, provinces=("GD", "SC"), seed=3, chunk_customers=600)
IDS = {
    "complaints": "complaint_id",
    "refunds": "refund_id",
    "small_gifts": "gift_id",
    "credit_events": "event_id",
}


@pytest.fixture(scope="module")
def chunked(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chunked")
    generate(CHUNKED, root / "raw", root / "truth")
    return root


def _table(raw: Path, table: str) -> pd.DataFrame:
    files = sorted((raw / table).rglob("*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)


def test_chunk_sizes_cover_the_province_evenly():
    assert CHUNKED.chunk_sizes(1750) == [584, 583, 583]
    assert CHUNKED.chunk_sizes(600) == [600] and CHUNKED.chunk_sizes(601) == [301, 300]
    assert GeneratorConfig(chunk_customers=None).chunk_sizes(10**7) == [10**7]
    assert GeneratorConfig().chunk_sizes(200_000) == [200_000]  # every test and demo world: one chunk


def test_chunk_streams_are_their_own_and_chunk_zero_is_the_provinces():
    first = [tuple(g.integers(0, 2**62, 4)) for c in range(4) for g in chunk_streams(7, 1, c)]
    assert len(set(first)) == len(first)  # 4 chunks x (lines, trial months, evidence): 12 streams
    zero = chunk_streams(7, 1, 0)
    for stream, key in zip(zero, ([7, 1], [7, 1, 1], [7, 1, 2])):
        assert stream.integers(0, 2**62) == np.random.default_rng(key).integers(0, 2**62)


def test_new_lines_never_share_a_number_across_provinces_chunks_or_the_first_lines():
    config = GeneratorConfig(customers=5000, provinces=("GD", "SC", "HE", "ZJ"))
    chunks = {0: 3, 1: 1, 2: 2, 3: 5}  # provinces of different chunk counts
    indices = np.concatenate(
        [
            new_line_indices(config, p, c, k, opened, 250)
            for p, k in chunks.items()
            for c in range(k)
            for opened in (0, 250, 500)
        ]
    )
    assert len(np.unique(indices)) == len(indices) and indices.min() >= config.customers
    one = new_line_indices(config, 2, 0, 1, 10, 3)
    assert one.tolist() == [5000 + k * 4 + 2 for k in (10, 11, 12)]  # one chunk: as it always was


def test_a_chunked_world_passes_the_gate_with_unique_numbers_and_ids(chunked):
    raw = chunked / "raw"
    report = check_raw(raw)
    assert report.passed, [str(p) for p in report.problems if p.severity == "reject"]
    subscribers = _table(raw, "subscribers")
    assert subscribers["msisdn"].is_unique and len(subscribers) > CHUNKED.customers  # new lines opened
    for table, column in IDS.items():
        frame = _table(raw, table)
        assert len(frame) > 0 and frame[column].is_unique, table
    # every chunk's rows went into the one file per province-month, a row group each
    usage = partition_path(raw, "usage", "GD", CHUNKED.month_names[0])
    assert pq.ParquetFile(usage).metadata.num_row_groups == 3
    assert not list(chunked.rglob("*.tmp"))


def test_a_chunked_worlds_tables_agree_month_by_month(chunked):
    raw = chunked / "raw"
    labels = pd.read_parquet(chunked / "truth" / "labels" / "GD.parquet")
    oracle = pd.read_parquet(chunked / "truth" / "oracle" / "GD.parquet")
    subscribers = pd.read_parquet(partition_path(raw, "subscribers", "GD"))
    opened = pd.to_datetime(subscribers["activation_date"])
    closed = pd.to_datetime(subscribers["close_date"])
    for month in CHUNKED.simulated_names:
        end = pd.Period(month, "M").end_time
        usage = pd.read_parquet(partition_path(raw, "usage", "GD", month))
        lines = set(usage["msisdn"].astype(str))
        assert len(lines) == len(usage)
        for table in ("monthly_bills", "payments"):
            frame = pd.read_parquet(partition_path(raw, table, "GD", month))
            assert set(frame["msisdn"].astype(str)) == lines
        open_lines = subscribers.loc[(opened <= end) & (closed.isna() | (closed > end)), "msisdn"]
        assert set(open_lines) == lines, month
        if month in CHUNKED.month_names:
            assert set(labels.loc[labels["month"] == month, "msisdn"]) == lines
            assert set(oracle.loc[oracle["month"] == month, "msisdn"]) == lines


def test_the_indicator_build_reads_a_chunked_world(chunked, tmp_path):
    months = available_months(chunked / "raw", "GD")
    assert months == CHUNKED.month_names
    rows = build_indicators(chunked / "raw", tmp_path / "offline", ["GD", "SC"], months)
    labels = sum(len(pd.read_parquet(chunked / "truth" / "labels" / f"{p}.parquet")) for p in ("GD", "SC"))
    assert rows == labels


def test_files_written_in_parts_replace_nothing_until_the_province_is_done(tmp_path):
    target = tmp_path / "usage" / "part-0.parquet"
    target.parent.mkdir()
    pq.write_table(pa.table({"msisdn": ["old"]}), target)
    with pytest.raises(RuntimeError), AtomicTableFiles() as files:
        files.write(pa.table({"msisdn": ["a"]}), target)
        raise RuntimeError("killed between two chunks")
    assert pq.read_table(target).column("msisdn").to_pylist() == ["old"]
    assert [p.name for p in target.parent.iterdir()] == ["part-0.parquet"]  # no temporary left
    small = pa.table({"msisdn": pa.array(["a"]).dictionary_encode()})  # int32 indices...
    with AtomicTableFiles() as files:
        files.write(small, target)
        files.write(
            pa.table(
                {
                    "msisdn": pa.array(["b", "c"])
                    .dictionary_encode()
                    .cast(pa.dictionary(pa.int8(), pa.string()))
                }
            ),
            target,
        )  # ...and a part of other indices
        assert pq.read_table(target).column("msisdn").to_pylist() == ["old"]  # not yet renamed
    assert pq.read_table(target).column("msisdn").to_pylist() == ["a", "b", "c"]
    assert pq.ParquetFile(target).metadata.num_row_groups == 2


def _bytes(root: Path) -> dict[str, str]:
    files = root.rglob("*.parquet")
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_a_province_within_one_chunk_is_written_as_before(tmp_path):
    kw = dict(customers=700, months=2, provinces=("GD", "SC"), seed=5)
    largest = max(GeneratorConfig(**kw).province_sizes().values())  # GD: 409 first lines
    worlds = {"whole": None, "exact": largest, "default": GeneratorConfig().chunk_customers}
    for name, chunk in worlds.items():
        config = GeneratorConfig(**kw, chunk_customers=chunk)
        generate(config, tmp_path / name / "raw", tmp_path / name / "truth")
    whole = _bytes(tmp_path / "whole")
    assert len(whole) > 50
    assert _bytes(tmp_path / "exact") == whole and _bytes(tmp_path / "default") == whole
    config = GeneratorConfig(**kw, chunk_customers=largest - 1)  # GD in two chunks: another world
    generate(config, tmp_path / "two" / "raw", tmp_path / "two" / "truth")
    assert _bytes(tmp_path / "two").keys() == whole.keys() and _bytes(tmp_path / "two") != whole


_PEAK = """
import json, sys, tempfile
from pathlib import Path
from features.generate import GeneratorConfig, generate

def peak_kib():  # the process's own high-water mark (ru_maxrss carries the forking parent's)
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])

customers, chunk = int(sys.argv[1]), (None if sys.argv[2] == "None" else int(sys.argv[2]))
config = GeneratorConfig(customers=customers, months=1, provinces=("GD",), chunk_customers=chunk)
before = peak_kib()
with tempfile.TemporaryDirectory() as folder:
    generate(config, Path(folder) / "raw", Path(folder) / "truth")
print(json.dumps(peak_kib() - before))
"""


def _growth_kib(customers: int, chunk: int | None) -> int:
    """Peak resident memory generate adds to a fresh process (after its imports), KiB."""
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(customers), str(chunk)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_memory_holds_one_chunk_whatever_the_provinces_size():
    small, large = _growth_kib(8000, 2000), _growth_kib(16000, 2000)
    assert large < 1.3 * small, (small, large)
    # the measure sees a province held whole: twice the lines, clearly more memory
    whole = _growth_kib(16000, None)
    assert whole > 1.5 * large, (large, whole)


def test_the_generate_command_publishes_a_chunked_world(tmp_path):
    from typer.testing import CliRunner

    from telcoml.cli import app

    world = ["--customers", "1200", "--months", "1", "--provinces", "GD", "--chunk-customers", "500"]
    result = CliRunner().invoke(app, ["generate", "--workdir", str(tmp_path), *world])
    assert result.exit_code == 0, result.output
    usage = partition_path(tmp_path / "raw", "usage", "GD", "2025-11")
    assert pq.ParquetFile(usage).metadata.num_row_groups == 3  # 1,200 first lines in chunks of 400
    assert (tmp_path / "truth" / "labels" / "GD.parquet").exists()
