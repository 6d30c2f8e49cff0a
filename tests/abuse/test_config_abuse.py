"""Configuration bombs and careless files replayed against the real `telcoml` command line.

Each probe of the hardening issue (items 6 and 8): a formula of 1,000 terms, 5,000 unary
minuses, a 400-digit number, a 300-byte YAML alias bomb, a 10 MB file, an API key for a
province that does not exist, temporary files a killed writer left behind, and a SQLite
online store others could read. Each bomb is refused fast, in bounded memory, with one
clear message naming the file, the line and the limit, and never a traceback.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import ConfigurationError
from core.io import atomic_write_text, remove_stale_temporaries
from core.settings import Settings
from features.custom import MAX_FORMULA_CHARS, MAX_FORMULA_DEPTH, formula_names
from features.provinces import EXAMPLES_DIR, MAX_GUIDANCE_CHARS
from features.yamlfile import MAX_ALIASES, MAX_FILE_BYTES, MAX_VALUES
from serving.security import create_key
from telcoml.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
#: A bomb is refused within this many seconds (the CLI already imported) ...
REFUSED_WITHIN_S = 2.0
#: ... and without the process's peak memory growing by more than this (KB; ru_maxrss on Linux).
MEMORY_GROWTH_KB = 100 * 1024

_CUSTOM = """\
province: GD
custom_indicators:
  - id: bomb
    name_zh: 炸弹
    name_en: Bomb
    definition: a formula no province needs
    formula: {formula}
