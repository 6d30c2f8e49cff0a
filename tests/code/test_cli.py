"""The `telcoml` command line end to end on tiny data, and its clear errors."""

import pytest
from typer.testing import CliRunner

from telcoml import cli
from telcoml.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Tables as a person sees them on a wide terminal (the runner's default is 80 columns)."""
    monkeypatch.setattr(cli.console, "width", 240)


def _text(result) -> str:
    """The output with line wrapping undone (rich wraps at the runner's terminal width)."""
    return " ".join(result.output.split())


def test_demo_runs_the_main_job_and_shows_a_customer(tmp_path):
    result = runner.invoke(app, ["demo", "--workdir", str(tmp_path), "--customers", "800", "--months", "4", "--trials", "2"])
    assert result.exit_code == 0, result.output
    assert "unified view" in _text(result) and "投诉处理满意度" in result.output
    assert (tmp_path / "feature_repo" / "feature_store.yaml").exists()
    assert (tmp_path / "reports" / "quality" / "raw.json").exists()
    assert "Model quality" in _text(result) and "credit_grade" in result.output and "champion" in result.output
    prepared = int(_text(result).split("prepared answers: ")[1].split(" customers")[0].replace(",", ""))
    assert prepared > 500  # every current customer of the 800 (some have churned)
    assert "TELCOML_API_KEY=tcm_" in result.output
    assert (tmp_path / "serving" / "demo_api_key.env").read_text().startswith("TELCOML_API_KEY=tcm_")
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
