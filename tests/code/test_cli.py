"""The `telcoml` command line end to end on tiny data, its clear errors, its output formats for
scripts, and a terminal free of libraries' warnings."""

import contextlib
import csv
import io
import json
import shutil
import sys
import warnings

import pytest
from typer.testing import CliRunner

from core import indicators as lib
from features.provinces import EXAMPLES_DIR
from telcoml import cli, pipeline
from telcoml.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Tables as a person sees them on a wide terminal (the runner's default is 80 columns)."""
    monkeypatch.setattr(cli.console, "width", 240)


def _text(result) -> str:
    """The output with line wrapping undone (rich wraps at the runner's terminal width)."""
    return " ".join(result.output.split())


def _show_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def terminal_warnings():
    """Warnings shown on stderr as a terminal shows them, not collected by pytest, none filtered
    beforehand (pytest's configuration ignores DeprecationWarning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        yield


def _warning_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if "Warning" in line or "CloudPickle" in line]


@pytest.mark.slow  # the whole main job on a tiny world (~100 s); CI runs it (make test-all)
def test_demo_runs_the_main_job_and_shows_a_customer(tmp_path):
    with terminal_warnings():
        result = runner.invoke(
            app, ["demo", "--workdir", str(tmp_path), "--customers", "800", "--months", "5", "--trials", "2"]
        )
    assert result.exit_code == 0, result.output
    assert "unified view" in _text(result) and "投诉处理满意度" in result.output
    assert (tmp_path / "feature_repo" / "feature_store.yaml").exists()
    assert (tmp_path / "reports" / "quality" / "raw.json").exists()
    assert (
        "Model quality" in _text(result) and "credit_grade" in result.output and "champion" in result.output
    )
    prepared = int(_text(result).split("prepared answers: ")[1].split(" customers")[0].replace(",", ""))
    assert prepared > 500  # every current customer of the 800 (some have churned)
    assert "TELCOML_API_KEY=tcm_" in result.output
    assert (tmp_path / "serving" / "demo_api_key.env").read_text().startswith("TELCOML_API_KEY=tcm_")
    assert "Weekly monitoring" in result.output and "demo finished in" in result.output
    assert _warning_lines(result) == []  # deprecations, MLflow's pickling and signature notices
    msisdn = _text(result).split('"msisdn": "')[1].split('"')[0]
    again = runner.invoke(app, ["customer", msisdn, "--workdir", str(tmp_path)])
    assert again.exit_code == 0 and "Complaint record" in _text(again)


def test_unknown_customer_is_a_clear_error_not_a_traceback(tiny_world):
    result = runner.invoke(app, ["customer", "19999999999", "--workdir", str(tiny_world.settings.workdir)])
    assert result.exit_code == 1
    assert "no indicators in the online store" in _text(result)
    assert "Traceback" not in result.output


def test_steps_out_of_order_say_what_to_run(tmp_path):
    result = runner.invoke(app, ["build", "--workdir", str(tmp_path)])
    assert result.exit_code == 1 and "telcoml generate" in _text(result)


def test_indicator_list_shows_both_languages():
    result = runner.invoke(app, ["indicators", "--task", "credit_grade"])
    assert result.exit_code == 0
    assert "客户类别" in result.output and "mandatory" in result.output and "optional" in result.output


# --- output formats for scripts ------------------------------------------------------------------------


def _json(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout holds the data and nothing else
    assert isinstance(data, list) and all(isinstance(row, dict) for row in data)
    return data


def _csv(result) -> tuple[list[str], list[dict]]:
    assert result.exit_code == 0, result.output
    reader = csv.DictReader(io.StringIO(result.stdout))
    return list(reader.fieldnames or []), list(reader)


LIBRARY_COLUMNS = ["id", "name_zh", "name_en", "definition", "unit", "range", "credit_spec"]


@pytest.mark.parametrize("task", [None, "credit_grade", "churn"])
def test_indicator_list_as_json_and_csv(task):
    options = ["--task", task] if task else []
    expected = [i.id for i in (lib.for_task(task) if task else lib.CATALOGUE)]
    as_json = runner.invoke(app, ["indicators", *options, "--format", "json"])
    rows = _json(as_json)
    assert [r["id"] for r in rows] == expected and list(rows[0]) == LIBRARY_COLUMNS
    assert "投诉处理满意度" in as_json.stdout  # Chinese as it is, not \u escapes
    by_id = {r["id"]: r for r in rows}
    assert by_id["complaint_count_3m"]["name_zh"] == "投诉记录"
    assert by_id["complaint_count_3m"]["credit_spec"] == "mandatory"
    header, records = _csv(runner.invoke(app, ["indicators", *options, "--format", "csv"]))
    assert header == LIBRARY_COLUMNS and [r["id"] for r in records] == expected
    assert {r["id"]: r["name_zh"] for r in records} == {r["id"]: r["name_zh"] for r in rows}
    table = runner.invoke(app, ["indicators", *options, "--format", "table"])
    assert table.exit_code == 0 and "┃" in table.stdout and not table.stdout.lstrip().startswith("[")


@pytest.fixture()
def province_workdir(tmp_path):
    """A work directory holding the example province files (GD, HE)."""
    directory = tmp_path / "provinces"
    directory.mkdir()
    for example in sorted(EXAMPLES_DIR.glob("*.yaml")):
        shutil.copy(example, directory / example.name)
    return tmp_path


def test_province_validate_as_json_and_csv(province_workdir):
    rows = _json(
        runner.invoke(app, ["province", "validate", "--format", "json", "-w", str(province_workdir)])
    )
    assert [r["province"] for r in rows] == ["GD", "HE"]
    gd = rows[0]
    assert list(gd) == ["province", "optional", "custom", "models", "services", "no_model"]
    assert gd["models"] == [] and gd["no_model"] == []
    assert "credit_grade_gd_v1" in gd["services"] and isinstance(gd["optional"], list)
    one = _json(
        runner.invoke(app, ["province", "validate", "HE", "--format", "json", "-w", str(province_workdir)])
    )
    assert [r["province"] for r in one] == ["HE"]
    header, records = _csv(
        runner.invoke(app, ["province", "validate", "--format", "csv", "-w", str(province_workdir)])
    )
    assert header == ["province", "optional", "custom", "models", "services", "no_model"] and [
        r["province"] for r in records
    ] == [
        "GD",
        "HE",
    ]
    assert "credit_grade_he_v1" in records[1]["services"]


def test_province_validate_error_keeps_stdout_empty(province_workdir):
    (province_workdir / "provinces" / "HE.yaml").write_text(
        "province: HE\nmodels:\n  credit_grade:\n    drop_indicators: [brand]\n"
    )
    bad = runner.invoke(app, ["province", "validate", "HE", "--format", "json", "-w", str(province_workdir)])
    assert bad.exit_code == 1 and bad.stdout == "" and "HE.yaml:3:" in bad.stderr


def test_province_validate_names_the_models_a_province_cannot_train(province_workdir):
    (province_workdir / "provinces" / "HE.yaml").write_text(
        "province: HE\ndrop_indicators: [brand]\nmodels:\n  churn:\n    add_indicators: [influence]\n"
    )
    rows = _json(
        runner.invoke(app, ["province", "validate", "HE", "--format", "json", "-w", str(province_workdir)])
    )
    assert rows[0]["no_model"] == ["credit_grade"] and rows[0]["models"] == ["churn: +influence"]


@pytest.mark.parametrize("task", [None, "credit_grade"])
def test_province_indicators_as_json_and_csv(province_workdir, task):
    options = ["--province", "GD", *(["--task", task] if task else []), "-w", str(province_workdir)]
    result = runner.invoke(app, ["indicators", *options, "--format", "json"])
    rows = _json(result)
    assert list(rows[0]) == ["id", "name_zh", "name_en", "definition", "unit", "range", "role", "used_by"]
    by_id = {r["id"]: r for r in rows}
    assert by_id["number_level"]["role"] == "optional" and isinstance(by_id["number_level"]["used_by"], list)
    assert "business_dependence" not in by_id
    assert "not used by this province" in result.stderr and "not used" not in result.stdout
    header, records = _csv(runner.invoke(app, ["indicators", *options, "--format", "csv"]))
    assert header[:3] == ["id", "name_zh", "name_en"] and [r["id"] for r in records] == [
        r["id"] for r in rows
    ]


def test_customer_view_as_json_and_csv(tiny_world):
    msisdn = pipeline.sample_customer(tiny_world.settings)
    options = ["customer", msisdn, "--workdir", str(tiny_world.settings.workdir)]
    rows = _json(runner.invoke(app, [*options, "--format", "json"]))
    assert [r["indicator"] for r in rows] == [i.id for i in lib.CATALOGUE]
    values = {r["indicator"]: r["value"] for r in rows}
    assert isinstance(values["tenure_months"], int) and isinstance(values["monthly_consumption"], float)
    assert msisdn not in json.dumps(rows)  # the number is the caller's; the rows hold indicators only
    header, records = _csv(runner.invoke(app, [*options, "--format", "csv"]))
    assert header == ["subject", "indicator", "name_zh", "name_en", "value", "unit", "credit_spec"]
    assert len(records) == len(lib.CATALOGUE) and records[0]["indicator"] == rows[0]["indicator"]


def test_format_is_checked():
    result = runner.invoke(app, ["indicators", "--format", "xml"])
    assert result.exit_code == 2 and "xml" in result.output


# --- tables on a narrow terminal -----------------------------------------------------------------------


def test_chinese_names_are_never_wrapped_or_cut(monkeypatch, tiny_world):
    monkeypatch.setattr(cli.console, "width", 80)  # a default terminal
    result = runner.invoke(app, ["indicators"])
    assert result.exit_code == 0
    missing = [i.name_zh for i in lib.CATALOGUE if i.name_zh not in result.stdout]
    assert missing == []  # each one whole on one line
    msisdn = pipeline.sample_customer(tiny_world.settings)
    view = runner.invoke(app, ["customer", msisdn, "--workdir", str(tiny_world.settings.workdir)])
    assert view.exit_code == 0
    assert [i.name_zh for i in lib.CATALOGUE if i.name_zh not in view.stdout] == []


# --- libraries' warnings ---------------------------------------------------------------------------------


def test_library_warnings_stay_off_the_terminal(tiny_world, tmp_path):
    """Feast's offline store (ibis on DuckDB) warns of deprecations at each materialization."""
    workdir = tmp_path / "work"
    shutil.copytree(tiny_world.settings.workdir, workdir)
    with terminal_warnings():
        result = runner.invoke(app, ["materialize", "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    assert "online store loaded" in _text(result)
    assert _warning_lines(result) == []


def test_project_warnings_stay_visible():
    with terminal_warnings():
        cli.quiet_libraries()
        shown = io.StringIO()
        with contextlib.redirect_stderr(shown):
            warnings.warn("indicator x is empty for 30% of customers", RuntimeWarning, stacklevel=1)
            warnings.warn("old API", DeprecationWarning, stacklevel=1)
    assert "indicator x is empty" in shown.getvalue() and "old API" not in shown.getvalue()


@pytest.mark.parametrize("workers", ["0", "33"])
def test_tuning_workers_out_of_bounds_are_refused_before_anything_starts(tmp_path, workers):
    """`train --workers` starts that many processes: a number past the bound is a usage error
    naming the option, and no work directory is made."""
    result = runner.invoke(
        app, ["train", "--task", "churn", "--workers", workers, "--workdir", str(tmp_path / "w")]
    )
    assert result.exit_code == 2
    assert "--workers" in _text(result)
    assert not (tmp_path / "w").exists()


def test_the_gate_prints_one_line_per_kind_of_problem(tiny_world, tmp_path):
    """A check that warns in every month of a province is one line naming how many more
    partitions it met, and the last line says where the report holding each one is."""
    import json as _json

    workdir = tmp_path / "work"
    shutil.copytree(tiny_world.settings.workdir / "raw", workdir / "raw")
    result = runner.invoke(app, ["quality", "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    report = _json.loads((workdir / "reports" / "quality" / "raw.json").read_text())
    kinds = {(p["severity"], p["dimension"], p["table"], p["column"]) for p in report["problems"]}
    assert len(report["problems"]) > len(kinds)  # some check met several partitions
    lines = [line for line in result.stdout.splitlines() if line.startswith(("  warn ", "  reject "))]
    assert len(lines) == min(len(kinds), cli.QUALITY_LINES)
    assert any("more partitions like it" in line for line in lines)
    assert f"{len(report['problems'])} problems in all, each in {workdir}" in _text(result)