"""


def _billion_laughs(levels: int = 9, fan_out: int = 9) -> str:
    """The classic: each level a list of ``fan_out`` aliases of the level before (9**9 values)."""
    lines = ["province: GD", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnopqrstuvwxyz"
    for before, name in zip(names[: levels - 1], names[1:levels], strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{before}"] * fan_out) + "]")
    return "\n".join(lines) + "\n"


BOMBS = {
    # id: (file text, words the refusal must say)
    "formula_1000_terms": (
        _CUSTOM.format(formula=" + ".join(["arpu_3m"] * 1000)),
        [":7:", "custom indicator 'bomb'", "9,997 characters long", f"at most {MAX_FORMULA_CHARS}"],
    ),
    "formula_5000_unary_minuses": (
        _CUSTOM.format(formula="-" * 5000 + "arpu_3m"),
        [":7:", "custom indicator 'bomb'", "5,007 characters long", f"at most {MAX_FORMULA_CHARS}"],
    ),
    "formula_400_unary_minuses": (  # short enough to parse: refused by its depth, not a RecursionError
        _CUSTOM.format(formula="-" * 400 + "arpu_3m"),
        [":7:", "custom indicator 'bomb'", f"more than {MAX_FORMULA_DEPTH} deep"],
    ),
    "formula_400_digit_number": (
        _CUSTOM.format(formula="arpu_3m + " + "9" * 400),
        [":7:", "custom indicator 'bomb'", "(400 characters) in formula", "is out of range"],
    ),
    "formula_infinite_number": (
        _CUSTOM.format(formula="arpu_3m * 1e400"),
        [":7:", "number 1e400", "is out of range", "1,000,000,000,000"],
    ),
    "yaml_billion_laughs": (
        _billion_laughs(),
        [":8:", f"more than {MAX_ALIASES} aliases"],
    ),
    "yaml_alias_bomb_under_the_alias_cap": (  # 48 aliases expanding to 8**6 values
        _billion_laughs(levels=7, fan_out=8),
        [f"more than {MAX_VALUES:,} keys and values", "aliases"],
    ),
    "yaml_nested_10000_deep": (
        "province: GD\nname_en: " + "[" * 10_000 + "]" * 10_000 + "\n",
        [":2:", "nested more than 20 levels deep"],
    ),
    "yaml_10_mb": (
        "province: GD\n" + ("# " + "x" * 98 + "\n") * (10 * 1024 * 1024 // 101),
        ["the file is 10,485,", f"at most {MAX_FILE_BYTES:,} bytes"],
    ),
    "yaml_many_values": (
        "province: GD\nname_en: [" + ",".join(["1"] * 50_000) + "]\n",
        [":2:", f"more than {MAX_VALUES:,} keys and values"],
    ),
    # the guidance an agent reads during the call: every string bounded, every value in range
    "guidance_text_100_kb": (
        "province: GD\nguidance:\n  5:\n    complaint_handling:\n      en: "
        + "x" * 100_000
        + "\n      zh: 好\n",
        [":5:", "guidance.5.complaint_handling.en", f"at most {MAX_GUIDANCE_CHARS} characters"],
    ),
    "guidance_text_with_terminal_escapes": (
        'province: GD\nguidance:\n  2:\n    verification: {en: "ok\\x1b[2J\\x1b[31mREFUND", zh: 查证}\n',
        [":4:", "guidance.2.verification.en", "without control characters"],
    ),
    "guidance_negative_gift_ceiling": (
        "province: GD\nguidance:\n  5:\n    gift_ceiling: {value: -100000}\n",
        [":4:", "guidance.5.gift_ceiling.value", "a gift ceiling in yuan from 0 to 500, got -100000"],
    ),
    "guidance_400_digit_gift_ceiling": (
        "province: GD\nguidance:\n  5:\n    gift_ceiling: {value: " + "9" * 400 + "}\n",
        [":4:", "guidance.5.gift_ceiling.value", "from 0 to 500, got a number of 400 digits"],
    ),
    "guidance_time_limit_of_a_century": (
        "province: GD\nguidance:\n  1:\n    time_limit: {value: 876000}\n",
        [":4:", "guidance.1.time_limit.value", "a time limit in hours from 1 to 720"],
    ),
    "guidance_unknown_grade_and_topic": (
        "province: GD\nguidance:\n  6:\n    free_phone: {value: true}\n",
        [":3:", "unknown credit grade 6"],
    ),
    "guidance_a_mapping_for_a_flag": (
        "province: GD\nguidance:\n  4:\n    agent_priority: {value: {a: [1, 2, 3]}}\n",
        [":4:", "guidance.4.agent_priority.value", "boolean"],
    ),
}


def _one_line(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def warm(tmp_path_factory) -> None:
    """One valid file checked first: the timings below exclude the CLI's first imports."""
    workdir = tmp_path_factory.mktemp("warm")
    (workdir / "provinces").mkdir()
    shutil.copy(EXAMPLES_DIR / "GD.yaml", workdir / "provinces" / "GD.yaml")
    result = runner.invoke(app, ["province", "validate", "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_each_config_bomb_is_refused_fast_with_a_clear_message(bomb, tmp_path, warm):
    text, words = BOMBS[bomb]
    (tmp_path / "provinces").mkdir()
    path = tmp_path / "provinces" / "GD.yaml"
    path.write_text(text)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = runner.invoke(app, ["province", "validate", "GD", "--workdir", str(tmp_path)])
    seconds = time.perf_counter() - started
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    output = _one_line(result)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), output
    assert "Traceback" not in result.output, output
    assert output.startswith(f"error: {path}"), output[:300]
    for word in words:
        assert word in output, output[:500]
    assert len(output) < 600, output  # one message, not the bomb echoed back
    assert seconds < REFUSED_WITHIN_S, f"{bomb}: refused after {seconds:.2f} s"
    assert growth < MEMORY_GROWTH_KB, f"{bomb}: peak memory grew {growth / 1024:.0f} MB"


def test_formulas_and_files_within_the_limits_still_validate(tmp_path, warm):
    thirty_terms = " + ".join(["arpu_3m"] * 30)
    assert formula_names(thirty_terms) == ["arpu_3m"]
    assert formula_names("max(refund_amount_12m, 1e12) / -(-arpu_3m + 1)") == ["refund_amount_12m", "arpu_3m"]
    (tmp_path / "provinces").mkdir()
    text = _CUSTOM.format(formula=thirty_terms) + textwrap.dedent(
        """\
        name_en: &name Guangdong
        name_zh: *name
        """
    )
    (tmp_path / "provinces" / "GD.yaml").write_text(text)
    result = runner.invoke(app, ["province", "validate", "GD", "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_a_key_for_an_unknown_province_or_with_a_bad_name_is_refused(tmp_path):
    keys = tmp_path / "serving" / "api_keys.json"
    refused = runner.invoke(app, ["keys", "create", "crm-zz", "--province", "ZZ", "--workdir", str(tmp_path)])
    output = _one_line(refused)
    # refused by the command line itself (a choice), naming the codes; the library refuses it too
    assert refused.exit_code == 2 and "Traceback" not in refused.output, output
    assert "'ZZ' is not one of" in output and "'gd', 'sc'" in output and "'*'" in output
    with pytest.raises(ConfigurationError, match=r"unknown province 'ZZ'.*GD, SC.*or \* for all provinces"):
        create_key(Settings(workdir=tmp_path), "crm-zz", "ZZ")
    assert not keys.exists()  # nothing written
    for name in ("crm gd", "../../etc/passwd", "x" * 65, ".hidden", ""):
        bad = runner.invoke(app, ["keys", "create", name, "--province", "GD", "--workdir", str(tmp_path)])
        assert bad.exit_code == 1 and "invalid API key name" in _one_line(bad), (name, bad.output)
    assert not keys.exists()
    for name, province, scope in (("crm-gd", "gd", "GD"), ("crm-group", "*", "*")):
        ok = runner.invoke(app, ["keys", "create", name, "--province", province, "--workdir", str(tmp_path)])
        assert ok.exit_code == 0 and "TELCOML_API_KEY=tcm_" in ok.output, ok.output
        assert {k["name"]: k["province"] for k in json.loads(keys.read_text())}[name] == scope
    assert keys.stat().st_mode & 0o777 == 0o600


def _killed_writer(*targets: Path) -> list[Path]:
    """The temporary files of a writer killed mid-write (SIGKILL: no clean-up ran)."""
    code = (  # core.io's own naming; its data libraries stubbed out (importing them takes seconds)
        "import os, signal, sys, types\n"
        "from pathlib import Path\n"
        "stubbed = ('pandas', 'pyarrow', 'pyarrow.csv', 'pyarrow.parquet')\n"
        "sys.modules.update({m: types.ModuleType(m) for m in stubbed})\n"
        "from core.io import _temporary\n"
        "for target in sys.argv[1:]:\n"
        "    fd, tmp = _temporary(Path(target))\n"
        "    os.write(fd, b'PAR1 half a file')\n"
        "    print(tmp, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, targets)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    left = [Path(line) for line in done.stdout.split()]
    for tmp, target in zip(left, targets, strict=True):
        assert tmp.exists() and tmp.parent == target.parent and tmp.name.startswith(f".{target.name}.")
    return left


def _aged(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


@pytest.fixture()
def raw_copy(tiny_world, tmp_path) -> Settings:
    """A work directory with the tiny world's raw tables (and nothing built)."""
    settings = Settings(workdir=tmp_path / "work")
    shutil.copytree(tiny_world.settings.raw_dir, settings.raw_dir)
    return settings


def test_the_next_build_removes_what_a_killed_writer_left(raw_copy):
    s = raw_copy
    target = s.offline_dir / "profile" / "GD_2026-01.parquet"
    killed, fresh_dead = _killed_writer(target, s.offline_dir / "usage" / "GD_2026-03.parquet")
    _aged(killed, 120)  # its writer is gone, and it has been untouched for 2 minutes
    _aged(fresh_dead, 5)  # its writer is gone, but only just
    old = s.raw_dir / "usage" / "province=GD" / ".part-0.parquet.abc123.ingest"  # no pid: by age only
    live = s.offline_dir / "profile" / f".GD_2026-02.parquet.{os.getpid()}.live1234.tmp"  # a live writer
    visible = s.offline_dir / "notes.tmp"  # not one of ours (not hidden)
    for path in (old, live, visible):
        path.write_bytes(b"x")
    _aged(old, 2 * 3600)
    _aged(visible, 2 * 3600)

    result = runner.invoke(app, ["build", "--workdir", str(s.workdir)])
    assert result.exit_code == 0, result.output
    assert not killed.exists() and not old.exists()
    assert live.exists() and fresh_dead.exists() and visible.exists()
    assert target.exists()  # the build wrote the real file
    # what is left goes once its time is up, and only hidden temporary files ever go
    assert remove_stale_temporaries([s.workdir], dead_writer_after=0) == [fresh_dead]
    assert live.exists() and visible.exists()


def test_build_refuses_a_huge_number_in_a_formula_before_computing_with_it(raw_copy):
    s = raw_copy
    s.provinces_dir.mkdir(parents=True)
    (s.provinces_dir / "GD.yaml").write_text(_CUSTOM.format(formula="arpu_3m + " + "9" * 400))
    result = runner.invoke(app, ["build", "--workdir", str(s.workdir)])
    output = _one_line(result)
    assert result.exit_code == 1 and "Traceback" not in result.output and "Overflow" not in output, output
    assert "GD.yaml:7:" in output and "is out of range" in output


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path):
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text("half \ud800 written", tmp_path / "report.txt")
    assert list(tmp_path.iterdir()) == []


def test_files_holding_phone_numbers_are_owner_only(tiny_world):
    s = tiny_world.settings
    for path in (s.feature_repo_dir / "online_store.db", s.feature_repo_dir / "registry.db"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    parquet = [*s.raw_dir.rglob("*.parquet"), *s.offline_dir.rglob("*.parquet")]
    assert parquet and {p.stat().st_mode & 0o777 for p in parquet} == {0o600}


def test_an_online_store_others_could_read_is_narrowed_when_opened(tmp_path):
    from features.store import open_store

    s = Settings(workdir=tmp_path)
    s.feature_repo_dir.mkdir(parents=True)
    db = s.feature_repo_dir / "online_store.db"
    db.touch()
    db.chmod(0o644)  # written by an earlier version
    open_store(s)
    assert db.stat().st_mode & 0o777 == 0o600
    fresh = Settings(workdir=tmp_path / "fresh")
    open_store(fresh)  # created owner-only before Feast writes to it
    assert (fresh.feature_repo_dir / "online_store.db").stat().st_mode & 0o777 == 0o600
