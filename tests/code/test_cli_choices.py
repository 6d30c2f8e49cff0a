"""Options with a fixed set of values are choices: `--help` lists them, a wrong value exits 2 naming
them, and the lists in core.names are the declarations' own."""

import subprocess
import sys
import typing

import pytest
from typer.testing import CliRunner

from core import indicators as lib
from core import names
from core.settings import Settings
from core.tasks import TASKS
from serving.campaign_config import PURPOSES
from serving.security import ALL_PROVINCES
from telcoml.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "240"}  # help as a wide terminal shows it (at 80 columns rich cuts long choice lists)


def _flat(result) -> str:
    """The output with rich's boxes and line wrapping taken out."""
    return "".join(c for c in result.output if c not in "│╭╮╰╯─ \n")


def test_the_choice_lists_are_the_declarations():
    assert names.TASKS == tuple(TASKS)
    assert names.EVALUATIONS == lib.EVALUATIONS
    assert names.PROVINCES == lib.BY_ID["province"].codes
    assert names.CAMPAIGN_PURPOSES == PURPOSES
    assert names.ONLINE_STORES == typing.get_args(Settings.model_fields["online_store"].annotation)
    assert names.ALL_PROVINCES == ALL_PROVINCES


def test_help_lists_the_task_choices_and_a_wrong_task_exits_2():
    shown = _flat(runner.invoke(app, ["train", "--help"], env=WIDE))
    assert f"<{'|'.join((*names.TASKS, 'all'))}>" in shown
    wrong = runner.invoke(app, ["train", "--task", "credit"])
    assert wrong.exit_code == 2
    assert "'credit'isnotoneof" in _flat(wrong) and "'channel_preference'" in wrong.output


@pytest.mark.parametrize(
    "args, option, choices",
    [
        (["monitor"], "--task", names.TASKS),
        (["indicators"], "--task", names.EVALUATIONS),
        (["campaign", "plan"], "--purpose", names.CAMPAIGN_PURPOSES),
        (["materialize"], "--online-store", names.ONLINE_STORES),
        (["batch-score"], "--province", [p.lower() for p in names.PROVINCES]),
        (["keys", "create"], "--province", [p.lower() for p in (*names.PROVINCES, "*")]),
    ],
)
def test_every_fixed_set_is_listed_and_enforced(args, option, choices):
    assert "|".join(choices) in _flat(runner.invoke(app, [*args, "--help"], env=WIDE)), (args, option)
    wrong = runner.invoke(app, [*args, option, "nonsense"])
    assert wrong.exit_code == 2 and "'nonsense'isnotoneof" in _flat(wrong), wrong.output


def test_province_codes_are_taken_in_either_case(tmp_path):
    created = runner.invoke(app, ["keys", "create", "crm-sc", "--province", "sc", "--workdir", str(tmp_path)])
    assert created.exit_code == 0, created.output
    listed = runner.invoke(app, ["keys", "list", "--format", "csv", "--workdir", str(tmp_path)])
    assert listed.stdout.splitlines()[1].startswith("crm-sc,SC,active,")


def test_starting_the_command_line_loads_neither_pandas_nor_the_models():
    probe = "import sys, telcoml.cli; print(sorted({'pandas', 'xgboost', 'core.tasks'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr[-2000:]


@pytest.mark.parametrize(
    "args, option",
    [
        (["campaign", "plan"], "--start"),
        (["campaign", "report", "x"], "--as-of"),
        (["keys", "create", "x"], "--expires"),
    ],
)
def test_every_date_option_is_checked_by_the_command_line(args, option, tmp_path):
    """A date that is no date is a usage error naming the option (exit 2), before anything runs."""
    assert "YYYY-MM-DD" in _flat(runner.invoke(app, [*args, "--help"], env=WIDE))
    for wrong in ("2026-13-01", "2027-02-30", "tomorrow"):
        result = runner.invoke(app, [*args, option, wrong, "--workdir", str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert f"Invalidvaluefor'{option}':'{wrong}'isnotadate" in _flat(result), result.output
    assert not list(tmp_path.iterdir())  # nothing written
